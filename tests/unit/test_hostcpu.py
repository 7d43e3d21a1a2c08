import itertools
import os
import time

from harness.machine import hostcpu
from harness.machine.hostcpu import CpuSampler, process_cpu_seconds


def test_samples_stay_cumulative_across_a_new_process_and_rewind_drops_the_gap():
    values = iter([1.0, 2.0, 0.5, 1.5] + [None] * 1000)
    clock = iter(float(t) for t in range(1000))
    sampler = CpuSampler(lambda: next(values), lambda: next(clock), period=0.001).start()
    time.sleep(0.2)
    sampler.stop()
    # 0.5 after 2.0: a new process (a power cut), whose CPU adds to the earlier one's
    assert sampler.snapshot() == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5), (3.0, 3.5)]
    sampler.rewind(1.5)
    assert sampler.snapshot() == [(0.0, 1.0), (1.0, 2.0)]


def test_this_process_has_used_some_cpu():
    used = process_cpu_seconds(os.getpid())
    assert used is not None and used > 0
    assert process_cpu_seconds(2**22 + 12345) is None


STAT = """cpu  100 5 50 800 10 0 5 30 20 0
cpu0 50 2 25 400 5 0 2 15 10 0
intr 12345
"""


def test_host_cpu_times_reads_steal_and_the_total_without_guest_time() -> None:
    assert hostcpu.host_cpu_times(STAT) == (30, 1000)
    assert hostcpu.host_cpu_times()[1] > 0  # this machine's own /proc/stat parses


def test_steal_share_is_the_stolen_part_of_the_time_between_two_readings() -> None:
    assert hostcpu.steal_share((30, 1000), (130, 2000)) == 0.1
    assert hostcpu.steal_share((30, 1000), (30, 1000)) == 0.0


def test_compute_weights_each_cpu_second_by_the_host_speed_of_its_time():
    # One CPU second per sample; the probe takes twice as long from the fourth sample on
    # (the host at half speed), so those seconds count half once the median has moved.
    values = iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0] + [None] * 1000)
    costs = iter([1.0] * 3 + [2.0] * 1000)
    clock = iter(float(t) for t in range(1000))
    sampler = CpuSampler(lambda: next(values), lambda: next(clock), period=0.001,
                         probe=lambda: next(costs)).start()
    time.sleep(0.2)
    sampler.stop()
    compute = sampler.compute()
    steps = [b - a for (_, a), (_, b) in itertools.pairwise(compute)]
    assert steps == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]  # median of the last 5 probes
    speeds = sampler.speeds()
    assert [s for _, s in speeds] == [2.0] * 3 + [1.0] * 6  # of the run's median probe (2.0)


def test_the_speed_probe_measures_something():
    assert 0 < hostcpu.speed_probe() < 1.0
