"""Does throughput come back after a recovery? Judged from fio's per-second IOPS logs.

A driver can return a controller to ``live`` and still limp: a queue left stopped, requests
crawling through a requeue path, interrupts lost so that only timeouts complete commands.
The criterion: after each recovery, some one-second window must reach ``share`` of the
level measured before the first fault, within ``within`` seconds. Times are seconds of the
epoch on the guest's clock (fio logs with ``log_unix_epoch``), like the timeline's.

The host is not always the VM's alone, and under TCG a guest's IOPS follow the compute the
host gives it. On a shared machine that varies in two ways, both measured here: the hypervisor
steals CPU in bursts (up to 80% of a core for seconds), and the host slows down without taking
CPU away (a busy neighbour on the core or its cache: the same load ran at half its IOPS for
seconds with its CPU share unchanged). So the VM's compute is sampled, its CPU seconds weighted
by the host's speed (:class:`harness.machine.hostcpu.CpuSampler`), and compared with its level
before the fault: a second in which the VM got less than ``contended`` of it does not count towards
``within`` (the load is kept running longer instead, up to a cap), but only if the host held
a busy guest back in it. An idle guest gets little CPU too: a guest with requests in flight
and nothing to do is a driver that stalls, not a slow host, and its seconds count. So the
guest's own accounting (:class:`GuestBusy`) must show it busy (at least ``busy`` of its
pre-fault busy share), and the compute the VM got for each second its guest was busy must
have fallen under ``held_back`` of its pre-fault level. The second test is the one that holds
on a slow host: there a stalling driver's guest looks busier (its little work stretches over
more of the second: 35-48% busy against 91-98% before the fault, measured in CI), but what
work it does is paid for in full, while a host that withholds compute leaves the guest's
busy seconds short of it (60% and 75% of the VM's time stolen: 0.51-0.75 of the pre-fault
level; a stalling driver under the same: 0.83 and more). In the other seconds the IOPS
wanted shrink with the host's speed (never grow, and never with the CPU time, which a
limping driver lowers itself).
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
    contended: float = 0.6  # a second in which the VM got less of its pre-fault compute
    max_extension: float = 30.0  # contended seconds the observation may be extended by
    busy: float = 0.5  # of its pre-fault busy share: a guest less busy is waiting, not starved
    held_back: float = 0.8  # of its pre-fault compute per busy second: got more, it was served

    def describe(self) -> str:
        return f"{self.share:.0%} of the pre-fault IOPS within {self.within:g}s of recovering " \
               "(less where the host ran slower)"


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
    contended_s: int = 0  # windows after the recovery in which the VM's compute was short
    slowest_host: float = 1.0  # the lowest host speed (of its pre-fault one) a window had

    @property
    def ok(self) -> bool:
        return self.back_after is not None

    def describe(self) -> str:
        before = f"{self.load}: {self.baseline:.0f} IOPS before the fault " \
                 f"(median of {self.baseline_windows} s)"
        if self.contended_s:
            before += f", {self.contended_s} s after it not counted (the VM got under " \
                      f"{self.criterion.contended:.0%} of its compute, its guest busy and " \
                      "held back)"
        if self.slowest_host < 0.9:
            before += f", the host down to {self.slowest_host:.0%} of its pre-fault speed " \
                      "after it"
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
    """Per second, what the VM got between ``t0`` and ``t1`` from cumulative samples (time,
    CPU seconds or compute so far); None where the samples do not cover the span."""
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


def per_second(cumulative: Series) -> Series:
    """(whole second t, what was got per second between t - 1 and t) from cumulative samples."""
    if not cumulative:
        return []
    return [(t, round(c, 3)) for t in range(int(cumulative[0][0]) + 1, int(cumulative[-1][0]))
            if (c := cpu_in(cumulative, t - 1.0, t)) is not None]


def medians_per_second(points: Series) -> Series:
    """(whole second t, the median of the points between t - 1 and t), where there are any."""
    seconds: dict[int, list[float]] = {}
    for at, v in points:
        seconds.setdefault(int(at) + 1, []).append(v)
    return [(t, round(statistics.median(vs), 3)) for t, vs in sorted(seconds.items())]


def cpu_share(cpu: Series, started: float, first_fault: float) -> float | None:
    """The VM's CPU (or compute) per second before the fault (median over whole seconds),
    None if unmeasured."""
    got = [c for i in range(int(first_fault - started))
           if (c := cpu_in(cpu, started + i, started + i + 1)) is not None]
    return statistics.median(got) if got else None


def capacity(cpu: Series, share: float | None, t0: float, t1: float) -> float | None:
    """The share of its pre-fault compute the VM got between ``t0`` and ``t1``, or None."""
    if share is None or share <= 0 or not cpu:
        return None
    got = cpu_in(cpu, t0, t1)
    return None if got is None else got / share


def contended(cpu: Series, share: float | None, criterion: Criterion, t0: float,
              t1: float) -> bool:
    """Did the VM get less than its share of compute between ``t0`` and ``t1``?"""
    got = capacity(cpu, share, t0, t1)
    return got is not None and got < criterion.contended


@dataclass(frozen=True)
class GuestBusy:
    """The guest's own CPU accounting (its /proc/stat), cumulative: (time, seconds its CPUs
    were busy or stolen from) and (time, all their seconds)."""

    busy: Series
    total: Series

    def share(self, t0: float, t1: float) -> float | None:
        """How busy the guest was between ``t0`` and ``t1`` (0 to 1), None if unmeasured."""
        busy, total = cpu_in(self.busy, t0, t1), cpu_in(self.total, t0, t1)
        return None if busy is None or not total else busy / total

    def level(self, started: float, first_fault: float) -> float | None:
        """Its busy share before the fault (median over whole seconds), None if unmeasured."""
        got = [b for i in range(int(first_fault - started))
               if (b := self.share(started + i, started + i + 1)) is not None]
        return statistics.median(got) if got else None


@dataclass(frozen=True)
class Starvation:
    """Tells the seconds the host starved a busy VM: the VM's compute and its guest's
    busyness, with their pre-fault levels."""

    criterion: Criterion
    compute: Series
    level: float | None
    guest: GuestBusy | None
    busy_level: float | None

    @classmethod
    def measure(cls, criterion: Criterion, compute: Series, guest: GuestBusy | None,
                started: float, first_fault: float) -> Starvation:
        return cls(criterion, compute, cpu_share(compute, started, first_fault), guest,
                   guest.level(started, first_fault) if guest else None)

    def excuses(self, t0: float, t1: float) -> bool:
        """Did the host starve the VM between ``t0`` and ``t1`` while its guest was busy,
        holding it back? Unmeasured, it did not."""
        got = capacity(self.compute, self.level, t0, t1)
        if got is None or got >= self.criterion.contended:
            return False
        if self.guest is None or not self.busy_level:
            return False
        busy = self.guest.share(t0, t1)
        if busy is None or busy < self.criterion.busy * self.busy_level:
            return False
        return got / (busy / self.busy_level) < self.criterion.held_back

    def seconds(self, since: float, until: float) -> int:
        """Whole seconds from ``since`` to ``until`` that it excuses."""
        return sum(self.excuses(since + i, since + i + 1) for i in range(int(until - since)))


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
          cpu: Series | None = None, compute: Series | None = None,
          guest: GuestBusy | None = None) -> list[Judgement]:
    """Judge every recovery in ``recoveries`` that has ``criterion.within`` seconds of load
    after it before the next fault; the last recovery always counts (the caller makes the load
    run that long). ``cpu`` and ``compute``: the VM's cumulative CPU seconds and compute,
    ``guest``: how busy the guest was (see the module's docstring; without ``compute`` the
    host's speed counts as constant, without ``guest`` no second is excused).
    Raises :class:`NoBaseline` without a whole window before the first fault."""
    if not faults or not recoveries:
        return []
    first = min(faults)
    before = [v for t, v in series if t - 1.0 >= started and t <= first]
    if not before:
        raise NoBaseline(f"{load} ran no whole second between its start and the first fault "
                         f"({first - started:.1f}s)")
    baseline = statistics.median(before)
    cpu = cpu or []
    compute = compute or cpu
    cpu_level, level = cpu_share(cpu, started, first), cpu_share(compute, started, first)
    starved = Starvation.measure(criterion, compute, guest, started, first)

    def speed(t0: float, t1: float) -> float:
        """The host's speed between ``t0`` and ``t1``, of its pre-fault speed (at most 1)."""
        got, cpu_got = capacity(compute, level, t0, t1), capacity(cpu, cpu_level, t0, t1)
        if got is None or not cpu_got:
            return 1.0
        return max(criterion.contended, min(1.0, got / cpu_got))

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
            if starved.excuses(t - 1.0, t):
                if skipped >= criterion.max_extension:
                    break
                skipped += 1
            else:
                counted += 1
            if counted > criterion.within:
                break
            after.append((t, v, speed(t - 1.0, t)))
        good = [(t - rec, v) for t, v, scale in after
                if v >= criterion.share * baseline * scale]
        least = min((scale for _, _, scale in after), default=1.0)
        out.append(Judgement(load, baseline, len(before), rec,
                             good[0][0] if good else None, good[0][1] if good else 0.0,
                             max((v for _, v, _ in after), default=0.0), criterion, skipped,
                             least))
    return out
