import json
from pathlib import Path

import pytest

from harness.reading.throughput import (
    WRITE,
    Criterion,
    GuestBusy,
    NoBaseline,
    Starvation,
    cpu_in,
    cpu_share,
    judge,
    mean_jobs,
    parse_log,
    sum_jobs,
)

# Two jobs' iops logs as fio 3.33 wrote them in a reset-under-load run (log_unix_epoch):
# each job ticks every second, a few ms apart from the other.
JOB1 = """1795312001000, 512, 1, 0, 0
1795312002001, 411, 1, 0, 0
1795312003004, 420, 1, 0, 0
1795312004004, 12, 1, 0, 0
1795312005005, 537, 1, 0, 0
"""
JOB2 = """1795312001001, 511, 1, 0, 0
1795312002000, 399, 1, 0, 0
1795312003001, 433, 1, 0, 0
1795312004000, 0, 1, 0, 0
1795312005001, 512, 1, 0, 0
1795312006001, 448, 1, 0, 0
"""
T0 = 1795312000.0


def test_jobs_are_summed_window_by_window_despite_their_ms_offsets():
    total = sum_jobs([parse_log(JOB1), parse_log(JOB2)])
    assert [round(t - T0, 3) for t, _ in total] == [1.001, 2.0, 3.001, 4.0, 5.001, 6.001]
    assert [v for _, v in total] == [1023, 810, 853, 12, 1049, 448]
    assert parse_log("garbage\n") == [] and sum_jobs([[], []]) == []


# The same run's lat logs (ns): writes (ddir 1) and the verify_backlog's reads (ddir 0); in
# the fourth second a reset held the writes for most of a second.
LAT1 = """1795312001000, 6119026, 0, 0, 0
1795312001029, 4095783, 1, 0, 0
1795312002000, 4934080, 1, 0, 0
1795312004004, 812000000, 1, 0, 0
"""
LAT2 = """1795312001001, 3904217, 1, 0, 0
1795312002001, 5065920, 1, 0, 0
1795312004000, 788000000, 1, 0, 0
"""


def test_write_latency_is_the_mean_over_jobs_in_ms_without_the_verify_reads():
    lat = mean_jobs([parse_log(LAT1, WRITE, 1e-6), parse_log(LAT2, WRITE, 1e-6)])
    assert [round(t - T0, 3) for t, _ in lat] == [1.029, 2.0, 4.004]  # no write in second 3
    assert [round(v, 3) for _, v in lat] == [4.0, 5.0, 800.0]


def test_throughput_back_within_the_time_passes_with_its_figures():
    series = [(T0 + 1, 1000.0), (T0 + 2, 900.0), (T0 + 3, 0.0), (T0 + 4, 300.0),
              (T0 + 5, 800.0), (T0 + 6, 1000.0)]
    [v] = judge("load0", series, T0, faults=[T0 + 2.2], recoveries=[T0 + 2.9],
                criterion=Criterion(0.5, 5.0))
    assert v.ok and v.baseline == 950.0 and v.baseline_windows == 2
    assert round(v.back_after or 0, 3) == 2.1  # the window ending at +5 is the first >= 475
    assert "950 IOPS before the fault (median of 2 s), 800 (84%) 2.1s after" in v.describe()


def test_throughput_that_stays_low_fails_naming_the_best_window():
    series = [(T0 + 1, 1000.0), (T0 + 2, 1000.0)] + [(T0 + s, 200.0) for s in range(3, 12)]
    [v] = judge("load0", series, T0, faults=[T0 + 2.0], recoveries=[T0 + 2.5],
                criterion=Criterion(0.5, 5.0))
    assert not v.ok and v.back_after is None and v.best == 200.0
    assert "at best 200 IOPS (20%)" in v.describe()


def test_reaching_the_share_too_late_fails():
    series = [(T0 + 1, 1000.0), (T0 + 2, 1000.0)] + [(T0 + s, 100.0) for s in range(3, 9)] + \
             [(T0 + 9, 1000.0)]
    [v] = judge("load0", series, T0, [T0 + 2.0], [T0 + 2.0], Criterion(0.5, 5.0))
    assert not v.ok


def test_a_recovery_disturbed_by_the_next_fault_is_not_judged_but_the_last_is():
    series = [(T0 + s, 1000.0) for s in range(1, 20)]
    verdicts = judge("load0", series, T0, faults=[T0 + 3, T0 + 5, T0 + 14],
                     recoveries=[T0 + 4, T0 + 6, T0 + 15], criterion=Criterion(0.5, 5.0))
    assert [v.recovered_at - T0 for v in verdicts] == [6, 15]


def test_no_whole_second_before_the_fault_is_no_baseline():
    with pytest.raises(NoBaseline, match="no whole second"):
        judge("load0", [(T0 + 1.0, 500.0)], T0 + 0.5, [T0 + 1.2], [T0 + 2], Criterion())


