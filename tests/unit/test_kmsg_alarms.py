"""The driver's own alarms (harness.reading.kmsg.ALARMS) on recorded kernel logs.

Recorded: tests/unit/data/console-*.log are serial consoles of real runs on this machine (a
6.1 driver with tests/patches/stale-completion.patch; stock 6.1 and 6.12 under faults), and
known-bugs/linux-5.10-stale-shadow-doorbells/kernel-log-5.10.txt is 5.10 giving up.
"""

# ruff: noqa: E501

from __future__ import annotations

from pathlib import Path

import pytest

from harness.reading.kmsg import (
    ALARMS,
    CONTROLLER_GIVEN_UP,
    accepted_alarms,
    accepts_give_up,
    find_alarms,
)

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]


def _log(name: str) -> str:
    return (DATA / name).read_text(errors="replace")


def test_a_stale_completion_is_two_alarms_with_every_line() -> None:
    found = find_alarms(_log("console-6.1-stale-completion-patch.log"))
    assert [a.alarm.code for a in found] == ["alarm-genctr-mismatch", "alarm-invalid-cqe-id"]
    genctr, invalid = found
    assert genctr.lines[0] == "[   14.853353] nvme nvme0: request 0x25a genctr mismatch (got 0xf expected 0x0)"
    assert invalid.lines[0] == "[   14.853602] nvme nvme0: invalid id 62042 completed on queue 1"
    assert len(genctr.lines) == len(invalid.lines) == 74  # one pair per stale entry
    assert invalid.message.startswith(
        "nvme nvme0: invalid id 62042 completed on queue 1 (74 times): a completion queue entry")
    evidence = invalid.evidence.splitlines()
    assert evidence[-20:] == list(invalid.lines[:20])  # after the lines that led up to it
    assert evidence[0] == "the driver's lines before it:" and "the alarm:" in evidence
    assert invalid.before[-1] == genctr.lines[0]  # its first line came right after the other's


def test_5_10_giving_the_controller_up_is_two_give_up_alarms() -> None:
    text = (ROOT / "known-bugs/linux-5.10-stale-shadow-doorbells/kernel-log-5.10.txt").read_text()
    found = find_alarms(text)
    assert [(a.alarm.code, a.alarm.give_up) for a in found] == [
        ("alarm-not-marked-live", True), ("alarm-removed-after-probe-failure", True)]
    assert found[1].lines[0].endswith("nvme nvme0: Removing after probe failure status: -19")
    # what led up to it: the timeout that disabled the controller in the middle of the reset
    assert "timeout, disable controller" in found[0].evidence


def test_a_declared_give_up_is_left_out_and_nothing_else() -> None:
    text = (ROOT / "known-bugs/linux-5.10-stale-shadow-doorbells/kernel-log-5.10.txt").read_text()
    assert [a.alarm.code for a in find_alarms(text, CONTROLLER_GIVEN_UP)] == [
        "alarm-not-marked-live"]
    stale = _log("console-6.1-stale-completion-patch.log")
    assert len(find_alarms(stale, CONTROLLER_GIVEN_UP)) == 2


@pytest.mark.parametrize("log", [
    "console-6.1-bus-master-off.log",  # timeouts, aborts, resets: a recovery's words, no alarm
    "console-6.1-mmio-off.log",
    "console-6.1-pci-remove-rescan.log",
    "console-6.1-dead-during-reset.log",
    "console-6.1-stall-timeout.log",  # aborts of throttled I/O, no "completion polled"
    "console-6.12-dead-during-reset.log",
    "console-6.12-admin-during-reset.log",
    "console-6.12-hot-remove.log",
    "console-6.12-mmio-off.log",  # the reset re-enabled the device: recovered, not given up
    "console-6.12-pci-remove-rescan.log",
])
def test_stock_drivers_under_faults_raise_no_alarm(log: str) -> None:
    text = _log(log)
    assert "timeout" in text or "pci function" in text  # the fault is in the log
    assert find_alarms(text) == []


