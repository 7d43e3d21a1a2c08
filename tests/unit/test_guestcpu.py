import pytest

from harness.guest.guestcpu import parse


def test_samples_become_the_guests_busy_share():
    # busy and idle ticks (USER_HZ) since boot, as the guest's loop prints them; the second
    # second's guest waited (a stalled driver), the third ran flat out
    text = "\n".join(["1796222046.000000 1000 500",
                      "1796222047.000000 1090 510",
                      "1796222048.000000 1095 605",
                      "1796222049.000000 1195 605",
                      "garbage line", ""])
    guest = parse(text)
    assert guest.share(1796222046.0, 1796222047.0) == pytest.approx(0.9)
    assert guest.share(1796222047.0, 1796222048.0) == pytest.approx(0.05)
    assert guest.share(1796222048.0, 1796222049.0) == pytest.approx(1.0)
    assert guest.share(1796222049.0, 1796222050.0) is None  # not sampled
    assert guest.level(1796222046.0, 1796222048.5) == pytest.approx((0.9 + 0.05) / 2)


def test_nothing_sampled_is_nothing_known():
    assert parse("").share(0.0, 1.0) is None
