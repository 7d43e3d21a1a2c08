"""The AER pieces that need no VM: the record the kernel's aer_inject module reads, the
port's error counters as the kernel prints them, QEMU's severities."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from harness.faults.guest import AerInject
from harness.faults.host import AerError
from harness.guest.nvme import PciFunction
from harness.guest.ssh import CommandResult

# 6.12's aer_dev_* files of a root port that reported one correctable and one fatal error
COUNTERS = """aer_dev_correctable:TOTAL_ERR_COR 1
aer_dev_nonfatal:TOTAL_ERR_NONFATAL 0
aer_dev_fatal:TOTAL_ERR_FATAL 1
"""


class FakeGuest:
    def __init__(self, out: str, code: int = 0) -> None:
        self.out, self.code, self.commands = out, code, []

    def run(self, command: str, timeout: float = 60.0, check: bool = False) -> CommandResult:
        self.commands.append(command)
        return CommandResult(command, self.code, self.out, "", 0.0)


def test_the_inject_record_is_the_modules_struct() -> None:
    record = AerInject(None, "0000:00:1c.2", 10, correctable=0x40).record()  # type: ignore[arg-type]
    assert len(record) == 32  # struct aer_error_inj: 3 bytes, a pad, 7 words
    bus, dev, fn, uncor, cor, *header, domain = struct.unpack("<BBBxIIIIIII", record)
    assert (bus, dev, fn, uncor, cor, header, domain) == (0, 0x1C, 2, 0, 0x40, [0] * 4, 0)
    fatal = AerInject(None, "0001:02:03.0", 10, uncorrectable=0x10)  # type: ignore[arg-type]
    assert struct.unpack("<BBBxIIIIIII", fatal.record())[:4] == (2, 3, 0, 0x10)
    assert fatal.record()[-4:] == b"\x01\x00\x00\x00"


def test_the_ports_counters_are_read_by_severity() -> None:
    guest = FakeGuest(COUNTERS)
    port = PciFunction(guest, "0000:00:03.0")  # type: ignore[arg-type]
    assert port.aer_counts() == {"correctable": 1, "nonfatal": 0, "fatal": 1}
    assert "/sys/bus/pci/devices/0000:00:03.0" in guest.commands[0]


def test_a_function_without_aer_has_no_counters() -> None:
    guest = FakeGuest("grep: aer_dev_correctable: No such file or directory\n", code=2)
    assert PciFunction(guest, "0000:01:00.0").aer_counts() == {}  # type: ignore[arg-type]


def test_qemus_fatal_errors_are_those_its_severity_register_marks() -> None:
    assert AerError(None, "rp0", "DLP").severity == "fatal"  # type: ignore[arg-type]
    assert AerError(None, "rp0", "COMP_TIME").severity == "nonfatal"  # type: ignore[arg-type]
    assert AerError(None, "rp0", "MALF_TLP").describe() == "PCIe AER MALF_TLP (fatal) from rp0"  # type: ignore[arg-type]


def test_the_scenarios_errors_are_of_the_severity_it_counts_them_under() -> None:
    from harness.recovery.scenarios.aer import FATAL, NONFATAL, STATUS_BITS
    assert AerError(None, "rp0", FATAL).severity == "fatal"  # type: ignore[arg-type]
    assert AerError(None, "rp0", NONFATAL).severity == "nonfatal"  # type: ignore[arg-type]
    # aer_inject's bits of the same errors (PCIe Uncorrectable Error Status: bit 4 Data Link
    # Protocol, fatal by default; bit 14 Completion Timeout, non-fatal)
    assert STATUS_BITS == {FATAL: 1 << 4, NONFATAL: 1 << 14}


def test_the_requests_the_driver_holds_are_counted_from_blk_mqs_busy_lists() -> None:
    from harness.guest.nvme import held_by_driver
    busy = "000000003e9b1f2c {.op=WRITE, .cmd_flags=SYNC, .rq_flags=STARTED, .tag=742}\n" * 2
    assert held_by_driver(FakeGuest(busy)) == 2  # type: ignore[arg-type]
    assert held_by_driver(FakeGuest("")) == 0  # type: ignore[arg-type]
    # no debugfs: not known
    assert held_by_driver(FakeGuest("", code=1)) is None  # type: ignore[arg-type]


def test_the_nvme_disks_completions_are_counted_from_diskstats(tmp_path: Path) -> None:
    from harness.guest.nvme import NVME_COMPLETIONS
    stats = tmp_path / "diskstats"
    stats.write_text(
        " 259       0 nvme0n1 120 0 960 10 300 0 2400 50 16 90 60 0 0 0 0 0 0\n"
        " 259       1 nvme0n1p1 100 0 800 9 200 0 1600 40 0 80 49 0 0 0 0 0 0\n"
        " 259       2 nvme1n2 7 0 56 1 5 0 40 1 0 2 2 0 0 0 0 0 0\n"
        " 254       0 vda 9999 0 1 1 9999 0 1 1 0 1 1 0 0 0 0 0 0\n")
    out = subprocess.run(f"{NVME_COMPLETIONS} {stats}", shell=True, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == [str(120 + 300 + 7 + 5)]  # no partition, no other disk
