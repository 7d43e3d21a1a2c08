"""The throughput judge of a scenario, against a timeline and IOPS series made by hand:
what it reads off the timeline, what it writes there, and the failure it returns."""

from __future__ import annotations

from harness.reading.throughput import Criterion
from harness.reading.timeline import Timeline
from harness.reading.verdict import FailureKind
from harness.recovery.throughputjudge import ThroughputJudge

T0 = 1795312000.0
CRITERION = Criterion(0.5, 5.0)


def _timeline(*events: tuple[str, float]) -> Timeline:
    t = Timeline()
    for kind, at in events:
        t.add(kind, "", T0 + at)
    return t


def test_a_load_that_comes_back_passes_and_its_figures_go_into_the_timeline() -> None:
    timeline = _timeline(("fault", 2.2), ("recovered", 2.9), ("lifted", 3.0))
    judge = ThroughputJudge(CRITERION, timeline)
    series = [(T0 + s, v) for s, v in [(1, 1000.0), (2, 900.0), (3, 0.0), (4, 300.0),
                                       (5, 800.0), (6, 1000.0)]]
    verdicts, failure = judge.judge("load0", series, [(T0 + 1, 0.4)], T0)
    assert failure is None and [v.ok for v in verdicts] == [True]
    assert judge.judgements == verdicts
    assert timeline.series["load0"] == series and timeline.latency["load0"] == [(T0 + 1, 0.4)]


def test_a_load_that_stays_low_is_slow_with_its_seconds_as_evidence() -> None:
    judge = ThroughputJudge(CRITERION, _timeline(("fault", 2.0), ("recovered", 2.5)))
    series = [(T0 + 1, 1000.0), (T0 + 2, 1000.0)] + [(T0 + s, 200.0) for s in range(3, 12)]
    _, failure = judge.judge("load0", series, [], T0)
    assert failure is not None and failure.kind is FailureKind.SLOW
    assert "at best 200 IOPS (20%)" in failure.message
    assert failure.evidence.splitlines()[1].split()[:2] == ["1.0", "1000"]  # from the start


def test_faults_outside_the_load_are_not_its_own() -> None:
    """A fault after the load's last second, and recoveries before its first fault, judge
    nothing: the load never lived through them."""
    judge = ThroughputJudge(CRITERION, _timeline(("recovered", 0.5), ("fault", 30.0),
                                                 ("recovered", 31.0)))
    series = [(T0 + s, 1000.0) for s in range(1, 10)]
    assert judge.judge("load0", series, [], T0) == ([], None)


def test_no_whole_second_before_the_fault_is_no_baseline() -> None:
    judge = ThroughputJudge(CRITERION, _timeline(("fault", 0.5), ("recovered", 0.9)))
    _, failure = judge.judge("load0", [(T0 + s, 1000.0) for s in range(1, 8)], [], T0)
    assert failure is not None and failure.code == "no-baseline"


def test_not_judged_records_its_figures_all_the_same() -> None:
    timeline = _timeline(("fault", 2.0), ("recovered", 2.5))
    judge = ThroughputJudge(None, timeline)
    series = [(T0 + s, 10.0) for s in range(1, 8)]
    assert judge.judge("load0", series, [], T0) == ([], None)
    assert timeline.series["load0"] == series


def test_a_load_runs_the_criterions_window_past_its_last_recovery() -> None:
    judge = ThroughputJudge(CRITERION, _timeline(("fault", 2.0), ("recovered", 3.0),
                                                 ("fault", 6.0), ("recovered", 7.0)))
    # the window after the last recovery, and the second fio needs to log it
    assert judge.seconds_left(T0, T0 + 7.0) == CRITERION.within + 1.5
    assert judge.seconds_left(T0, T0 + 20.0) == 0.0
    assert ThroughputJudge(CRITERION, _timeline(("fault", 2.0))).seconds_left(T0, T0) == 0.0
    assert ThroughputJudge(None, judge.timeline).seconds_left(T0, T0 + 7.0) == 0.0