def test_no_fault_or_no_recovery_is_nothing_to_judge():
    assert judge("load0", [(T0 + 1, 1.0)], T0, [], [T0 + 2], Criterion()) == []
    assert judge("load0", [(T0 + 1, 1.0)], T0, [T0 + 2], [], Criterion()) == []


def cpu_samples(per_second: list[float], start: float = T0) -> list[tuple[float, float]]:
    """Cumulative CPU samples, four a second, from the CPU the VM got in each second."""
    out, total = [(start, 0.0)], 0.0
    for i, c in enumerate(per_second):
        for q in range(1, 5):
            out.append((start + i + q / 4, total + c * q / 4))
        total += c
    return out


def test_cpu_per_second_is_read_from_cumulative_samples():
    cpu = cpu_samples([1.0, 1.0, 0.25])
    assert cpu_in(cpu, T0, T0 + 1) == 1.0
    assert cpu_in(cpu, T0 + 2, T0 + 3) == 0.25
    assert cpu_in(cpu, T0 + 2.5, T0 + 4) is None  # not covered
    assert cpu_share(cpu, T0, T0 + 2) == 1.0


def guest_busy(per_second: list[float], start: float = T0) -> GuestBusy:
    """The guest's own accounting, from how busy it was in each second (0 to 1)."""
    return GuestBusy(cpu_samples(per_second, start), cpu_samples([1.0] * len(per_second),
                                                                 start))


def test_seconds_the_host_starved_a_busy_vm_do_not_count_towards_the_time():
    # The hypervisor stole CPU for 8 s after the recovery; IOPS fell with it, then came back.
    # The guest, running, was as busy as before (its stolen time counts as busy).
    iops = [1000, 1000, 1000, 100] + [200] * 8 + [900, 1000]
    cpu = [1.0] * 4 + [0.3] * 8 + [1.0] * 3
    busy = guest_busy([0.95] * 15)
    series = [(T0 + i + 1, float(v)) for i, v in enumerate(iops)]
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0),
                cpu_samples(cpu), guest=busy)
    assert v.ok and v.contended_s == 8 and v.back_after == 9.5
    assert "8 s after it not counted (the VM got under 60% of its compute, its guest busy " \
        "and held back)" in v.describe()
    # Without the CPU figures the same series fails: that is what this protects against.
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0), guest=busy)
    assert not v.ok
    # Nor is any second excused without the guest's own figures.
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0),
                cpu_samples(cpu))
    assert not v.ok and v.contended_s == 0


def test_a_guest_that_idles_with_its_requests_in_flight_is_not_starved():
    # The same IOPS and the same CPU from the host, but the guest sat idle after the
    # recovery (a driver holding its requests): its seconds count, and it fails.
    iops = [1000, 1000, 1000, 100] + [200] * 8 + [900, 1000]
    cpu = [1.0] * 4 + [0.3] * 8 + [1.0] * 3
    series = [(T0 + i + 1, float(v)) for i, v in enumerate(iops)]
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0),
                cpu_samples(cpu), guest=guest_busy([0.95] * 4 + [0.1] * 8 + [0.95] * 3))
    assert not v.ok and v.contended_s == 0
    assert "at best 200 IOPS (20%)" in v.describe()


def test_a_driver_that_limps_by_waiting_fails_at_once():
    # An idle guest gets little CPU too: no second of it is excused.
    iops = [1000, 1000, 1000] + [50] * 60
    cpu = [1.0] * 3 + [0.1] * 60
    series = [(T0 + i + 1, float(v)) for i, v in enumerate(iops)]
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.2],
                Criterion(0.5, 5.0, max_extension=10), cpu_samples(cpu),
                guest=guest_busy([0.9] * 3 + [0.05] * 60))
    assert not v.ok and v.contended_s == 0


def test_excused_seconds_are_counted_live():
    cpu = cpu_samples([1.0, 1.0, 0.2, 0.2, 0.2, 1.0])
    busy = guest_busy([0.9, 0.9, 0.9, 0.1, 0.9, 0.9])
    starved = Starvation.measure(Criterion(), cpu, busy, T0, T0 + 2)
    assert starved.seconds(T0, T0 + 6) == 2  # the third and fifth seconds
    assert Starvation.measure(Criterion(), cpu, None, T0, T0 + 2).seconds(T0, T0 + 6) == 0
    assert Starvation.measure(Criterion(), [], busy, T0, T0 + 2).seconds(T0, T0 + 6) == 0


