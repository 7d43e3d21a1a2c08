"""One seeded iteration of a scenario on a fresh VM, and the failures it found: the runner
``repro``, ``matrix`` and pytest share."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import (
    CommandTimeout,
    EmulatorCrash,
    GuestHang,
    GuestPanic,
    GuestUnreachable,
    HarnessError,
)
from harness.guest.nvme import NotRecovered
from harness.machine import bootcrash
from harness.machine.hostcpu import CpuSampler
from harness.machine.lab import Lab
from harness.machine.system import System
from harness.reading import kmsg
from harness.reading.oops import Oops
from harness.reading.verdict import (
    LEAVES_GUEST_USABLE,
    Failure,
    FailureKind,
    IterationResult,
    by_severity,
)
from harness.recovery.context import Context, ScenarioFailed
from harness.recovery.registry import Scenario, ScenarioSkipped
from harness.recovery.stalljudge import stall_failures
from harness.recovery.verification import with_requeues
from harness.target.machine import TargetLab

MAX_SEED = 2**32 - 1


def _clean_up(ctx: Context, artifacts: Path) -> HarnessError | None:
    """Stop what the iteration started and keep its artifacts; what went wrong doing so
    (the failures found before it stand whatever it was)."""
    error = None
    try:
        if ctx.vm.connected:
            ctx.stop_monitors()
            ctx.record_requeues()
            for load in ctx.loads:
                load.stop()
                load.fetch(artifacts / load.workdir.rsplit("/", 1)[-1])
    except HarnessError as exc:
        error = exc
        ctx.event("note", f"cleaning up failed: {exc}")
    if ctx.cpu is not None:
        ctx.cpu.stop()
    ctx.timeline.write(artifacts / "timeline.json")  # a harness error needs it too
    return error


GUEST_UNREACHABLE = "guest-unreachable"  # the code of a guest that stopped answering


def _stopped_answering(vm: System, exc: GuestUnreachable, when: str) -> Failure:
    """A guest that stopped answering once the scenario had begun, its QEMU still running
    and no panic on its console: a hang of the system under test (a driver can wedge a
    whole guest), never a harness that could not test."""
    console = vm.console.tail(30) if vm.console is not None else ""
    return Failure(FailureKind.HANG, f"the guest stopped answering {when}, "
                   f"{vm.silence_note()}: {exc}",
                   "\n".join(filter(None, [exc.detail, f"{vm.console_name}:\n{console}"])),
                   code=GUEST_UNREACHABLE)


def crashed_in_translation(oopses: Sequence[Oops], failures: Sequence[Failure],
                           accel: str) -> str | None:
    """Why an iteration tested nothing: its guest's first crash was QEMU's stale translation
    (:func:`bootcrash.stale_translation`), and nothing failed but what follows a crash (the
    oopses, the guest gone); None otherwise."""
    if not oopses or any(f.kind is not FailureKind.OOPS and f.code != GUEST_UNREACHABLE
                         for f in failures):
        return None
    return bootcrash.stale_translation(oopses[0], accel)


def run_tested_iteration(lab: Lab | TargetLab, scn: Scenario, seed: int, artifacts: Path,
                         procedure: Callable[[Context], None] | None = None,
                         said: Callable[[str], None] = print) -> IterationResult:
    """:func:`run_iteration`, run once more with the same seed where QEMU crashed the guest
    (it tested nothing, and says nothing of the driver); a second crash is raised."""
    try:
        return run_iteration(lab, scn, seed, artifacts, procedure=procedure)
    except EmulatorCrash as exc:
        said(f"nvmeh: {scn.name} seed {seed} tested nothing ({exc}); running it again")
    return run_iteration(lab, scn, seed, artifacts, procedure=procedure)


def skip_reason(lab: Lab | TargetLab, scn: Scenario) -> str | None:
    """Why ``scn`` cannot run in ``lab``, decided before any machine starts."""
    if isinstance(lab, TargetLab):
        return lab.unfit(scn.topology, scn.host_side, scn.kernel_config, scn.power_cut)
    return scn.skip_reason(lab.image.kernel)


def run_iteration(lab: Lab | TargetLab, scn: Scenario, seed: int, artifacts: Path,
                  on_event: Callable[[str, str], None] | None = None,
                  procedure: Callable[[Context], None] | None = None) -> IterationResult:
    """Run one seeded iteration on a fresh VM. A harness problem raises :class:`HarnessError`
    (before or outside the scenario); a driver problem is a failure in the result.
    ``procedure``: run instead of the scenario's own (its soak, :mod:`.soak`)."""
    t0 = time.monotonic()
    if (reason := skip_reason(lab, scn)) is not None:
        raise ScenarioSkipped(reason)
    artifacts.mkdir(parents=True, exist_ok=True)
    console_log = artifacts / "console.log"  # appended to: this iteration's part starts here
    console_from = console_log.stat().st_size if console_log.exists() else 0
    with lab.vm(scn.topology, artifacts, name=scn.name) as vm:
        ctx = Context(vm, seed, artifacts, scn.live_bound, scn.throughput, on_event=on_event)
        ctx.event("started", f"{scn.name} seed {seed}")
        for note in vm.boot_notes:
            ctx.event("note", note)
        ctx.start_monitors()
        if not ctx.requeue_trace.start():
            ctx.event("note", "no requeue trace (the guest kernel has no tracefs): an "
                      "unstable recovery is reported without what the reset requeued")
        # what the host gives the VM and how fast it is; nothing of a real machine's
        ctx.cpu = None if isinstance(lab, TargetLab) else CpuSampler(vm.cpu_seconds,
                                                                     ctx.now).start()
        try:
            (procedure or scn.procedure)(ctx)
        except ScenarioFailed:
            if vm.connected and all(f.kind in LEAVES_GUEST_USABLE for f in ctx.failures):
                with contextlib.suppress(HarnessError):  # the guest may wedge after all
                    ctx.salvage()
        except NotRecovered as exc:
            with contextlib.suppress(ScenarioFailed):
                ctx.not_recovered(exc)
        except CommandTimeout as exc:
            waiting = ctx.blocked_tasks()
            ctx.failures.append(Failure(
                FailureKind.HANG, "\n".join(filter(None, [str(exc), waiting.summary])),
                "\n".join(filter(None, [exc.detail, waiting.text])), code="command-timeout"))
        except GuestHang as exc:  # the message carries the stack: it is the finding itself
            requeued = ctx.requeued_recently()
            waiting = ctx.blocked_tasks()  # before any timeout handling moves them on
            # I/O stuck with the driver: its own account of it (timeouts) into the evidence
            held = ctx.await_io_timeouts(after_hang=True)
            ctx.failures.append(Failure(
                FailureKind.HANG, "\n".join(filter(None, [
                    f"{exc}{kmsg.requeued_note(requeued)}", exc.detail, waiting.summary])),
                kmsg.requeued_evidence(requeued, exc.detail, waiting.text, held.line,
                                       ctx.driver_log()),
                code="hung-task", requeued=len(requeued), held=held.requests))
        except GuestUnreachable as exc:
            try:
                vm.explain_lost_connection()  # QEMU's death is the harness's to report
            except GuestPanic as panic:
                ctx.failures.append(Failure(FailureKind.OOPS, str(panic), panic.detail))
            else:  # QEMU runs, nothing panicked: the guest itself stopped answering
                ctx.failures.append(_stopped_answering(vm, exc, "during the scenario"))
        except GuestPanic as exc:
            ctx.failures.append(Failure(FailureKind.OOPS, str(exc), exc.detail))
        else:
            if not ctx.failures:
                with contextlib.suppress(ScenarioFailed):
                    ctx.check_stable()
        finally:
            cleanup = _clean_up(ctx, artifacts)
        if isinstance(cleanup, (CommandTimeout, GuestHang)):
            # the driver's failure, whatever came before it: a guest that runs no command
            ctx.failures.append(Failure(
                FailureKind.HANG, f"the guest wedged while the iteration was cleaned up: "
                f"{cleanup}", cleanup.detail,
                code="hung-task" if isinstance(cleanup, GuestHang) else "command-timeout"))
        elif isinstance(cleanup, GuestUnreachable) and vm.alive:
            if not any(f.kind is FailureKind.HANG for f in ctx.failures):  # told already
                ctx.failures.append(_stopped_answering(vm, cleanup, "while the iteration "
                                                       "was cleaned up"))
        elif cleanup is not None and not ctx.failures:
            raise cleanup
        if not any(f.kind in (FailureKind.NOT_RECOVERED, FailureKind.HANG)
                   for f in ctx.failures):  # those tell a worse stall already
            ctx.failures.extend(f for f in stall_failures(
                ctx.timeline, scn.reset_bound, scn.resume_bound, vm.topology.subsystem)
                if f not in ctx.failures)  # a soak judges its stalls at checkpoints too
        ctx.failures[:] = [with_requeues(f, ctx.timeline) for f in ctx.failures]
        hangs = "\n".join(f.message for f in ctx.failures if f.kind == FailureKind.HANG)
        oopses = vm.take_oopses()
        if (stale := crashed_in_translation(
                oopses, ctx.failures, lab.accel.name if isinstance(lab, Lab) else "")) is not None:
            raise EmulatorCrash(stale, "\n".join(oopses[0].lines))
        for oops in oopses:
            if oops.kind == "hung_task" and oops.title in hangs:
                continue  # already the iteration's HANG failure
            ctx.failures.append(Failure(FailureKind.OOPS, oops.title, "\n".join(oops.lines),
                                        code="hung-task" if oops.kind == "hung_task"
                                        else "oops-" + oops.kind.replace("_", "-")))
    # The driver's own alarms, read from the serial console like the oopses (complete now
    # that the VM is stopped, and there whether or not SSH outlived the guest)
    with open(console_log, "rb") as log:
        log.seek(console_from)
        text = log.read().decode("utf-8", "replace")
    for alarm in kmsg.find_alarms(text, kmsg.accepted_alarms(scn.procedure)):
        ctx.failures.append(Failure(FailureKind.DRIVER_ALARM, alarm.message, alarm.evidence,
                                    code=alarm.alarm.code))
    return IterationResult(scn.name, seed, by_severity(ctx.failures),
                           tuple(ctx.timeline.recovery_times()),
                           tuple(ctx.timeline.io_resume_times()),
                           tuple(ctx.throughput_judge.judgements),
                           time.monotonic() - t0, artifacts)
