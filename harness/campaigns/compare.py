"""A patch against its base: two drivers' cells of one scenario, side by side.

Validating a patch means comparing it with the driver it changes, on the same seeds: the
verdicts, and how the recoveries went (time back to live, time to the next completed write,
time until throughput came back). A figure is flagged when the difference is beyond the
noise of the base itself, measured over its repeated runs (its seeds): every seed of the
other driver has its median beyond the middle 80% of all the base's recoveries (its 10th to
90th percentile), on the same side, and the two drivers' medians are further apart than the
figure's resolution (the state monitor's samples for the times to live and to a write, fio's
one-second windows for throughput). Both need two seeds or more: one seed measures no noise,
and nothing is flagged; the figures are printed all the same.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.util import percentile


@dataclass(frozen=True)
class Figure:
    label: str
    attribute: str  # of :class:`SeedFigures`
    resolution_s: float  # a difference below this is the measurement's, not the driver's


FIGURES = (Figure("back to live", "recovery_s", 0.05),
           Figure("writes again", "io_resume_s", 0.05),
           Figure("throughput back", "back_after_s", 1.0))


@dataclass
class SeedFigures:
    """One seed's recoveries, in seconds."""

    seed: int
    recovery_s: list[float] = field(default_factory=list)
    io_resume_s: list[float] = field(default_factory=list)
    back_after_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Difference:
    figure: Figure
    base: list[list[float]]  # per seed
    other: list[list[float]]

    @property
    def ratio(self) -> float | None:
        """The other's median over the base's, all recoveries pooled."""
        b, o = _pooled(self.base), _pooled(self.other)
        if not b or not o or statistics.median(b) <= 0:
            return None
        return statistics.median(o) / statistics.median(b)

    @property
    def noise(self) -> tuple[float, float] | None:
        """The middle 80% of the base's recoveries, over two seeds or more; else None."""
        if sum(1 for s in self.base if s) < 2:
            return None
        pooled = _pooled(self.base)
        return percentile(pooled, 10), percentile(pooled, 90)

    @property
    def flagged(self) -> bool:
        band = self.noise
        medians = [statistics.median(s) for s in self.other if s]
        if band is None or len(medians) < 2:
            return False
        apart = abs(statistics.median(_pooled(self.other)) - statistics.median(_pooled(self.base)))
        if apart < self.figure.resolution_s:
            return False
        return min(medians) > band[1] or max(medians) < band[0]

    def text(self) -> str:
        def summary(per_seed: list[list[float]]) -> str:
            pooled = _pooled(per_seed)
            if not pooled:
                return "-"
            return "/".join(_ms(percentile(pooled, q)) for q in (50, 99, 100))

        line = f"  {self.figure.label:<16} {summary(self.base):>20}  {summary(self.other):>20}"
        ratio, band = self.ratio, self.noise
        if ratio is not None:
            line += f"  {ratio:.1f}x"
            line += f" (the base's p10-p90 {_ms(band[0])}-{_ms(band[1])})" if band else ""
        return line + ("  <- beyond the noise" if self.flagged else "")


def _pooled(per_seed: list[list[float]]) -> list[float]:
    return [v for s in per_seed for v in s]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def differences(base: Sequence[SeedFigures], other: Sequence[SeedFigures]) -> list[Difference]:
    return [Difference(f, [getattr(s, f.attribute) for s in base],
                       [getattr(s, f.attribute) for s in other]) for f in FIGURES]


def side_by_side(scenario: str, where: str, names: tuple[str, str], verdicts: tuple[str, str],
                 base: Sequence[SeedFigures], other: Sequence[SeedFigures]) -> str:
    """The comparison of one scenario on one kernel (and QEMU): ``names`` and ``verdicts``
    of the base and the other driver."""
    seeds = [s.seed for s in base]
    flag = "  <- not the same" if verdicts[0].split()[0] != verdicts[1].split()[0] else ""
    lines = [f"{scenario} on {where}, seeds {', '.join(map(str, seeds))} "
             "(ms: p50/p99/max of every recovery)",
             f"  {'':<16} {names[0]:>20}  {names[1]:>20}",
             f"  {'verdict':<16} {verdicts[0]:>20}  {verdicts[1]:>20}{flag}",
             f"  {'recoveries':<16} {len(_pooled([s.recovery_s for s in base])):>20}  "
             f"{len(_pooled([s.recovery_s for s in other])):>20}"]
    lines += [d.text() for d in differences(base, other)]
    if len(seeds) < 2:
        lines.append("  (one seed: no noise to measure, nothing flagged; --iterations 2 or more)")
    return "\n".join(lines)


def flagged(base: Sequence[SeedFigures], other: Sequence[SeedFigures]) -> list[str]:
    """The figures that differ beyond the noise."""
    return [d.figure.label for d in differences(base, other) if d.flagged]
