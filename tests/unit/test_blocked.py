"""The kernel's list of its tasks (SysRq w and t), read from real dumps
(tests/unit/data/blocked: what a guest printed when the harness asked, console prefixes and
all)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.reading import blocked, kmsg
from harness.recovery.context import NOT_THE_DRIVERS

DATA = Path(__file__).parent / "data" / "blocked"


def test_the_reset_worker_the_detector_missed_is_named_with_its_work_and_wait() -> None:
    # 6.1 with tests/patches/reset-sleeps-quietly.patch: the detector reported fio; the
    # reset worker it never reports sleeps in msleep, and the shell waits for it
    tasks = blocked.parse((DATA / "6.1-reset-sleeps-quietly.txt").read_text()).tasks
    assert [t.line for t in tasks] == [
        "kworker/u2:3 (pid 157, nvme-reset-wq nvme_reset_work) waits in msleep < "
        "nvme_reset_work < process_one_work",
        "fio (pid 199) waits in __bio_queue_enter < blk_mq_submit_bio < "
        "submit_bio_noacct_nocheck",
        "fio (pid 200) waits in __bio_queue_enter < blk_mq_submit_bio < "
        "submit_bio_noacct_nocheck",
        "bash (pid 204) waits in flush_work < nvme_sysfs_reset < kernfs_fop_write_iter",
    ]
    # the frames are the reliable ones, innermost first, without their offsets
    assert tasks[0].frames[:5] == ("__schedule", "schedule", "schedule_timeout", "msleep",
                                   "nvme_reset_work")


def test_only_the_last_dump_counts_and_no_dump_is_no_task() -> None:
    text = (DATA / "6.1-reset-sleeps-quietly.txt").read_text()
    later = ("[   41.1] sysrq: Show Blocked State\n"
             "[   41.2] task:kworker/0:1     state:D stack:0     pid:9     ppid:2      "
             "flags:0x00004000\n[   41.3] Call Trace:\n[   41.4]  <TASK>\n"
             "[   41.5]  __schedule+0x34d/0xa00\n[   41.6]  ? unreliable+0x1/0x2\n"
             "[   41.7]  </TASK>\n")
    tasks = blocked.parse(text + later).tasks
    assert [(t.name, t.pid, t.state, t.work, t.frames) for t in tasks] == [
        ("kworker/0:1", 9, "D", "", ("__schedule",))]
    assert tasks[0].waits_in() == "?"  # only the scheduler: where is unknown, not invented
    assert blocked.parse(text.replace("Show Blocked State", "Show Memory")).tasks == ()
    assert blocked.Dump().summary == ""


def test_the_summary_lists_a_dozen_and_counts_the_rest() -> None:
    task = blocked.parse((DATA / "6.1-reset-sleeps-quietly.txt").read_text()).tasks[1]
    lines = blocked.Dump((task,) * 15).summary.splitlines()
    assert lines[0] == "blocked tasks (SysRq):"
    assert len(lines) == 1 + blocked.MOST_LISTED + 1 and lines[-1] == "  and 3 more"


def test_every_task_finds_the_worker_between_two_sleeps_and_the_busy_workqueues() -> None:
    # 5.10, a reset that never ends (known-bugs/unconfirmed-5.10-namespace-scenarios/): its
    # worker sleeps 5 ms at a time, so SysRq t caught it running; w would have left it out
    dump = blocked.parse((DATA / "5.10-sysrq-t-reset-in-wait-completed.txt").read_text())
    assert dump.summary.splitlines() == [
        "blocked tasks (SysRq):",
        "  kworker/u2:2 (pid 101, nvme-reset-wq nvme_reset_work, running) waits in msleep < "
        "blk_mq_tagset_wait_completed_request < nvme_dev_disable",
        "  kworker/u2:3 (pid 102, nvme-wq nvme_scan_work) waits in blk_execute_rq < "
        "__nvme_submit_sync_cmd < nvme_identify_ns_descs",
        "  fio (pid 194) waits in blk_queue_enter < submit_bio_noacct < blkdev_direct_IO",
        "  fio (pid 195) waits in blk_queue_enter < submit_bio_noacct < blkdev_direct_IO",
        "  nvme (pid 233) waits in flush_work < nvme_submit_user_cmd < nvme_user_cmd",
        "  bash (pid 234) waits in flush_work < nvme_sysfs_reset < kernfs_fop_write_iter",
        "  workqueue nvme-wq: in-flight: 102:nvme_scan_work [nvme_core] BAR(233)",
        "  workqueue nvme-reset-wq: in-flight: 101:nvme_reset_work [nvme] BAR(234)",
    ]
    # the evidence keeps those tasks' lines (no time stamps), not the other hundred tasks
    # nor the scheduler's tables
    text = dump.text.splitlines()
    assert text[0].startswith("task:kworker/u2:2    state:R")
    assert sum(line.startswith("task:") for line in text) == 6
    assert not any("Sched Debug" in line or "runnable tasks" in line for line in text)


def test_a_dump_after_a_hung_task_report_ends_the_report() -> None:
    # the dump follows the hung-task report on the console: the oops detector must neither
    # fold it into the report nor make a report of it
    dump = (DATA / "6.1-reset-sleeps-quietly.txt").read_text()
    report = ("[   21.0] INFO: task fio:199 blocked for more than 10 seconds.\n"
              "[   21.1] task:fio             state:D stack:0     pid:199   ppid:156    "
              "flags:0x00004002\n[   21.2] Call Trace:\n[   21.3]  <TASK>\n"
              "[   21.4]  __schedule+0x34d/0xa00\n[   21.5]  __bio_queue_enter+0x13c/0x260\n"
              "[   21.6]  </TASK>\n")
    oopses = kmsg.scan(report + dump)
    assert [o.title for o in oopses] == ["INFO: task hung in __bio_queue_enter"]
    assert len(oopses[0].lines) == 7


def test_the_driver_log_of_a_failure_leaves_the_dumps_frames_out() -> None:
    # Context.driver_log's filter, run by grep as in the guest: the driver's own lines stay
    dump = (DATA / "6.1-reset-sleeps-quietly.txt").read_text()
    text = "[   30.1] nvme nvme0: I/O 5 QID 1 timeout, aborting\n" + dump
    kept = subprocess.run(["grep", "-E", "nvme"], input=text, capture_output=True, text=True,
                          check=True).stdout
    assert "nvme_reset_work+0x8d" in kept  # the unfiltered lines would have them
    shown = subprocess.run(["grep", "-v", "-E", NOT_THE_DRIVERS], input=kept, capture_output=True,
                           text=True, check=True).stdout
    assert shown.splitlines() == ["[   30.1] nvme nvme0: I/O 5 QID 1 timeout, aborting"]
