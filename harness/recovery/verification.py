"""The proof that no acknowledged write was lost: fio's results judged, the verify-only
passes run while the kernel log is watched, the writes a fault made fail read back and
classified, and after a failure, what the loads can still tell. Records its findings in the
timeline and among the iteration's failures; knows the loads, not the guest."""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.errors import CommandTimeout
from harness.guest import fio
from harness.guest.ssh import Background
from harness.reading import fioblock
from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind
from harness.recovery.failures import ScenarioFailed, stop
from harness.recovery.loads import Loads

VERIFY_WATCH_S = 3.0  # how often the kernel log is read while a verify pass runs
SALVAGE_VERIFY_S = 60.0  # a verify pass after such a failure: an unstable device may stall it
EVIDENCE_LINES = 50  # of a failure's list of blocks: the first ones tell the pattern


def with_requeues(failure: Failure, timeline: Timeline) -> Failure:
    """An I/O error a load saw, with the requests the reset before its first error had
    requeued (the timeline's requeues are recorded once the iteration ends)."""
    if failure.code != "io-error" or failure.requeued:
        return failure
    errors = [at for at, line in fio.stamped_lines(failure.evidence) if fio.is_error(line)]
    requeued = timeline.requeued_by_reset_before(min(errors)) if errors else 0
    if not requeued:
        return failure
    return replace(failure, message=f"{failure.message}; the reset before the first error "
                                    f"had requeued {requeued} request(s)", requeued=requeued)


