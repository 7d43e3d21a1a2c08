"""The proof of no lost write, against loads made by hand: what a verify-only pass's outcome
becomes (nothing, LOST_DATA, IO_ERROR, HANG), how the writes a fault made fail are read back
and classified, and what a salvage still judges after a failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import CommandTimeout
from harness.guest.fio import FioResult, JobResult
from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind
from harness.recovery import verification
from harness.recovery.failures import ScenarioFailed
from harness.recovery.loads import Loads
from harness.recovery.verification import Verification

AT = 40960
BLOCK = (Path(__file__).parent / "data" / f"fio-3.33-crc32c-block-at-{AT}.bin").read_bytes()
MIB = 1 << 20


def _result(error: int = 0, read: int = MIB, messages: str = "") -> FioResult:
    return FioResult((JobResult("verify", error, int(error != 0), read, 0, 0.0, 0.0),), {},
                     messages)


class FakePass:
    def __init__(self, waits: int = 0) -> None:
        self.waits, self.killed = waits, False  # waits: times it is still running

    def wait(self, timeout: float) -> Any:
        if self.waits:
            self.waits -= 1
            raise CommandTimeout("still running", "")
        return type("Res", (), {"stderr": ""})()

    def kill(self) -> None:
        self.killed = True


class FakeLoad:
    """A load whose verify-only pass gives ``result``; its device holds ``blocks``."""

    def __init__(self, name: str = "load0", result: FioResult | None = None,
                 blocks: dict[int, bytes] | None = None, messages: str = "",
                 last: set[int] | None = None, waits: int = 0) -> None:
        self.name, self.messages, self.lost, self.running = name, messages, False, False
        self.result = result or _result()
        self.blocks, self.last = blocks or {}, last or set()
        self.ends_at: float | None = 1.0
        self.passes: list[FakePass] = []
        self.waits, self.ended = waits, False

    def start_verify_pass(self, every_error: bool = False) -> FakePass:
        self.passes.append(FakePass(self.waits))
        return self.passes[-1]

    def verify_result(self, stderr: str) -> FioResult:
        return self.result

    def last_completed(self) -> set[int]:
        return self.last

    def read_blocks(self, offsets: set[int]) -> dict[int, bytes]:
        return {o: self.blocks.get(o, bytes(4096)) for o in offsets}

    def end(self, timeout: float = 300.0, now: bool = False) -> FioResult:
        self.ended = True
        return _result()


class Setup:
    def __init__(self, *loads: FakeLoad, unstable_after: int | None = None) -> None:
        self.loads = Loads()
        for load in loads:
            self.loads.add(load)  # type: ignore[arg-type]
            self.loads.flowing(load, 100.0)  # type: ignore[arg-type]
        self.failures: list[Failure] = []
        self.timeline = Timeline()
        self.watched = 0
        self.unstable_after = unstable_after
        self.v = Verification(self.loads, self.failures, self.timeline,
                              lambda kind, detail: self.timeline.add(kind, detail, 0.0),
                              self.watch, lambda: "kernel log:\nnvme nvme0: I/O 1 timeout")

    def watch(self) -> None:
        self.watched += 1
        if self.unstable_after is not None and self.watched > self.unstable_after:
            self.failures.append(Failure(FailureKind.UNSTABLE, "timeouts again"))
            raise ScenarioFailed("timeouts again")

    def verified_events(self) -> list[str]:
        return [e.detail for e in self.timeline.sorted() if e.kind == "verified"]


def test_an_intact_pass_is_recorded_and_marks_the_load_verified() -> None:
    s = Setup(load := FakeLoad())
    s.v.verify(load)  # type: ignore[arg-type]
    assert s.failures == [] and "load0" in s.loads.verified
    assert s.verified_events() == ["every completed write intact"]


def test_a_pass_that_read_nothing_is_lost_data() -> None:
    s = Setup(load := FakeLoad(result=_result(read=0)))
    with pytest.raises(ScenarioFailed):
        s.v.verify(load)  # type: ignore[arg-type]
    assert [f.kind for f in s.failures] == [FailureKind.LOST_DATA]
    assert "read nothing back" in s.failures[0].message


def test_a_wrong_block_is_lost_data() -> None:
    s = Setup(load := FakeLoad(result=_result(error=84)))  # EILSEQ
    with pytest.raises(ScenarioFailed):
        s.v.verify(load)  # type: ignore[arg-type]
    assert [f.kind for f in s.failures] == [FailureKind.LOST_DATA]


def test_the_kernel_log_is_watched_while_the_pass_runs_and_trouble_stops_it() -> None:
    s = Setup(load := FakeLoad(waits=5), unstable_after=2)
    with pytest.raises(ScenarioFailed):
        s.v.verify(load)  # type: ignore[arg-type]
    assert s.watched == 3 and load.passes[0].killed
    assert [f.kind for f in s.failures] == [FailureKind.UNSTABLE]


def test_a_pass_past_its_timeout_is_a_hang_with_the_driver_log(monkeypatch) -> None:
    monkeypatch.setattr(verification, "VERIFY_WATCH_S", 0.0)
    s = Setup(load := FakeLoad(waits=1000))
    with pytest.raises(ScenarioFailed):
        s.v.verify(load, timeout=0.0)  # type: ignore[arg-type]
    assert [f.kind for f in s.failures] == [FailureKind.HANG] and load.passes[0].killed
    assert "I/O 1 timeout" in s.failures[0].evidence


def _through_fault(blocks: dict[int, bytes], messages: str,
                   last: set[int] | None = None, errs: str = "") -> Setup:
    load = FakeLoad(blocks=blocks, messages=messages, last=last,
                    result=_result(error=84 if errs else 0, messages=errs))
    s = Setup(load)
    s.timeline.add("fault", "removal", 110.0)
    return s


FAILED_AT = f"111.0 fio: io_u error on file /dev/nvme0n1: Input/output error: write offset={AT}, buflen=4096\n"  # noqa: E501


def test_a_failed_write_holding_its_new_data_passes() -> None:
    s = _through_fault({AT: BLOCK}, FAILED_AT)
    s.v.through_fault(s.loads[0])
    assert s.failures == []
    assert s.verified_events() == ["every completed write intact; 1 of 1 failed writes hold "
                                   "old or new data"]


def test_a_failed_write_holding_its_old_data_passes() -> None:
    s = _through_fault({}, FAILED_AT)  # never written: zeros
    s.v.through_fault(s.loads[0])
    assert s.failures == []


def test_a_failed_write_holding_another_blocks_data_is_garbled() -> None:
    s = _through_fault({AT + 4096: BLOCK}, FAILED_AT.replace(str(AT), str(AT + 4096)))
    with pytest.raises(ScenarioFailed):
        s.v.through_fault(s.loads[0])
    assert [f.code for f in s.failures] == ["failed-write-garbled"]


def test_a_completed_write_among_the_last_that_reads_back_unwritten_is_lost() -> None:
    s = _through_fault({}, "", last={AT})
    with pytest.raises(ScenarioFailed):
        s.v.through_fault(s.loads[0])
    assert [f.code for f in s.failures] == ["lost-write"]
    assert f"offset {AT}, among the last writes completed" in s.failures[0].message


def test_an_error_before_the_fault_is_a_failure_of_its_own() -> None:
    early = FAILED_AT.replace("111.0", "105.0")
    s = _through_fault({AT: BLOCK}, early)
    s.v.through_fault(s.loads[0])
    assert [f.code for f in s.failures] == ["error-before-fault"]


def test_salvage_judges_only_loads_left_unverified_and_visible() -> None:
    done, away, lost, left = (FakeLoad(n) for n in ("done", "away", "lost", "left"))
    lost.lost = True
    s = Setup(done, away, lost, left)
    s.loads.verified.add("done")
    s.loads.opaque.add("away")
    s.v.salvage()
    assert [ld.ended for ld in (done, away, lost, left)] == [False, False, False, True]
    assert s.loads.verified == {"done", "left"} and s.failures == []


def test_salvage_records_what_it_finds_without_raising() -> None:
    s = Setup(FakeLoad(result=_result(error=84)))
    s.v.salvage()
    assert [f.kind for f in s.failures] == [FailureKind.LOST_DATA]
