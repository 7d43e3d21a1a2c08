"""A reset that takes seconds, or writes that wait seconds after live: stalls the state monitor
saw, judged whatever the kernel log said. The recorded timeline is stock 6.1's
reset-under-load (seed 7, four resets); the stalled ones are the same with its samples moved."""

from __future__ import annotations

import json
from pathlib import Path

from harness.reading.timeline import Event, Stall, Timeline, requeue_burst
from harness.reading.verdict import FailureKind
from harness.recovery.stalljudge import stall_failures

DATA = Path(__file__).parent / "data"


def _recorded(shift: dict[int, float] | None = None) -> Timeline:
    """The recorded timeline; ``shift`` moves the events at those indexes later."""
    raw = json.loads((DATA / "timeline-reset-under-load-latency.json").read_text())
    return Timeline([Event(raw["start"] + e["t"] + (shift or {}).get(i, 0.0), e["kind"],
                           e["detail"]) for i, e in enumerate(raw["events"])])


def said(stalls: list[Stall]) -> list[tuple[str, str]]:
    return [(stall.what, stall.message) for stall in stalls]


def _load_span(t: Timeline) -> dict[str, list[tuple[float, float]]]:
    return t.writing_spans()


def test_the_load_writing_to_a_controller_is_read_off_the_timeline() -> None:
    t = _recorded()
    started = next(e.at for e in t.events if e.kind == "load_started")
    finished = next(e.at for e in t.events if e.kind == "load_finished")
    assert t.writing_spans() == {"nvme0": [(started, finished)]}
    t.add("load_started", "load1 /dev/nvme0n2", finished)  # not the controller's own
    t.add("load_started", "load2 /dev/nvme1n1", finished + 1)  # never finished
    assert t.writing_spans() == {"nvme0": [(started, finished)]}
    t.add("load_started", "load3 /dev/nvme0n1", finished + 2)  # a soak's next segment
    t.add("load_finished", "load3: no errors", finished + 60)
    assert t.writing_spans() == {"nvme0": [(started, finished), (finished + 2, finished + 60)]}


def test_a_stall_under_an_earlier_load_of_a_soak_is_found() -> None:
    # the stall of test_writes_that_wait_after_live_while_the_load_runs, then a later load
    # on the same controller: each load's span is judged, not only the last one's
    t = _recorded({13: 8.0})
    end = max(e.at for e in t.events)
    t.add("load_started", "load9 /dev/nvme0n1", end + 5)
    t.add("load_finished", "load9: no errors", end + 65)
    assert [stall.what for stall in t.stalls(3.0, 5.0, _load_span(t))] == ["resume"]


def test_the_stock_driver_stalls_nowhere() -> None:
    t = _recorded()
    assert t.stalls(3.0, 5.0, _load_span(t)) == []


def test_a_reset_that_keeps_the_controller_out_of_live_for_seconds() -> None:
    # the second reset's "connecting" lasts 4 s more: live again at 25.5 s instead of 21.5 s
    t = _recorded({11: 4.0, 12: 4.0, 13: 4.0})
    stalls = said(t.stalls(3.0, 5.0, _load_span(t)))
    assert stalls == [("reset", "nvme0 was out of live for 4.8s (from 20.6s): longer than "
                                "the 3s a reset may take")]
    assert t.stalls(None, 5.0, _load_span(t)) == []  # a scenario that holds it away


def test_the_time_the_machine_slept_counts_toward_no_bound() -> None:
    # the 4.8 s out of live above, 2 s of it with the machine suspended (a reset that began
    # as it suspended finishes on resume): 2.8 s awake, within the bound
    t = _recorded({11: 4.0, 12: 4.0, 13: 4.0})
    gone = t.events[0].at + 20.6
    t.add("asleep", "suspend to idle", gone + 1.0)
    t.add("awake", "suspend to idle", gone + 3.0)
    assert t.stalls(3.0, 5.0, _load_span(t)) == []
    # asleep only 1 s of it: 3.8 s awake is still a stall, and says what it did not count
    t = _recorded({11: 4.0, 12: 4.0, 13: 4.0})
    t.add("asleep", "suspend to idle", gone + 1.0)
    t.add("awake", "suspend to idle", gone + 2.0)
    assert said(t.stalls(3.0, 5.0, _load_span(t))) == [
        ("reset", "nvme0 was out of live for 3.8s (from 20.6s; 1.0s asleep not counted): "
                  "longer than the 3s a reset may take")]
    # writes awaited after live: sleep in the wait is not counted either
    t = _recorded({13: 8.0})
    back = t.events[0].at + 21.5
    t.add("asleep", "suspend to idle", back + 1.0)
    t.add("awake", "suspend to idle", back + 2.0)
    assert t.stalls(3.0, 5.0, _load_span(t)) == []


