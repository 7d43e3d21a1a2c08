"""A soak: one VM, the scenario's fault again and again on a seeded schedule, under verifying
loads that keep running. Every recovery is judged as an iteration judges its last one: live
within the bound (the fault itself), writes completing again within the scenario's resume
bound (at once, before the next fault), and, at each checkpoint, no timeout, abort or reset
anywhere in the kernel log since the previous one (for a fault that logs such lines itself,
a silent device: none from each recovery until the next fault), no I/O error, throughput
back after the last recovery, no stall the state monitor saw; and every write the loads
completed read back intact by a verify-only pass. A checkpoint comes every
``SoakPlan.checkpoint`` faults and at the end; when a check fails, the runner's salvage
verifies what it can at once.

The verify-only pass of a segment's loads runs while the next segment's faults do: each
segment writes the other of two regions than the one before, so the pass reads blocks no load
writes meanwhile (and its reads race with the faults too). It is concluded at the next
checkpoint, before that segment's own loads are judged.

The schedule depends on the seed and the fault count only, never on timing: the same seed
replays the same faults on a fresh VM, up to any fault number (``SoakPlan.faults``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.guest import fio
from harness.guest.ssh import Background
from harness.reading import kmsg
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.failures import ScenarioFailed
from harness.recovery.registry import Scenario, Soak
from harness.recovery.stalljudge import stall_failures

SEGMENT_FAULTS = 200  # faults between two checkpoints (verify-only passes)
LOAD_RUNTIME_S = 24 * 3600.0  # a segment's loads run until its checkpoint ends them


@dataclass
class SoakPlan:
    """How long a soak runs, and how far it got. ``seconds``: no fault starts after that
    long; ``faults``: at most that many (the replay of a failure); either may be None."""

    seconds: float | None = None
    faults: int | None = None
    checkpoint: int = SEGMENT_FAULTS  # faults between two checkpoints
    done: int = 0  # faults applied (the last one counted as soon as it starts)
    segment_from: int = 1  # the first fault of the segment under way
    failed_at: int | None = None  # the fault under way, or the last one, when a check failed
    failed_after_s: float | None = None  # seconds into the soak, then
    verifying: tuple[int, int] | None = None  # the faults whose writes are being verified
    checking: bool = False  # the segment's faults are done, its checkpoint under way
    found_by: str = ""  # the checkpoint or verify pass that found the failure
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.seconds is None and self.faults is None:
            raise ValueError("a soak needs a duration or a number of faults")
        if self.faults is not None and self.faults < 1:
            raise ValueError("a soak needs at least one fault")
        if self.checkpoint < 1:
            raise ValueError("a soak needs at least one fault between checkpoints")

    def over(self) -> bool:
        return ((self.faults is not None and self.done >= self.faults)
                or (self.done > 0 and self.seconds is not None
                    and time.monotonic() - self.started >= self.seconds))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def where(self) -> str:
        """Where a failed soak failed, for its report."""
        if self.failed_at is None:
            return f"after {self.done} fault(s), when the soak was judged at its end"
        return (f"at fault {self.failed_at}, {self.failed_after_s:.0f}s into the soak"
                + (f"; found by {self.found_by}" if self.found_by else ""))


def segment_seed(seed: int, segment: int) -> int:
    """What a segment's loads seed their offsets and data with: the first segment the
    iteration's own, every later one another, so that a lost write can never read back a
    same-offset block an earlier segment wrote with the same data."""
    return seed if segment == 1 else (seed << 16) + segment


def procedure(scn: Scenario, plan: SoakPlan) -> Callable[[Context], None]:
    """The soak of ``scn`` as a procedure the runner calls like the scenario's own."""
    soak = scn.soak
    if soak is None:
        raise ValueError(f"{scn.name} has no soak")

    def run(ctx: Context) -> None:
        plan.started = time.monotonic()
        segment = 0
        verifying: Verifying = ((0, 0), [])  # the last segment's passes
        if soak.setup is not None:
            soak.setup(ctx)
        try:
            while not plan.over():
                segment += 1
                plan.segment_from = plan.done + 1
                verifying = _segment(ctx, scn, soak, plan, segment, verifying)
            _conclude(ctx, plan, verifying)
        except BaseException:
            if plan.verifying is not None:  # a pass found it: the faults its writes lived by
                plan.found_by = f"the verify-only pass of faults {plan.verifying[0]}-" \
                                f"{plan.verifying[1]}"
                plan.failed_at = plan.verifying[1]
            else:
                if plan.checking:
                    plan.found_by = f"the checkpoint of faults {plan.segment_from}-{plan.done}"
                plan.failed_at = max(plan.done, 1)
            plan.failed_after_s = plan.elapsed
            for _, bg in verifying[1]:  # the runner's salvage verifies them again
                with contextlib.suppress(HarnessError):
                    bg.kill()
            raise
    return run


