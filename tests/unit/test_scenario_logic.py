import argparse
from pathlib import Path

from harness.campaigns.repro import reproduce_command
from harness.reading.timeline import Timeline
from harness.recovery.registry import Scenario
from harness.recovery.scenarios import names


def test_recovery_times_pair_each_fault_with_the_next_recovery():
    t = Timeline()
    t.add("load_started", at=10.0)
    t.add("fault", "reset", at=11.0)
    t.add("state", "resetting", at=11.01)
    t.add("recovered", at=11.25)
    t.add("fault", "reset", at=13.0)
    t.add("recovered", at=13.5)
    t.add("recovered", at=14.0)  # no fault open: ignored
    assert t.recovery_times() == [0.25, 0.5]


def test_recovery_uses_the_monitors_return_to_live_when_it_is_earlier():
    t = Timeline()
    t.add("fault", "reset", at=1.0)
    t.add("state", "nvme0 live", at=1.01)  # still live: the reset has not begun
    t.add("state", "nvme0 resetting", at=1.05)
    t.add("state", "nvme0 live", at=1.2)
    t.add("recovered", "nvme0 live", at=1.6)  # seen by a wait that started late
    assert [round(x, 3) for x in t.recovery_times()] == [0.2]


def test_a_lifted_fault_is_recovered_from_its_lifting():
    t = Timeline()
    t.add("fault", "PCI remove of 0000:00:04.0", at=1.0)
    t.add("state", "nvme0 gone", at=1.1)
    t.add("lifted", "PCI remove of 0000:00:04.0", at=9.0)  # away until then, by design
    t.add("state", "nvme0 live", at=9.8)
    t.add("recovered", "nvme0 live", at=10.0)
    t.add("lifted", "smart_critical_warning=1", at=11.0)  # no fault open: ignored
    assert [round(x, 3) for x in t.recovery_times()] == [0.8]


def test_io_resumes_is_timed_from_each_return_to_live_per_controller():
    t = Timeline()
    t.add("state", "nvme0 live", at=1.0)
    t.add("io_resumed", "nvme0", at=1.001)  # no return to live before it: ignored
    t.add("state", "nvme0 resetting", at=2.0)
    t.add("state", "nvme1 resetting", at=2.1)
    t.add("state", "nvme0 live", at=2.2)
    t.add("state", "nvme1 live", at=2.3)
    t.add("io_resumed", "nvme1", at=2.35)
    t.add("io_resumed", "nvme0", at=2.5)
    t.add("io_resumed", "nvme0", at=2.6)  # already counted
    assert [round(x, 3) for x in t.io_resume_times()] == [0.05, 0.3]


def test_reproduce_command_carries_the_seed_and_non_default_options():
    args = argparse.Namespace(kernel="debian:6.12", qemu="/opt/qemu/bin/qemu-system-x86_64",
                              accel=None, topology="", no_snapshot=True)
    scn = Scenario("reset-under-load", "", lambda ctx: None)
    cmd = reproduce_command(args, scn, 99)
    assert cmd == ("python -m harness repro reset-under-load --seed 99 --iterations 1 "
                   "--qemu /opt/qemu/bin/qemu-system-x86_64 --no-snapshot")


def test_scenarios_are_registered_by_their_repro_names():
    assert "reset-under-load" in names()


def test_reproduce_command_rebuilds_the_same_driver_on_the_same_kernel():
    args = argparse.Namespace(kernel="debian:6.1", nvme_src=Path("/src/host"), qemu=None,
                              accel=None, topology="", no_snapshot=False)
    args.qemu = "qemu-system-x86_64"
    cmd = reproduce_command(args, Scenario("reset-storm", "", lambda ctx: None), 7)
    assert cmd.endswith("--seed 7 --iterations 1 --kernel debian:6.1 --nvme-src /src/host")


def test_the_queue_counts_a_reset_set_up_are_read_from_the_drivers_line():
    from harness.recovery.scenarios.queues import queues_set_up
    log = ["[    1.512000] nvme nvme0: 2/2/2 default/read/poll queues",
           "[    1.600000] nvme nvme1: 1/0/0 default/read/poll queues",
           "[   20.100000] nvme nvme0: resetting controller",
           "[   20.180000] nvme nvme0: 2/0/1 default/read/poll queues"]
    assert queues_set_up(log, "nvme0") == (2, 0, 1)
    assert queues_set_up(log, "nvme1") == (1, 0, 0)
    assert queues_set_up(log[2:3], "nvme0") is None
