"""What a scenario works with: the steps of a recovery procedure, as a kernel engineer does
them by hand (start the verifying load, inject, wait for recovery, verify), and the mechanics
behind each; every failure is classified (:class:`FailureKind`) and carries its evidence.
"""

from __future__ import annotations

import contextlib
import errno
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from harness.errors import CommandTimeout, GuestHang, HarnessError
from harness.faults import Fault, FaultRefused, FaultStuck
from harness.faults.guest import GuestCommand, SysfsReset
from harness.faults.host import PowerCut
from harness.guest import fio
from harness.guest.guestclock import GuestClock
from harness.guest.guestcpu import GuestCpuMonitor
from harness.guest.nvme import (
    IO_RESUMED,
    Controller,
    NotRecovered,
    RequeueTrace,
    ResetRefused,
    StateMonitor,
    block_device_of,
)
from harness.guest.ssh import Guest
from harness.machine.hostcpu import CpuSampler
from harness.machine.vm import VM
from harness.reading import fioblock, kmsg
from harness.reading.throughput import Criterion
from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind
from harness.recovery.throughputjudge import ThroughputJudge

VERIFY_WATCH_S = 3.0  # how often the kernel log is read while a verify pass runs
# After every recovery, half the IOPS of before the fault within 5 s: generous under TCG (a
# second's IOPS varies by a third there), yet a driver that limps after a reset fails it.
THROUGHPUT = Criterion(share=0.5, within=5.0)
# A reset takes the stock driver 30-250 ms here under TCG (a hot-removed controller's return
# about 1.2 s): seconds out of live is a stalled reset, whatever it logged. Likewise seconds
# after live with a load waiting and no write completed: a stalled queue, not a slow host.
RESET_BOUND_S = 3.0
RESUME_BOUND_S = 5.0
WARM_UP_S = 2.0  # a load runs this long before any fault: a whole second of baseline IOPS
SALVAGE_VERIFY_S = 60.0  # a verify pass after such a failure: an unstable device may stall it
EVIDENCE_LINES = 50  # of a failure's list of blocks: the first ones tell the pattern


class ScenarioFailed(Exception):
    """Ends an iteration early: the driver already failed, going on would prove nothing."""



