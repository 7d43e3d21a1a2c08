"""Does throughput come back after a recovery? Judged from fio's per-second IOPS logs.

A driver can return a controller to ``live`` and still limp: a queue left stopped, requests
crawling through a requeue path, interrupts lost so that only timeouts complete commands.
The criterion: after each recovery, some one-second window must reach ``share`` of the
level measured before the first fault, within ``within`` seconds. Times are seconds of the
epoch on the guest's clock (fio logs with ``log_unix_epoch``), like the timeline's.

The host is not always the VM's alone: on a shared machine the hypervisor steals CPU in
bursts (up to 80% of a core for seconds, measured here), and under TCG the guest's IOPS fall
with it. So the CPU time the VM's process got is sampled too: a second in which it got less
than ``contended`` of its share before the fault does not count towards ``within`` (the
load is kept running longer instead, up to a cap). An idle guest looks the same, so a driver
that limps by waiting runs into the cap and fails all the same.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Callable
from dataclasses import dataclass

Series = list[tuple[float, float]]  # (end of a one-second window, IOPS or latency in it)


@dataclass(frozen=True)
class Criterion:
    share: float = 0.5  # of the pre-fault level
    within: float = 5.0  # seconds after the recovery, contended ones not counted
    contended: float = 0.6  # a second in which the VM got less of its pre-fault CPU share
    max_extension: float = 30.0  # contended seconds the observation may be extended by

    def describe(self) -> str:
        return f"{self.share:.0%} of the pre-fault IOPS within {self.within:g}s of recovering"


@dataclass(frozen=True)
class Judgement:
    """One recovery's verdict, with the figures that back it."""

    load: str
    baseline: float  # median IOPS of the whole windows between the load's start and the fault
    baseline_windows: int
    recovered_at: float
    back_after: float | None  # seconds from the recovery to the end of the first good window
    back_iops: float  # the IOPS of that window (0 if none)
    best: float  # the best window within the allowed time
    criterion: Criterion
    contended_s: int = 0  # windows after the recovery in which the VM's CPU was short

    @property
    def ok(self) -> bool:
        return self.back_after is not None

    def describe(self) -> str:
        before = f"{self.load}: {self.baseline:.0f} IOPS before the fault " \
                 f"(median of {self.baseline_windows} s)"
        if self.contended_s:
            before += f", {self.contended_s} s after it not counted (the VM got under " \
                      f"{self.criterion.contended:.0%} of its CPU)"
        if self.ok:
            assert self.back_after is not None
            share = self.back_iops / self.baseline if self.baseline else 0.0
            return f"{before}, {self.back_iops:.0f} ({share:.0%}) {self.back_after:.1f}s " \
                   f"after recovering"
        share = self.best / self.baseline if self.baseline else 0.0
        return f"{before}, at best {self.best:.0f} IOPS ({share:.0%}) in the " \
               f"{self.criterion.within:g}s after recovering; wanted " \
               f"{self.criterion.describe()}"


def cpu_in(cpu: Series, t0: float, t1: float) -> float | None:
    """CPU seconds per second the VM got between ``t0`` and ``t1``, from cumulative samples
    (time, CPU seconds so far); None where the samples do not cover the span."""
    times = [t for t, _ in cpu]

    def at(t: float) -> float | None:
        i = bisect.bisect_left(times, t)
        if i == len(cpu) or (i == 0 and times[0] != t):
            return None
        if times[i] == t:
            return cpu[i][1]
        (ta, ca), (tb, cb) = cpu[i - 1], cpu[i]
        return ca + (cb - ca) * (t - ta) / (tb - ta)

    a, b = at(t0), at(t1)
    if a is None or b is None or t1 <= t0:
        return None
    return (b - a) / (t1 - t0)


def cpu_share(cpu: Series, started: float, first_fault: float) -> float | None:
    """The VM's CPU per second before the fault (median over whole seconds), None if
    unmeasured."""
    got = [c for i in range(int(first_fault - started))
           if (c := cpu_in(cpu, started + i, started + i + 1)) is not None]
    return statistics.median(got) if got else None


