"""The throughput judge of a scenario: after every recovery a load lived through, its IOPS
must come back (:func:`harness.reading.throughput.judge`), with the host's and the guest's CPU as
the evidence that tells a limping driver from a starved VM. Reads the faults and recoveries
off the timeline and writes its figures there; knows nothing of the guest."""

from __future__ import annotations

import math
from collections.abc import Callable

from harness.machine.hostcpu import CpuSampler
from harness.reading import throughput
from harness.reading.throughput import Criterion, GuestBusy, Judgement, Series
from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind

SETTLE_S = 1.5  # a load runs this much past the criterion's window: its last second logged


class ThroughputJudge:
    """``cpu``: the VM's host CPU, where a host runs it; ``guest_busy``: how busy the guest
    was so far, by its own account (both None where not measured)."""

    def __init__(self, criterion: Criterion | None, timeline: Timeline,
                 cpu: Callable[[], CpuSampler | None] = lambda: None,
                 guest_busy: Callable[[], GuestBusy | None] = lambda: None) -> None:
        self.criterion, self.timeline = criterion, timeline
        self.cpu, self.guest_busy = cpu, guest_busy
        self.judgements: list[Judgement] = []

    def _samples(self) -> tuple[Series, Series]:
        sampler = self.cpu()
        return (sampler.snapshot(), sampler.compute()) if sampler is not None else ([], [])

    def seconds_left(self, started: float, now: float) -> float:
        """How much longer a load that started writing at ``started`` must run for its last
        recovery to be judged: the criterion's window after it, plus the seconds in which
        the host starved the VM of CPU (up to the criterion's cap); 0 when it need not."""
        crit = self.criterion
        recoveries = self.timeline.times("recovered", started)
        faults = self.timeline.times("fault", started)
        if not recoveries or not faults or crit is None:
            return 0.0
        starved = throughput.Starvation.measure(crit, self._samples()[1], self.guest_busy(),
                                                started, min(faults))
        extra = min(crit.max_extension, starved.seconds(recoveries[-1], now))
        return max(0.0, recoveries[-1] + crit.within + extra + SETTLE_S - now)

    def judge(self, load: str, series: Series, latency: Series,
              started: float) -> tuple[list[Judgement], Failure | None]:
        """Judge ``load`` (its IOPS and latency per second; writing from ``started``): one
        judgement per recovery it lived through, and the failure, if any. Its figures and
        the CPU figures go into the timeline either way."""
        self.timeline.series[load] = series
        self.timeline.latency[load] = latency
        cpu, compute = self._samples()
        sampler = self.cpu()
        if cpu:
            self.timeline.series["vm_cpu"] = throughput.per_second(cpu)
        if sampler is not None and (speeds := sampler.speeds()):
            self.timeline.series["host_speed"] = throughput.medians_per_second(speeds)
        guest = self.guest_busy()
        if guest is not None:
            self.timeline.series["guest_busy"] = [
                (t, round(b, 3)) for t in range(int(series[0][0]), int(series[-1][0]) + 1)
                if (b := guest.share(t - 1.0, t)) is not None]
        if self.criterion is None:
            return [], None
        ended = series[-1][0]
        faults = self.timeline.times("fault", started, ended)
        recoveries = self.timeline.times("recovered", min(faults, default=ended), ended)
        try:
            verdicts = throughput.judge(load, series, started, faults, recoveries,
                                        self.criterion, cpu, compute, guest)
        except throughput.NoBaseline as exc:  # the fresh controller did not carry the load
            return [], Failure(FailureKind.SLOW, f"no throughput to come back to: {exc}",
                               code="no-baseline")
        self.judgements += verdicts
        slow = [v for v in verdicts if not v.ok]
        if not slow:
            return verdicts, None
        vm_cpu = dict(self.timeline.series.get("vm_cpu", []))
        speed = dict(self.timeline.series.get("host_speed", []))
        busy = dict(self.timeline.series.get("guest_busy", []))
        return verdicts, Failure(
            FailureKind.SLOW, slow[0].describe(),
            "IOPS per second, the VM's host CPU in that second, the host's speed (of its "
            "median) and how busy the guest was (guest time from the load's start):\n"
            + "\n".join(f"{t - started:7.1f} {v:8.0f} {vm_cpu.get(int(t), math.nan):5.2f} "
                        f"{speed.get(int(t), math.nan):5.2f} "
                        f"{busy.get(int(t), math.nan):5.2f}" for t, v in series))