# The faults of a segment (first, last) and the verify-only passes of its loads
Verifying = tuple[tuple[int, int], list[tuple[fio.VerifyLoad, Background]]]


def _segment(ctx: Context, scn: Scenario, soak: Soak, plan: SoakPlan, segment: int,
             verifying: Verifying) -> Verifying:
    """Faults until the segment is full or the soak over, then the checkpoint: what the
    loads saw judged, and their verify-only passes started (concluded at the next one)."""
    data_seed = segment_seed(ctx.seed, segment)
    ctx.event("note", f"soak segment {segment} from fault {plan.done + 1}, data seed "
              f"{data_seed}")
    plan.checking = False
    loads = soak.loads(ctx, LOAD_RUNTIME_S, data_seed, segment % 2)
    ctx.measure_kernel_clock()
    since = ctx.log.mark()
    for i in range(plan.checkpoint):
        if i and plan.over():  # a segment begun has a fault, however late it began
            break
        plan.done += 1
        soak.fault(ctx)
        _writes_resume(ctx, loads, scn.resume_bound)
        ctx.sleep(ctx.rng.uniform(*soak.gap))
        if soak.logs_trouble:
            ctx.check_stable()  # from this fault's recovery on, before the next fault
    plan.checking = True
    # the whole segment's log, unless its faults log trouble: then since the last recovery
    ctx.check_stable(None if soak.logs_trouble else since)
    _conclude(ctx, plan, verifying)  # the segment before: its region, not written since
    ctx.finish_loads(loads, now=True, verify=False)
    ctx.stop_monitors()  # what they saw goes into the timeline, for the stall judge
    stalls = [f for f in stall_failures(ctx.timeline, scn.reset_bound, scn.resume_bound,
                                        ctx.vm.topology.subsystem) if f not in ctx.failures]
    ctx.start_monitors()
    if stalls:
        ctx.failures.extend(stalls)
        raise ScenarioFailed(stalls[0].message)
    return (plan.segment_from, plan.done), [(ld, ld.start_verify_pass()) for ld in loads]


def _conclude(ctx: Context, plan: SoakPlan, verifying: Verifying) -> None:
    faults, passes = verifying
    plan.verifying = faults
    for load, bg in passes:
        ctx.verification.conclude(load, bg)
    plan.verifying = None
    if passes:
        ctx.event("checkpoint", f"faults {faults[0]}-{faults[1]}: every completed write "
                  "intact")


def _writes_resume(ctx: Context, loads: list[fio.VerifyLoad], bound: float | None) -> None:
    """Each load completes writes again within ``bound`` seconds of the recovery: judged
    now, before the next fault could hide a stall (the iteration's stall judge sees a stall
    only where no fault follows within the bound)."""
    if bound is None:
        return
    for load in {ld.params["FILENAME"]: ld for ld in loads}.values():  # one per device
        if load.writes_resume(bound):
            continue
        requeued = ctx.log.requeued_by_last_reset()
        ctx.fail(FailureKind.SLOW, f"no write of {load.name} completed on "
                 f"{load.params['FILENAME']} within {bound:g}s of the recovery, while it was "
                 f"writing{kmsg.requeued_note(requeued)}",
                 kmsg.requeued_evidence(requeued, ctx.driver_log()),
                 code="io-stalled", requeued=len(requeued))

