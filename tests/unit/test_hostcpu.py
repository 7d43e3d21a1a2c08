import os
import time

from harness.hostcpu import CpuSampler, process_cpu_seconds


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