def test_writes_that_wait_after_live_while_the_load_runs() -> None:
    # after the second reset no write completes before the next reset, 5.2 s after live
    # (instead of 0.6 s): the wait counts up to that reset
    t = _recorded({13: 8.0})
    assert said(t.stalls(3.0, 5.0, _load_span(t))) == [
        ("resume", "no write completed on nvme0 for 5.2s after it was live again (21.5s), "
                   "while its load was writing: more than 5s")]


def test_writes_never_resumed_count_until_the_load_ended() -> None:
    t = _recorded()
    t.events = [e for e in t.events if not (e.kind == "io_resumed" and e.at > t.events[0].at
                                             + 29)]
    assert said(t.stalls(3.0, 5.0, _load_span(t))) == [
        ("resume", "no write completed on nvme0 for 8.8s after it was live again (29.6s), "
                   "while its load was writing: more than 5s")]


def test_no_load_writing_no_resume_to_wait_for() -> None:
    t = _recorded({13: 8.0})
    assert t.stalls(3.0, 5.0, {}) == []
    assert t.stalls(3.0, None, _load_span(t)) == []


def test_a_live_the_scenario_silenced_the_device_after_is_not_awaited() -> None:
    # dead-during-reset on 6.1 (seed 7): the reset it silences comes back live just before
    # the silence; no write completes until the driver's own reset 6.1 s later
    t = _recorded({13: 8.0})
    live = next(e.at for e in t.events[12:] if e.kind == "state" and e.detail.endswith("live"))
    t.events.append(Event(live + 0.03, "device_silenced", "nvme0"))
    assert t.stalls(3.0, 5.0, _load_span(t)) == []
    t.events.append(Event(live + 0.03, "device_silenced", "nvme1"))  # another controller
    t.events = [e for e in t.events if not (e.kind == "device_silenced" and e.detail == "nvme0")]
    assert len(t.stalls(3.0, 5.0, _load_span(t))) == 1


def test_stalls_become_failures_and_multipath_judges_no_resume() -> None:
    t = _recorded({11: 4.0, 12: 4.0, 13: 4.0})
    assert [(f.kind, f.code) for f in stall_failures(t, 3.0, 5.0)] == [
        (FailureKind.NOT_RECOVERED, "slow-reset")]
    t = _recorded({13: 8.0})
    assert [(f.kind, f.code) for f in stall_failures(t, 3.0, 5.0)] == [
        (FailureKind.SLOW, "io-stalled")]
    assert stall_failures(t, 3.0, 5.0, multipath=True) == []


def test_a_slow_reset_counts_what_it_requeued() -> None:
    # the slow second reset (out of live from 20.6 s) requeued 24 requests just before the
    # sampler saw it leave live; the first reset's 16, and a summary without times, are not
    # its own
    t = _recorded({11: 4.0, 12: 4.0, 13: 4.0})
    gone = t.events[0].at + 20.6
    t.add("requeued", "24 request(s) by a reset (20.4s kernel uptime)", gone - 0.2)
    t.add("requeued", "16 request(s) by a reset (12.0s kernel uptime)", gone - 8.0)
    t.add("requeued", "32 at 9.8s, 24 at 12.0s (kernel uptime)", gone + 2.0)
    [stall] = t.stalls(3.0, 5.0, _load_span(t))
    assert stall.requeued == 24 and stall.message.endswith("; it requeued 24 request(s)")
    [failure] = stall_failures(t, 3.0, 5.0)
    assert (failure.code, failure.requeued) == ("slow-reset", 24)


def test_a_burst_is_written_as_it_is_read() -> None:
    t = Timeline()
    t.add("requeued", requeue_burst(24, 20.4), 5.0)
    assert t.requeue_bursts() == [(5.0, 24)]