@dataclass
class Verification:
    loads: Loads
    failures: list[Failure]
    timeline: Timeline  # read for the faults a load went through
    event: Callable[[str, str], None]  # records in the timeline
    watch: Callable[[], None]  # raises ScenarioFailed when the kernel log shows trouble
    driver_log: Callable[[], str]  # the driver's latest lines: a stalled pass's evidence

    def judge(self, result: fio.FioResult) -> None:
        """A load where recovery should be transparent may see no error at all."""
        if not result.ok:
            kind = (FailureKind.LOST_DATA if any("EILSEQ" in f for f in result.failures)
                    else FailureKind.IO_ERROR)
            stop(self.failures, Failure(kind, "the load saw: " + "; ".join(result.failures),
                                        result.messages))

    def verify(self, load: fio.VerifyLoad, timeout: float = 600.0,
               failed: set[int] | None = None) -> None:
        """The verify-only pass: every write the load completed must read back intact.
        ``failed``: the offsets of the writes that failed (the load ran through a fault that
        took its device away): each may hold its old or its new data, never anything else
        (see :meth:`through_fault`).

        The kernel log is watched while it runs: a controller that starts timing out again
        fails the iteration at once (UNSTABLE) instead of stalling the pass until its timeout.
        """
        self.conclude(load, load.start_verify_pass(every_error=failed is not None), timeout,
                      failed)

    def conclude(self, load: fio.VerifyLoad, bg: Background, timeout: float = 600.0,
                 failed: set[int] | None = None) -> None:
        """Wait for the verify-only pass ``bg`` of ``load`` (started with
        :meth:`fio.VerifyLoad.start_verify_pass`, perhaps long before: a soak verifies one
        segment's writes while the next one runs) and judge it, as :meth:`verify` does."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                res = bg.wait(VERIFY_WATCH_S)
                break
            except CommandTimeout:
                pass
            if time.monotonic() > deadline:
                bg.kill()
                stop(self.failures, Failure(
                    FailureKind.HANG, f"the verify-only pass did not end within {timeout:g}s",
                    self.driver_log()))
            try:
                self.watch()
            except ScenarioFailed:
                bg.kill()
                raise
        self.loads.verified.add(load.name)
        if failed is not None:
            check = self._failed_writes(load, res.stderr, failed)
        else:
            check, lost = self._outcome(load, res.stderr)
            if lost is not None:
                stop(self.failures, lost)
        if check.read_bytes == 0:
            stop(self.failures, Failure(FailureKind.LOST_DATA,
                                        "verify-only pass read nothing back"))

    def through_fault(self, load: fio.VerifyLoad) -> None:
        """Judge a load that ran through a fault that took its device away, once the device
        is back: an error it saw before the fault is a failure (its messages carry the
        guest's time); every write it completed must read back intact, through the fault
        as before it; a write that failed may hold its old data or its new data, never
        another block's or garbage (see :mod:`harness.reading.fioblock`)."""
        self.loads.opaque.discard(load.name)
        faults = self.timeline.times("fault", self.loads.started_at(load))
        early = [line for at, line in fio.stamped_lines(load.messages)
                 if faults and at < faults[0] and fio.is_error(line)]
        if early:
            kind = (FailureKind.LOST_DATA if any(fio.is_verify_error(ln) for ln in early)
                    else FailureKind.IO_ERROR)
            self.failures.append(Failure(kind, f"{load.name} saw an error before the fault: "
                                         f"{early[0]}", "\n".join(early),
                                         code="error-before-fault"))
        self.verify(load, failed=fio.failed_writes(load.messages))

    def _failed_writes(self, load: fio.VerifyLoad, stderr: str,
                       failed: set[int]) -> fio.FioResult:
        """The verify pass of a load whose ``failed`` writes may hold old or new data:
        fio's every wrong block is either one of them or a lost write; each of them is
        read and classified."""
        check = load.verify_result(stderr)
        bad = fio.bad_blocks(check.messages)
        lost = {o: why for o, why in bad.items() if o not in failed}
        unread = [j.describe_error() for j in check.jobs if j.error not in (0, errno.EILSEQ)]
        if unread:  # it could not read its blocks back (EIO...): it verified only some
            stop(self.failures, Failure(FailureKind.IO_ERROR, "verify-only pass: "
                                        + "; ".join(unread), check.messages))
        if not check.ok and not bad:  # wrong blocks that fio's messages did not name
            stop(self.failures, Failure(FailureKind.LOST_DATA, "verify-only pass: "
                                        + "; ".join(check.failures), check.messages))
        # fio's pass stops at the first write of its state's last queue-depth that did not
        # complete: the completed ones among them are read here
        last = load.last_completed() - failed
        held = {o: fioblock.classify(block, o)
                for o, block in load.read_blocks(failed | last).items()}
        wrong = {o: state for o, state in held.items() if o in failed and not state.old_or_new}
        lost.update({o: f"offset {o}, among the last writes completed: {state}"
                     for o, state in held.items() if o in last and state.kind != "written"})
        self.event("verified", "; ".join([
            f"{len(lost)} completed writes read back wrong" if lost
            else "every completed write intact",
            f"{len(failed) - len(wrong)} of {len(failed)} failed writes hold old or new data"]))
        if lost:
            first = min(lost)
            self.failures.append(Failure(
                FailureKind.LOST_DATA, f"verify-only pass: {len(lost)} completed write(s) "
                f"of {load.name} read back wrong, the first at offset {first}: {lost[first]}",
                "\n".join(list(lost.values())[:EVIDENCE_LINES]), code="lost-write"))
        if wrong:
            first = min(wrong)
            self.failures.append(Failure(
                FailureKind.LOST_DATA, f"{len(wrong)} write(s) of {load.name} that failed "
                f"left neither old nor new data, the first at offset {first}: {wrong[first]}",
                "\n".join(f"offset {o}: {state}" for o, state in sorted(wrong.items())),
                code="failed-write-garbled"))
        if lost or wrong:
            raise ScenarioFailed(self.failures[-1].message)
        return check

    def _outcome(self, load: fio.VerifyLoad,
                 stderr: str) -> tuple[fio.FioResult, Failure | None]:
        """A finished verify-only pass of ``load``, in the timeline; its result, and the
        lost data it found, if any."""
        check = load.verify_result(stderr)
        self.event("verified", "; ".join(check.failures) or "every completed write intact")
        lost = None if check.ok else Failure(
            FailureKind.LOST_DATA, "verify-only pass: " + "; ".join(check.failures),
            check.messages)
        return check, lost

    def salvage(self) -> None:
        """After a failure that left the guest usable, what the loads can still tell: each
        transparent load not yet verified is stopped, its errors judged and its writes
        verified (for a bounded time), so that one failure hides no other. Failures found
        are added; nothing is raised."""
        for load in self.loads.unjudged():
            self.loads.verified.add(load.name)
            result = load.end(timeout=SALVAGE_VERIFY_S, now=True)
            with contextlib.suppress(ScenarioFailed):  # recorded (the same twice: once)
                self.judge(result)
            if not result.ok:  # fio counts a failed write as done: its state cannot be
                continue       # verified (such a block may hold its old data)
            bg = load.start_verify_pass()
            try:
                res = bg.wait(SALVAGE_VERIFY_S)
            except CommandTimeout:
                bg.kill()
                self.event("note", f"{load.name}: verify-only pass cut short after "
                           f"{SALVAGE_VERIFY_S:g}s; its writes were not all read back")
                continue
            _, lost = self._outcome(load, res.stderr)
            if lost is not None:
                self.failures.append(lost)