@dataclass
class Context:
    """What a scenario works with; the mechanics of each step live here, not in scenarios."""

    vm: VM
    seed: int
    artifacts: Path
    live_bound: float
    throughput: Criterion | None = field(default_factory=lambda: THROUGHPUT)  # None: not judged
    rng: random.Random = field(init=False)
    requeue_trace: RequeueTrace = field(init=False)  # what resets put back (the trace)
    timeline: Timeline = field(default_factory=Timeline)
    failures: list[Failure] = field(default_factory=list)
    loads: list[fio.VerifyLoad] = field(default_factory=list)
    monitors: list[StateMonitor] = field(default_factory=list)
    stable_from: float | None = None  # kernel log time of the latest recovery
    previous_recovery: float = 0.0  # kernel log time of the recovery before it (0: boot)
    load_started: dict[str, float] = field(default_factory=dict)  # writes flowing (guest time)
    verified: set[str] = field(default_factory=set)  # loads whose verify-only pass ran
    opaque: set[str] = field(default_factory=set)  # loads under a removal: judged by nobody
    on_event: Callable[[str, str], None] | None = None  # (kind, detail): progress display
    cpu: CpuSampler | None = None  # the VM's host CPU, where a host runs it
    guest_cpu: GuestCpuMonitor | None = None  # how busy the guest was, by its own account

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.requeue_trace = RequeueTrace(self.vm.guest)
        self.throughput_judge = ThroughputJudge(
            self.throughput, self.timeline, lambda: self.cpu,
            lambda: self.guest_cpu.so_far() if self.guest_cpu is not None else None)
        self.clock = GuestClock(
            lambda: float(self.guest.run("echo $EPOCHREALTIME", check=True).stdout))

    def resync_clock(self) -> None:
        """Measure the guest's clock again: it stood still while the VM was stopped."""
        self.clock.resync()
        if self.cpu is not None:
            self.cpu.rewind(self.now())

    def now(self) -> float:
        """The guest's clock, estimated on the host: every timeline event uses it."""
        return self.clock.now()

    def event(self, kind: str, detail: str = "", at: float | None = None) -> None:
        if kind in ("fault", "lifted"):
            raise ValueError(f"a {kind!r} event is recorded by Context.inject, not by hand")
        self._add(kind, detail, at)

    def _add(self, kind: str, detail: str, at: float | None) -> None:
        self.timeline.add(kind, detail, self.now() if at is None else at)
        if self.on_event is not None:
            self.on_event(kind, detail)

    def inject(self, fault: Fault) -> Injected:
        """Apply ``fault`` and record it on the guest's clock (its own stamp where it took
        one, else the moment it was applied); ``with ctx.inject(fault):`` lifts it on leaving.
        A fault the driver refuses is its failure (NOT_RECOVERED), one that never completes
        a hang."""
        started = self.now()
        try:
            fault.apply()
        except BaseException as exc:  # recorded all the same: the timeline shows what failed
            self._add("fault", fault.describe(), started)
            if isinstance(exc, FaultRefused):
                self.fail(FailureKind.NOT_RECOVERED, f"{fault.describe()} failed: {exc}",
                          code="fault-refused")
            if isinstance(exc, FaultStuck):
                self.fail(FailureKind.HANG, str(exc))
            raise
        self._add("fault", fault.describe(), started if fault.applied_at is None
                  else fault.applied_at)
        if fault.silences is not None:
            self._add("device_silenced", fault.silences, fault.silenced_at)
        return Injected(self, fault)

    def lift(self, fault: Fault) -> None:
        """Undo ``fault`` and record its lifting (recovery times count from here on)."""
        refused: FaultRefused | None = None
        try:
            fault.lift()
        except FaultRefused as exc:
            refused = exc
        if fault.stops_clock and refused is None:
            self.resync_clock()
        self._add("lifted", fault.describe(), None)
        if refused is not None:
            self.fail(FailureKind.NOT_RECOVERED, f"lifting {fault.describe()} failed: "
                      f"{refused}", code="fault-refused")

    def act(self, command: str, what: str, timeout: float | None = None) -> str:
        """Run a fault-injecting guest command, timed on the guest's clock; its stdout."""
        fault = GuestCommand(self.guest, command, what, timeout or self.live_bound)
        self.inject(fault)
        return fault.output

    @property
    def guest(self) -> Guest:
        return self.vm.guest

    def controller(self, name: str = "nvme0") -> Controller:
        return Controller(self.guest, name)

    def fail(self, kind: FailureKind, message: str, evidence: str = "", code: str = "",
             requeued: int = 0) -> NoReturn:
        if kind in (FailureKind.NOT_RECOVERED, FailureKind.HANG):
            evidence = "\n".join(filter(None, (evidence.strip(), self.driver_log())))
        self.failures.append(Failure(kind, message, evidence, code, requeued))
        raise ScenarioFailed(message)

    def driver_log(self, lines: int = 15) -> str:
        """The NVMe driver's latest kernel log lines: what it said while it failed to recover."""
        try:
            out = self.guest.run(f"dmesg | grep -E 'nvme|blk_update_request|I/O error' | "
                                 f"tail -n {lines}", timeout=10).stdout
        except HarnessError:
            console = self.vm.console
            out = console.tail(lines) if console else ""
        return f"kernel log:\n{out.rstrip()}" if out.strip() else ""

    def sleep(self, seconds: float) -> None:
        """Wait, but notice a guest panic, a hung task or a dead QEMU at once."""
        console = self.vm.console
        if console is not None:
            console.wait_for(lambda: console.panic is not None or self.vm.hang_pending(),
                             seconds)
        else:
            time.sleep(seconds)
        self.vm.check_alive()
        if (hang := self.vm.hang_report()) is not None:
            raise GuestHang(*hang)

    def detect_hangs(self, seconds: int = 10) -> None:
        """Make the guest's hung-task detector report a task blocked for ``seconds`` (the
        kernel's default is minutes), with its stack trace on the console (loglevel 7: the
        trace is printed at KERN_INFO); the iteration then fails at once (HANG)."""
        self.guest.run(f"sysctl -q -w kernel.hung_task_timeout_secs={seconds} "
                       "kernel.hung_task_warnings=-1 && dmesg -n 7", check=True, timeout=30)
        self.event("hang_detection", f"hung tasks reported after {seconds}s")

    def namespaces(self) -> list[str]:
        """Block devices of the topology's namespaces attached at start, as the guest names
        them."""
        topo = self.vm.topology
        if topo.subsystem:
            found = [(nsid, block_device_of(self.guest, nsid)) for nsid in topo.attached_nsids()]
            missing = [nsid for nsid, dev in found if dev is None]
            if missing:
                raise HarnessError(f"the guest shows no block device for namespace(s) "
                                   f"{missing} of the subsystem")
            return [dev for _, dev in found if dev is not None]
        return [f"/dev/{dev}" for i in range(len(topo.controllers))
                for dev in topo.block_devices(i)]

    def controllers(self) -> list[Controller]:
        return [self.controller(f"nvme{i}") for i in range(len(self.vm.topology.controllers))]

    def start_loads(self, runtime: float, offset: str = "0", size: str = "256M",
                    fsync: int = 0, polled: bool = False,
                    inline_verify: bool = True) -> list[fio.VerifyLoad]:
        """One verifying load per namespace (each job of it writes ``size`` from ``offset``;
        ``fsync=N``: a flush after every N writes; ``polled``: io_uring HIPRI), warmed up.
        ``inline_verify=False``: writes only, for loads whose device is taken away under
        them (see :meth:`remove_and_restore`)."""
        loads = [self.start_load(runtime, dev, offset, size, fsync, polled, warm_up=False,
                                 inline_verify=inline_verify)
                 for dev in self.namespaces()]
        self.warm_up(loads)
        return loads

    def warm_up(self, loads: list[fio.VerifyLoad]) -> None:
        """Let ``loads`` run long enough to measure the IOPS a recovery must come back to."""
        started = max(self.load_started[ld.name] for ld in loads)
        self.sleep(max(0.0, started + WARM_UP_S - self.now()))

    def finish_loads(self, loads: list[fio.VerifyLoad], transparent: bool = True) -> None:
        for load in loads:
            self.finish_load(load, transparent)

    def start_load(self, runtime: float, device: str = "/dev/nvme0n1", offset: str = "0",
                   size: str = "256M", fsync: int = 0, polled: bool = False,
                   warm_up: bool = True, transparent: bool = True,
                   data_seed: int | None = None, inline_verify: bool = True) -> fio.VerifyLoad:
        """A verifying load on ``device``, warmed up (see :meth:`warm_up`) unless told not
        to (several loads are warmed up together). ``transparent=False``: it runs while its
        device is taken away, so neither its errors nor its data are judged (see
        :meth:`finish_load`). ``data_seed``: what fio seeds its offsets and data with (the
        iteration's seed unless given)."""
        load = fio.VerifyLoad(self.guest, device,
                              seed=self.seed if data_seed is None else data_seed,
                              runtime=runtime,
                              name=f"load{len(self.loads)}", offset=offset, size=size,
                              fsync=fsync, polled=polled,
                              backlog=fio.INLINE_VERIFY_BACKLOG if inline_verify else 0,
                              headroom=self.live_bound + 30 + (
                                  self.throughput.within + self.throughput.max_extension
                                  if self.throughput else 0.0))
        self.loads.append(load)
        if not transparent:
            self.opaque.add(load.name)
        try:
            load.start()
        except fio.LoadStalled as exc:
            self.fail(FailureKind.HANG, str(exc), code="load-stalled")
        self.load_started[load.name] = self.now()
        self.event("load_started", f"{load.name} {device}")
        if warm_up:
            self.warm_up([load])
        return load

    def reset(self, ctrl: Controller) -> float:
        """A sysfs reset under whatever runs; returns the seconds until ``live`` again."""
        fault = SysfsReset(ctrl, self.live_bound)
        try:
            self.inject(fault)
        except NotRecovered as exc:
            self.not_recovered(exc)
        except ResetRefused as exc:
            self.fail(FailureKind.NOT_RECOVERED, str(exc), code="reset-refused")
        assert fault.applied_at is not None and fault.live_at is not None
        self.recovered(f"{ctrl.name} live", at=fault.live_at)
        return fault.live_at - fault.applied_at

    def resets(self, gaps: list[float]) -> None:
        """A sysfs reset of a (seeded) random controller, then a gap, for each gap."""
        ctrls = self.controllers()
        for gap in gaps:
            self.reset(self.rng.choice(ctrls))
            self.sleep(gap)

    def wait_live(self, ctrl: Controller) -> None:
        """Wait (up to the scenario's bound) for ``ctrl`` to be live; a failure if it is not."""
        try:
            samples = ctrl.wait_state("live", timeout=self.live_bound)
        except NotRecovered as exc:
            self.not_recovered(exc)
        self.recovered(f"{ctrl.name} live", at=samples[-1].at if samples else None)

    def not_recovered(self, exc: NotRecovered) -> NoReturn:
        """A controller that did not come back, and what the reset had requeued: a reset
        that waits for requeued requests it lost never goes live."""
        try:
            requeued = [r for r in self.requeue_trace.read() if r.at > (self.stable_from or 0.0)]
        except HarnessError:  # the guest may be gone with its controller, or hung (its
            requeued = []     # hung-task report still comes out among the oopses)
        self.fail(FailureKind.NOT_RECOVERED, str(exc) + kmsg.requeued_note(requeued),
                  "\n".join(filter(None, [*kmsg.requeued_lines(requeued), exc.detail])),
                  code="not-live", requeued=len(requeued))

    def driver_reacts(self, ctrl: Controller, within: float, since: float) -> None:
        """Wait for the driver to take ``ctrl`` out of ``live`` (its reaction to a fault it
        must notice by itself), or find in the kernel log (after ``since``) that it already
        reset it; neither within ``within`` seconds is a hang."""
        def reset_logged() -> bool:
            return any(kmsg.is_recovery_trouble(ln) and "abort" not in ln.lower()
                       for ln in self.log_since(since))

        if reset_logged():  # it already did, and may be live again
            return
        try:
            ctrl.wait_not("live", timeout=within)
        except CommandTimeout:
            if reset_logged():
                return
            # Nothing is stranded where no load runs: a load that stopped says why itself
            for load in self.loads:
                if load.name not in self.opaque and not load.running and not load.lost:
                    self._judge(load.wait(30))
            if not any(load.running for load in self.loads):
                raise HarnessError(f"{ctrl.name} stayed live with a silent device, but no "
                                   "load was running to strand commands: nothing was "
                                   "tested") from None
            self.fail(FailureKind.HANG, f"{ctrl.name} stayed live for {within:g}s with a "
                      "silent device: the driver never acted on its stranded commands")

    def recovered(self, detail: str, at: float | None = None) -> None:
        """Record a recovery; the kernel log from here on must show no further trouble."""
        self.event("recovered", detail, at)
        self.previous_recovery = self.stable_from or 0.0
        self.stable_from = self.log_mark()

    def log_mark(self) -> float:
        """The time stamp of the guest kernel's latest log line: a place to read on from."""
        return kmsg.last_stamp(self.guest.run("dmesg | tail -n 1", timeout=30).stdout)

    def log_since(self, mark: float) -> list[str]:
        """Kernel log lines stamped after ``mark``."""
        return kmsg.lines_after(self.guest.run("dmesg", timeout=30).stdout, mark)

    def check_stable(self) -> None:
        """After the last recovery: no I/O timeout, abort, controller reset or removal that
        the scenario did not cause itself (it caused none after recovering)."""
        if self.stable_from is None:
            return
        log = self.guest.run("dmesg", timeout=30).stdout
        found = kmsg.instability(log, self.previous_recovery, self.stable_from,
                                 self.requeue_trace.read)
        if found is not None:
            self.fail(FailureKind.UNSTABLE, found.message, found.evidence,
                      requeued=len(found.requeued))

    def remove_and_restore(self, removal: Fault | Callable[[], Fault],
                           settle: Callable[[float], bool] | None = None) -> None:
        """The removal procedure: data written before and through the removal must survive.

        A first load writes and ends; a second one runs (on another region) while
        ``removal`` takes the device away, and must end on its own with clean errors; then
        lifting it brings the device back, the controller must be live with its namespace,
        and the verify-only passes check every write of the first load, and the second load
        as :meth:`verify_through_fault` says. A ``removal`` given as a function is made
        just before it is applied (it draws from the seed then). ``settle(mark)`` runs once
        the removal is applied (``mark``: the kernel log's position just before): it waits
        for what the driver makes of it, and returns True where the device recovered by
        itself: the second load then must have seen no error either, and is verified like
        the first.
        """
        before = self.start_loads(runtime=self.rng.uniform(3.0, 5.0), size="128M")
        for load in before:
            load.end()
        # Writes only: once the device is going, a read of it returns 0 bytes, which fio's
        # inline verify misreads as the stale block in its buffer; its first error would end
        # the job before any write met the removal.
        under = self.start_loads(runtime=30, offset="512M", size="128M", inline_verify=False)
        # while the device is away, a failure's salvage must not judge what reads it
        self.opaque |= {load.name for load in [*before, *under]}
        self.sleep(self.rng.uniform(1.0, 2.0))
        self.vm.tainted = True
        mark = self.log_mark() if settle is not None else 0.0
        if not isinstance(removal, Fault):
            removal = removal()
        self.inject(removal)
        recovered = settle is not None and settle(mark)
        if recovered:  # by itself: judged from here on as any recovery
            self.opaque -= {load.name for load in under}
            self.wait_live(self.controller("nvme0"))
        self.finish_loads(under, transparent=recovered)
        self.sleep(self.rng.uniform(0.5, 2.0))
        self.lift(removal)
        self.wait_live(self.controller("nvme0"))
        self.guest.run("until [ -b /dev/nvme0n1 ]; do sleep 0.05; done", timeout=60)
        self.opaque -= {load.name for load in before}
        self.finish_loads(before)
        if not recovered:
            for load in under:
                self.verify_through_fault(load)

    def checkpoint(self, loads: list[fio.VerifyLoad]) -> None:
        """Stop ``loads`` with their completed writes flushed and their verify state kept on
        the host (see :meth:`fio.VerifyLoad.checkpoint`); their results are judged now."""
        for load in loads:
            result = load.checkpoint(self.artifacts / load.name)
            self.event("flushed", f"{load.name}: state saved, {load.params['FILENAME']} "
                       "flushed")
            self._judge(result)

    def power_cut(self) -> None:
        """Cut the VM's power under whatever runs, and start it again on the same disks.

        Loads still running die with the guest; a checkpointed load is put back, ready
        for :meth:`verify`.
        """
        self.stop_monitors()
        self.inject(PowerCut(self.vm))
        self.resync_clock()  # the new life's clock was set anew
        self.recovered("VM up again, controllers live")
        for load in self.loads:
            load.after_power_cycle(self.guest)
            if load.lost:
                self.event("load_lost", f"{load.name} died with the power")
        self.start_monitors()

    def start_monitors(self) -> None:
        """Sample every controller's state in the guest (for the timeline), and how busy
        the guest is (for the throughput judge)."""
        self.monitors = [StateMonitor(self.guest, f"nvme{i}")
                         for i in range(len(self.vm.topology.controllers))]
        for m in self.monitors:
            m.start()
        if self.guest_cpu is None:
            self.guest_cpu = GuestCpuMonitor(self.guest)
        self.guest_cpu.guest = self.guest  # a new one after a power cut
        self.guest_cpu.start()

    def stop_monitors(self) -> None:
        if self.guest_cpu is not None:
            self.guest_cpu.stop()
        for m in self.monitors:
            for sample in m.stop():
                if sample.state == IO_RESUMED:
                    self.event("io_resumed", m.controller, at=sample.at)
                else:
                    self.event("state", f"{m.controller} {sample.state}", at=sample.at)
        self.monitors = []

    def record_requeues(self) -> None:
        """Say in the timeline which resets requeued requests: only those ran the driver's
        requeue path (a reset that finds nothing in flight does not)."""
        with contextlib.suppress(HarnessError):
            bursts = kmsg.requeue_bursts(self.requeue_trace.read(stop=True))
            if bursts:
                self.event("requeued", ", ".join(f"{n} at {at:.1f}s" for at, n in bursts)
                           + " (kernel uptime)")

    def _judge(self, result: fio.FioResult) -> None:
        """A load where recovery should be transparent may see no error at all."""
        if not result.ok:
            kind = (FailureKind.LOST_DATA if any("EILSEQ" in f for f in result.failures)
                    else FailureKind.IO_ERROR)
            self.fail(kind, "the load saw: " + "; ".join(result.failures), result.messages)

    def verify(self, load: fio.VerifyLoad, timeout: float = 600.0,
               failed: set[int] | None = None) -> None:
        """The verify-only pass: every write the load completed must read back intact.
        ``failed``: the offsets of the writes that failed (the load ran through a fault that
        took its device away): each may hold its old or its new data, never anything else
        (see :meth:`verify_through_fault`).

        The kernel log is watched while it runs: a controller that starts timing out again
        fails the iteration at once (UNSTABLE) instead of stalling the pass until its timeout.
        """
        bg = load.start_verify_pass(every_error=failed is not None)
        deadline = time.monotonic() + timeout
        while True:
            try:
                res = bg.wait(VERIFY_WATCH_S)
                break
            except CommandTimeout:
                pass
            if time.monotonic() > deadline:
                bg.kill()
                self.fail(FailureKind.HANG, f"the verify-only pass did not end within "
                          f"{timeout:g}s", self.driver_log())
            try:
                self.check_stable()
            except ScenarioFailed:
                bg.kill()
                raise
        self.verified.add(load.name)
        if failed is not None:
            check = self._verify_failed_writes(load, res.stderr, failed)
        else:
            check, lost = self._verify_outcome(load, res.stderr)
            if lost is not None:
                self.fail(lost.kind, lost.message, lost.evidence)
        if check.read_bytes == 0:
            self.fail(FailureKind.LOST_DATA, "verify-only pass read nothing back")

    def verify_through_fault(self, load: fio.VerifyLoad) -> None:
        """Judge a load that ran through a fault that took its device away, once the device
        is back: an error it saw before the fault is a failure (its messages carry the
        guest's time); every write it completed must read back intact, through the fault
        as before it; a write that failed may hold its old data or its new data, never
        another block's or garbage (see :mod:`harness.reading.fioblock`)."""
        self.opaque.discard(load.name)
        faults = self.timeline.times("fault", self.load_started[load.name])
        early = [line for at, line in fio.stamped_lines(load.messages)
                 if faults and at < faults[0] and fio.is_error(line)]
        if early:
            kind = (FailureKind.LOST_DATA if any(fio.is_verify_error(ln) for ln in early)
                    else FailureKind.IO_ERROR)
            self.failures.append(Failure(kind, f"{load.name} saw an error before the fault: "
                                         f"{early[0]}", "\n".join(early),
                                         code="error-before-fault"))
        self.verify(load, failed=fio.failed_writes(load.messages))

    def _verify_failed_writes(self, load: fio.VerifyLoad, stderr: str,
                              failed: set[int]) -> fio.FioResult:
        """The verify pass of a load whose ``failed`` writes may hold old or new data:
        fio's every wrong block is either one of them or a lost write; each of them is
        read and classified."""
        check = load.verify_result(stderr)
        bad = fio.bad_blocks(check.messages)
        lost = {o: why for o, why in bad.items() if o not in failed}
        unread = [j.describe_error() for j in check.jobs if j.error not in (0, errno.EILSEQ)]
        if unread:  # it could not read its blocks back (EIO...): it verified only some
            self.fail(FailureKind.IO_ERROR, "verify-only pass: " + "; ".join(unread),
                      check.messages)
        if not check.ok and not bad:  # wrong blocks that fio's messages did not name
            self.fail(FailureKind.LOST_DATA, "verify-only pass: " + "; ".join(check.failures),
                      check.messages)
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

    def check_stalls(self, reset_bound: float | None, resume_bound: float | None) -> None:
        """A reset that took longer than ``reset_bound``, or writes that waited longer than
        ``resume_bound`` after a return to live, as the state monitor saw them: each a
        failure, added (nothing raised), even where the driver logged nothing."""
        if self.vm.topology.subsystem:
            # native multipath names a namespace's block device after the subsystem, not a
            # controller, and writes go down either path: no controller's resume to judge
            resume_bound = None
        started: dict[str, tuple[str, float]] = {}  # load -> (controller, when it wrote)
        writing: dict[str, tuple[float, float]] = {}  # controller -> its load's span
        for ev in self.timeline.sorted():
            name, _, rest = ev.detail.partition(" ")
            if ev.kind == "load_started" and (m := re.fullmatch(r"/dev/(nvme\d+)n1", rest)):
                started[name] = (m.group(1), ev.at)
            elif ev.kind == "load_finished" and name.rstrip(":") in started:
                ctrl, first = started.pop(name.rstrip(":"))
                writing[ctrl] = (first, ev.at)
        for what, stall in self.timeline.stalls(reset_bound, resume_bound, writing):
            self.failures.append(
                Failure(FailureKind.NOT_RECOVERED, stall, code="slow-reset") if what == "reset"
                else Failure(FailureKind.SLOW, stall, code="io-stalled"))

    def salvage(self) -> None:
        """After a failure that left the guest usable, what the loads can still tell: each
        transparent load not yet verified is stopped, its errors judged and its writes
        verified (for a bounded time), so that one failure hides no other. Failures found
        are added; nothing is raised."""
        for load in self.loads:
            if (load.name in self.verified or load.name in self.opaque or load.lost
                    or load.ends_at is None):  # never started
                continue
            self.verified.add(load.name)
            result = load.end(timeout=SALVAGE_VERIFY_S, now=True)
            with contextlib.suppress(ScenarioFailed):  # recorded (the same twice: once)
                self._judge(result)
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
            _, lost = self._verify_outcome(load, res.stderr)
            if lost is not None:
                self.failures.append(lost)

    def _verify_outcome(self, load: fio.VerifyLoad,
                        stderr: str) -> tuple[fio.FioResult, Failure | None]:
        """A finished verify-only pass of ``load``, in the timeline; its result, and the
        lost data it found, if any."""
        check = load.verify_result(stderr)
        self.event("verified", "; ".join(check.failures) or "every completed write intact")
        lost = None if check.ok else Failure(
            FailureKind.LOST_DATA, "verify-only pass: " + "; ".join(check.failures),
            check.messages)
        return check, lost

    def finish_load(self, load: fio.VerifyLoad, transparent: bool = True) -> None:
        """Wait for the load, judge its JSON, then prove that every completed write is intact.

        ``transparent=False`` is for a load running while its device is removed: its errors
        are recorded, not judged yet, and its data is verified once the device is back
        (:meth:`verify_through_fault`). Once a namespace is being removed Linux sets its
        capacity to 0, so writes fail (ENOSPC, EIO) and direct reads past the new end
        return 0 bytes, which fio's inline verification misreads as bad headers; and fio's
        saved verify state counts writes that failed as done, so its verify pass reports
        blocks that were never written: the failed writes fio names are judged apart.
        """
        if transparent:
            self._observe_throughput(load)
        result = load.end()
        self.event("load_finished", f"{load.name}: "
                   f"{'; '.join(result.failures) or 'no errors'}")
        if not transparent:
            self.opaque.add(load.name)
            return
        self._judge(result)
        self.check_stable()  # a controller still timing out would only stall the verify pass
        self.check_throughput(load)
        self.verify(load)

    def _observe_throughput(self, load: fio.VerifyLoad) -> None:
        """Keep ``load`` running for as long as the throughput judge needs after its last
        recovery (see :meth:`ThroughputJudge.seconds_left`)."""
        started = self.load_started[load.name]
        while load.running and (left := self.throughput_judge.seconds_left(started,
                                                                           self.now())) > 0:
            self.sleep(min(left, 1.0))

    def check_throughput(self, load: fio.VerifyLoad) -> None:
        """After each recovery the load must come back to a share of its pre-fault IOPS
        (:mod:`harness.reading.throughput`); the figures go into the timeline either way."""
        series = load.iops_per_second()
        if not series:
            raise HarnessError(f"{load.name} left no per-second IOPS log in {load.workdir}")
        verdicts, failure = self.throughput_judge.judge(
            load.name, series, load.latency_per_second(), self.load_started[load.name])
        for v in verdicts:
            self.event("throughput", v.describe(), at=v.recovered_at + (v.back_after or 0.0))
        if failure is not None:
            self.fail(failure.kind, failure.message, failure.evidence, failure.code)


@dataclass
class Injected:
    """A fault applied through :meth:`Context.inject`; leaving a ``with`` block lifts it."""

    ctx: Context
    fault: Fault

    def __enter__(self) -> Fault:
        return self.fault

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.ctx.lift(self.fault)