# One line per row, as each kernel's source prints it (dev_* prefix, %d, %#x). Recorded where a
# run printed it; the others are the source's format filled in.
SAMPLES = {
    "alarm-invalid-cqe-id": "[   14.853602] nvme nvme0: invalid id 62042 completed on queue 1",
    "alarm-genctr-mismatch": "[   21.171743] nvme nvme0: request 0x25f genctr mismatch (got 0x0 expected 0x1)",
    "alarm-unknown-tag": "[   21.171743] could not locate request for tag 0x3ff",
    "alarm-removed-after-probe-failure": "[   42.223831] nvme nvme0: Removing after probe failure status: -19",
    "alarm-disabled-after-reset-failure": "[   42.223831] nvme nvme1: Disabling device after reset failure: -4",
    "alarm-not-marked-live": "[   42.218290] nvme nvme0: failed to mark controller live state",
    "alarm-not-marked-connecting": "[   42.218290] nvme nvme0: failed to mark controller CONNECTING",
    "alarm-reset-not-resetting": "[   42.218290] nvme nvme0: ctrl state 6 is not RESETTING",
    "alarm-io-queues-lost": "[   42.218290] nvme nvme0: IO queues lost",
}


def test_every_row_has_a_sample_and_only_its_own_row_matches_it() -> None:
    assert sorted(SAMPLES) == sorted(a.code for a in ALARMS)
    for code, line in SAMPLES.items():
        assert [a.alarm.code for a in find_alarms(f"{line}\r\n")] == [code], line


def test_the_table_is_sound() -> None:
    codes = [a.code for a in ALARMS]
    assert len(set(codes)) == len(codes) and all(c.startswith("alarm-") for c in codes)
    assert all(a.kernels and set(a.kernels) <= {"5.10", "6.1", "6.12"} for a in ALARMS)
    # impossible states are never a scenario's accepted outcome
    impossible = {a.code for a in ALARMS if not a.give_up}
    assert impossible == {"alarm-invalid-cqe-id", "alarm-genctr-mismatch", "alarm-unknown-tag"}
    assert set(CONTROLLER_GIVEN_UP) < {a.code for a in ALARMS if a.give_up}


def test_a_recovery_is_not_an_alarm() -> None:
    text = "\n".join([
        "nvme nvme0: I/O 341 QID 1 timeout, reset controller",
        "nvme nvme0: I/O tag 771 (4303) opcode 0x1 (I/O Cmd) QID 1 timeout, reset controller",
        "nvme nvme0: controller is down; will reset: CSTS=0x2, PCI_STATUS=0x10",
        "nvme nvme0: Abort status: 0x371",
        "nvme nvme0: 1/0/0 default/read/poll queues",
        "nvme nvme0: Ignoring bogus Namespace Identifiers",
    ])
    assert find_alarms(text) == []


def test_a_scenario_declares_give_ups_only() -> None:
    @accepts_give_up(*CONTROLLER_GIVEN_UP)
    def procedure() -> None:
        pass

    assert accepted_alarms(procedure) == frozenset(CONTROLLER_GIVEN_UP)
    assert accepted_alarms(test_a_recovery_is_not_an_alarm) == frozenset()
    with pytest.raises(ValueError, match="not a give-up"):
        accepts_give_up("alarm-invalid-cqe-id")
    with pytest.raises(ValueError, match="not a give-up"):
        accepts_give_up("alarm-no-such-thing")


def test_the_silent_device_scenarios_accept_a_give_up_and_no_other_does() -> None:
    from harness.recovery import scenarios

    declared = {name: accepted_alarms(scenarios.get(name).procedure)
                for name in scenarios.names()}
    assert {n for n, codes in declared.items() if codes} == {
        "mmio-off", "dead-during-reset", "fi-admin-during-reset"}
    assert all(codes <= set(CONTROLLER_GIVEN_UP) for codes in declared.values())


def test_the_lines_before_an_alarm_are_the_drivers_not_the_harnesss_marks() -> None:
    text = ("[   32.18] nvmeh: blocked tasks\n[   32.19] nvmeh: kernel log clock\n"
            "[   40.11] nvme nvme0: I/O 2 QID 1 timeout, disable controller\n"
            "[   40.14] nvme nvme0: failed to mark controller live state\n")
    (alarm,) = find_alarms(text)
    assert alarm.before == ("[   40.11] nvme nvme0: I/O 2 QID 1 timeout, disable controller",)