def test_a_slower_host_lowers_the_iops_wanted_but_not_a_lower_cpu_time():
    # The CI case of 2026-11-21: the VM kept its CPU share after the recovery while the host
    # ran at 70% of its speed (its compute fell with it), and the load at 45% of its IOPS.
    iops = [2250] * 3 + [1000] * 7
    cpu = [1.2] * 3 + [1.15] * 7
    compute = [1.2] * 3 + [1.15 * 0.7] * 7
    series = [(T0 + i + 1, float(v)) for i, v in enumerate(iops)]
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0),
                cpu_samples(cpu), cpu_samples(compute))
    assert v.ok and v.contended_s == 0 and v.slowest_host == pytest.approx(0.7)
    assert "the host down to 70% of its pre-fault speed" in v.describe()
    # The host at full speed: 44% is a driver that limps, whatever its CPU time.
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0),
                cpu_samples(cpu), cpu_samples(cpu))
    assert not v.ok
    # A guest idling at 70% of its CPU (a driver waiting) is wanted at the full 50%.
    idle = [1.2] * 3 + [0.84] * 7
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(0.5, 5.0),
                cpu_samples(idle), cpu_samples(idle))
    assert not v.ok


def _recorded(name: str) -> list:
    """Judge a recorded reset-under-load run (its timeline's load, VM CPU, host speed and
    guest busy series, seconds from its start) as the harness did."""
    run = json.loads((Path(__file__).parent / "data" / "throughput" / f"{name}.json")
                     .read_text())
    series, events = run["series"], run["events"]
    for name in ("vm_cpu", "guest_busy"):  # whole seconds without a gap, as the helpers read
        ts = [t for t, _ in series[name]]
        assert ts == pytest.approx([ts[0] + i for i in range(len(ts))]), name
    cpu, busy = series["vm_cpu"], series["guest_busy"]
    speed = dict(series["host_speed"])
    [started] = [t for t, kind in events if kind == "load_started"]
    return judge("load0", [(t, v) for t, v in series["load0"]], started,
                 [t for t, kind in events if kind == "fault"],
                 [t for t, kind in events if kind == "recovered"], Criterion(),
                 cpu_samples([c for _, c in cpu], cpu[0][0] - 1),
                 cpu_samples([c * speed.get(t, 1.0) for t, c in cpu], cpu[0][0] - 1),
                 guest_busy([b for _, b in busy], busy[0][0] - 1))


@pytest.mark.parametrize(("name", "excused"), [
    # stock 6.12, 60% of the VM's time stolen from the first reset on (SIGSTOP and SIGCONT
    # every 10 ms): IOPS at 49% of before, the guest 72-94% busy, compute 0.5 of before
    ("healthy-6.12-60pct-stolen-from-the-first-fault", 30),
    ("healthy-6.12-75pct-stolen-from-the-first-fault", 30),  # to the cap: the theft outlasts it
])
def test_a_healthy_driver_on_a_host_that_steals_from_it_is_excused(name, excused):
    judgements = _recorded(name)
    assert judgements[-1].contended_s == excused


@pytest.mark.parametrize("name", [
    "idle-after-reset-6.12-quiet-host",
    # the same theft throughout: the stalling driver's guest is 20-50% busy against 75-85%
    # before the fault, and its compute 0.35-0.5 of before, but in proportion to its work
    "idle-after-reset-6.12-60pct-stolen",
    "idle-after-reset-6.12-75pct-stolen",
])
def test_a_driver_that_idles_after_a_reset_is_never_excused(name):
    # tests/patches/idle-after-reset.patch: one I/O in 50 ms for 15 s after each reset
    judgements = _recorded(name)
    assert not judgements[-1].ok and judgements[-1].contended_s == 0
    assert judgements[-1].best < 0.1 * judgements[-1].baseline


def test_a_stalling_driver_on_a_slow_host_is_not_excused():
    # The CI run of 2026-12-03 (idle-after-reset, 6.12, seed 5): the host slow throughout,
    # the guest 91-98% busy before the fault and 35-48% while the driver idled, its compute
    # falling with its work. Judged on busyness alone, 11 of its seconds were excused.
    iops = [968] * 3 + [20] * 16 + [900] * 5
    busy = [0.95] * 3 + [0.35, 0.48, 0.41, 0.48, 0.38] * 3 + [0.45] + [0.95] * 5
    compute = [1.0] * 3 + [b / 0.95 for b in busy[3:19]] + [1.0] * 5
    series = [(T0 + i + 1, float(v)) for i, v in enumerate(iops)]
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(),
                cpu_samples(compute), guest=guest_busy(busy))
    assert not v.ok and v.contended_s == 0 and v.best == 20
    # Had the host held it back (the same busyness on half that compute), they would be
    compute = [1.0] * 3 + [b / 0.95 / 2 for b in busy[3:19]] + [1.0] * 5
    [v] = judge("load0", series, T0, [T0 + 3], [T0 + 3.5], Criterion(),
                cpu_samples(compute), guest=guest_busy(busy))
    assert v.contended_s > 0