def contended(cpu: Series, share: float | None, criterion: Criterion, t0: float,
              t1: float) -> bool:
    """Did the VM get less than its share of CPU between ``t0`` and ``t1``?"""
    if share is None or not cpu:
        return False
    got = cpu_in(cpu, t0, t1)
    return got is not None and got < criterion.contended * share


def contended_seconds(cpu: Series, share: float | None, criterion: Criterion,
                      since: float, until: float) -> int:
    """Whole seconds from ``since`` to ``until`` in which the VM's CPU was short."""
    return sum(contended(cpu, share, criterion, since + i, since + i + 1)
               for i in range(int(until - since)))


class NoBaseline(ValueError):
    """The load ran no whole second before the fault: there is nothing to compare with."""


def combine_jobs(jobs: list[Series], reduce: Callable[[list[float]], float]) -> Series:
    """One series for the whole load: each job's window matched to the nearest window of the
    job with the most samples (fio ticks every job at nearly the same moment), the matched
    values reduced to one."""
    jobs = [j for j in jobs if j]
    if not jobs:
        return []
    ref = max(jobs, key=len)
    out: Series = []
    for t, v in ref:
        values = [v]
        for other in jobs:
            if other is ref:
                continue
            near = min(other, key=lambda s: abs(s[0] - t))
            if abs(near[0] - t) < 0.5:
                values.append(near[1])
        out.append((t, reduce(values)))
    return out


def sum_jobs(jobs: list[Series]) -> Series:
    """The load's IOPS: its jobs' added up."""
    return combine_jobs(jobs, sum)


def mean_jobs(jobs: list[Series]) -> Series:
    """The load's latency: the mean of its jobs' (they run the same job file)."""
    return combine_jobs(jobs, statistics.fmean)


WRITE = 1  # fio's data direction of writes in its logs (0: reads, such as verify_backlog's)


def parse_log(text: str, ddir: int | None = None, scale: float = 1.0) -> Series:
    """One fio log ("msec, value, ddir, bs, ...") as (seconds, value × ``scale``), only the
    lines of data direction ``ddir`` if given."""
    out: Series = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        if ddir is not None and (len(fields) < 3 or fields[2] != str(ddir)):
            continue
        out.append((int(fields[0]) / 1000, float(fields[1]) * scale))
    return out


def judge(load: str, series: Series, started: float, faults: list[float],
          recoveries: list[float], criterion: Criterion,
          cpu: Series | None = None) -> list[Judgement]:
    """Judge every recovery in ``recoveries`` that has ``criterion.within`` seconds of load
    after it before the next fault; the last recovery always counts (the caller makes the load
    run that long). ``cpu``: the VM's cumulative CPU seconds (see the module's docstring).
    Raises :class:`NoBaseline` without a whole window before the first fault."""
    if not faults or not recoveries:
        return []
    first = min(faults)
    before = [v for t, v in series if t - 1.0 >= started and t <= first]
    if not before:
        raise NoBaseline(f"{load} ran no whole second between its start and the first fault "
                         f"({first - started:.1f}s)")
    baseline = statistics.median(before)
    share = cpu_share(cpu or [], started, first)
    out = []
    recoveries = sorted(recoveries)
    for i, rec in enumerate(recoveries):
        next_fault = min((f for f in faults if f > rec), default=None)
        horizon = rec + criterion.within + 1.0
        if i < len(recoveries) - 1 and next_fault is not None and next_fault < horizon:
            continue  # disturbed again before it could show anything
        after, counted, skipped = [], 0, 0
        for t, v in series:
            if t - 1.0 < rec or (next_fault is not None and t > next_fault):
                continue
            if contended(cpu or [], share, criterion, t - 1.0, t):
                if skipped >= criterion.max_extension:
                    break
                skipped += 1
            else:
                counted += 1
            if counted > criterion.within:
                break
            after.append((t, v))
        good = [(t - rec, v) for t, v in after if v >= criterion.share * baseline]
        out.append(Judgement(load, baseline, len(before), rec,
                             good[0][0] if good else None, good[0][1] if good else 0.0,
                             max((v for _, v in after), default=0.0), criterion, skipped))
    return out
