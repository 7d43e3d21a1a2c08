"""The suite proves it can fail: Debian 6.1's own NVMe driver passes, and the same driver
broken the way real bugs break it (tests/patches) fails with the right reason, in bounded time.

Everything runs as a kernel developer would: ``kernel nvme-src`` for the stock sources,
``patch``, then ``repro ... --nvme-src DIR``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import EXIT_HARNESS, EXIT_TIMEOUT
from tests.harness.hoststeal import stolen
from tests.harness.test_cli import ROOT, harness, xfail_on_a_known_bug

PATCHES = ROOT / "tests" / "patches"
SEED = "5"


def _sources(tmp_path_factory: pytest.TempPathFactory, kernel: str) -> Path:
    dest = tmp_path_factory.mktemp("stock") / "host"
    proc = harness("kernel", "nvme-src", "--kernel", kernel, str(dest))
    assert proc.returncode == 0, proc.stderr
    assert (dest / "pci.c").exists() and (dest / "core.c").exists()
    return dest


@pytest.fixture(scope="module")
def stock_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sources(tmp_path_factory, "debian:6.1")


@pytest.fixture(scope="module")
def stock_sources_5_10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sources(tmp_path_factory, "debian:5.10")


@pytest.fixture(scope="module")
def stock_sources_6_12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sources(tmp_path_factory, "debian:6.12")


def patched(stock: Path, dest: Path, *patches: str | Path) -> Path:
    """A copy of ``stock`` with ``patches`` applied (names in tests/patches, or paths)."""
    shutil.copytree(stock, dest)
    for patch in patches:
        # git apply works outside a repository too, and git is there wherever this was cloned
        subprocess.run(["git", "apply", "-p1", str(PATCHES / patch)], cwd=dest, check=True)
    return dest


def _fresh(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``...: the first that does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def repro(src: Path, timeout: float, *extra: str, scenario: str = "reset-under-load",
          kernel: str = "debian:6.1") -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    if "--artifacts" not in extra and "--report-dir" not in extra:  # none left in /tmp
        extra = (*extra, "--artifacts", str(_fresh(src.parent / "artifacts")))
    proc = harness("repro", scenario, "--kernel", kernel, "--seed", SEED,
                   "--nvme-src", str(src), *extra, timeout=timeout)
    return proc, time.monotonic() - t0


def test_the_stock_driver_built_from_source_passes_on_a_host_that_steals_from_it(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # --until-fail with a budget smaller than one iteration: exactly one runs, then exit 0,
    # with the report and the artifacts of a real run. From its first reset on, the host
    # takes 75% of the VM's time for 15 s: the load's IOPS fall under half, and the seconds
    # in which the host held the busy guest back are excused, not failed.
    report, art = tmp_path / "report", tmp_path / "art"
    iteration = art / f"iter0000-seed{SEED}"
    with stolen(0.75, 15, after=(iteration / "commands.log", "$ _nvme_reset_wait_live")):
        proc, _ = repro(stock_sources_6_12, 600, "--until-fail", "--budget", "1",
                        "--artifacts", str(art), "--report-dir", str(report),
                        kernel="debian:6.12")
    xfail_on_a_known_bug(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"iteration 1 seed {SEED}: PASS" in proc.stdout, proc.stdout
    assert "budget spent: 1 iteration(s) passed" in proc.stdout
    events = json.loads((iteration / "timeline.json").read_text())["events"]
    [judged] = [e["detail"] for e in events if e["kind"] == "throughput"]
    assert re.search(r"\d+ s after it not counted \(the VM got under 60% of its compute, "
                     r"its guest busy and held back\)", judged), judged
    assert (f"repro reset-under-load --seed {SEED} --iterations 1 "
            f"--nvme-src {stock_sources_6_12}") in (iteration / "reproduce.sh").read_text()
    # the properties come from the lab, the plot from the timeline
    case = ET.parse(report / "junit.xml").getroot().find("testcase")
    assert case is not None and case.get("name") == f"reset-under-load[seed {SEED}]"
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert re.fullmatch(r"6\.12\.\d+(-\d+|\+deb\d+)-amd64", props["kernel_release"]), props
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", props["qemu_version"]), props
    assert props["seed"] == SEED and props["accel"], props
    assert props["nvme_driver"].startswith(f"{stock_sources_6_12} ("), props
    summary = json.loads((report / "summary.json").read_text())["tests"]
    assert [t["status"] for t in summary] == ["PASS"]
    page = (report / "index.html").read_text()
    assert f"reset-under-load[seed {SEED}]" in page and "data:image/png;base64," in page


def test_a_driver_that_acknowledges_writes_it_never_sent_is_caught(
        stock_sources: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc, _ = repro(patched(stock_sources, tmp_path / "host", "lost-write.patch"), 600,
                    "--until-fail", "--budget", "900", "--report-dir", str(report))
    xfail_on_a_known_bug(proc)  # 6.1's own doorbell-config bug came first
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL: lost or corrupted data" in proc.stdout, proc.stdout
    assert "EILSEQ" in proc.stdout and "verify: bad magic header" in proc.stderr
    assert "--nvme-src" in proc.stderr  # the reproduce line rebuilds the same driver
    # the report says FAIL (the driver), names the driver built, and plots the iteration
    failed = [t for t in json.loads((report / "summary.json").read_text())["tests"]
              if t["status"] != "PASS"]
    assert [(t["status"], t["waived"]) for t in failed] == [("FAIL", False)]
    assert "lost or corrupted data" in failed[0]["misc"]["message"]
    assert str(tmp_path / "host") in failed[0]["misc"]["nvme_driver"]
    assert "--nvme-src" in failed[0]["misc"]["reproduce"]
    page = (report / "index.html").read_text()
    assert '<tr class="FAIL">' in page and "data:image/png;base64," in page


def test_a_reset_that_never_marks_the_controller_live_is_caught_in_bounded_time(
        stock_sources: Path, tmp_path: Path) -> None:
    proc, took = repro(patched(stock_sources, tmp_path / "host", "never-live.patch"),
                       timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL: controller did not return to live" in proc.stdout, proc.stdout
    assert "state: connecting" in proc.stdout
    assert "kernel log:" in proc.stderr  # the driver's own lines are part of the evidence
    assert took < 240, f"took {took:.0f}s: the 60 s recovery bound was not what ended it"


def test_a_driver_that_limps_after_a_reset_is_caught_by_its_throughput(
        stock_sources: Path, tmp_path: Path) -> None:
    # Live, no error, nothing lost: only the per-second IOPS show that it never came back.
    proc, _ = repro(patched(stock_sources, tmp_path / "host", "slow-after-reset.patch"), 600)
    xfail_on_a_known_bug(proc)  # 6.1's own doorbell-config bug came first
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL: throughput did not come back after recovering" in proc.stdout, proc.stdout
    assert re.search(r"load0: \d+ IOPS before the fault .*, at best \d+ IOPS \(\d+%\)",
                     proc.stdout), proc.stdout
    assert "IOPS per second" in proc.stderr  # the whole series is the evidence


def test_a_patch_that_slows_the_reset_is_flagged_against_its_base(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # 400 ms more per reset with the queues down: every verdict still PASS, so only the
    # comparison with the base on the same seeds shows it, beyond the base's own spread.
    # repro --nvme-srcs is matrix's comparison of one scenario; soaks give it a dozen faults
    # per seed on one VM each.
    slower = patched(stock_sources_6_12, tmp_path / "slower", "slower-reset.patch")
    proc = harness("repro", "reset-under-load", "--kernel", "debian:6.12", "--nvme-srcs",
                   f"base={stock_sources_6_12},slower={slower}", "--seed", SEED,
                   "--iterations", "2", "--soak-faults", "12", "--artifacts",
                   str(tmp_path / "art"), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"reset-under-load +pass \S+ +pass \S+", out), out
    assert re.search(r"recoveries +24 +24$", out, re.MULTILINE), out
    [live] = [ln for ln in out.splitlines() if ln.lstrip().startswith("back to live")]
    assert live.endswith("<- beyond the noise"), out
    assert float(re.findall(r"(\d+\.\d)x", live)[0]) >= 3, live
    [writes] = [ln for ln in out.splitlines() if ln.lstrip().startswith("writes again")]
    assert not writes.endswith("<- beyond the noise"), out  # the time to write is not the reset's
    assert "1 figure(s) differ beyond the noise" in out, out


def test_a_scan_that_hangs_is_reported_with_its_stack_at_once(
        stock_sources: Path, tmp_path: Path) -> None:
    proc, took = repro(patched(stock_sources, tmp_path / "host", "scan-hang.patch"), 600,
                       scenario="rescan-during-reset")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL: hang: the guest kernel reported a hung task" in proc.stdout, proc.stdout
    assert "nvme_scan_work" in proc.stdout  # the stack is in the failure message itself
    # The scan sleeps for a minute; the detector reports it after 10-20 s, and the iteration
    # ends then instead of waiting for the scenario's bounds.
    assert took < 180, f"took {took:.0f}s"


def test_a_hang_names_the_worker_the_hung_task_detector_misses(
        stock_sources: Path, tmp_path: Path) -> None:
    # The reset worker sleeps in short steps: only the shell waiting for it is reported, and
    # only the kernel's list of its tasks (SysRq) shows where the reset itself waits.
    proc, took = repro(patched(stock_sources, tmp_path / "host", "reset-sleeps-quietly.patch"),
                       600, scenario="rescan-during-reset")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "task hung in nvme_sysfs_reset" in proc.stdout, proc.stdout
    assert re.search(r"kworker/\S+ \(pid \d+, nvme-reset-wq nvme_reset_work(, running)?\) "
                     r"waits in msleep < nvme_reset_work", proc.stdout), proc.stdout
    assert re.search(r"workqueue nvme-reset-wq: in-flight: \d+:nvme_reset_work", proc.stdout)
    assert took < 240, f"took {took:.0f}s"


def test_a_driver_that_does_not_compile_shows_the_compiler_output(
        stock_sources: Path, tmp_path: Path) -> None:
    src = tmp_path / "host"
    shutil.copytree(stock_sources, src)
    with open(src / "pci.c", "a") as fh:
        fh.write("\nstatic int broken(void) { return undeclared_thing; }\n")
    proc = harness("images", "--kernel", "debian:6.1", "--nvme-src", str(src))  # its sources
    assert proc.returncode == EXIT_HARNESS, proc
    assert "does not compile" in proc.stderr and "Traceback" not in proc.stderr
    assert re.search(r"[‘']undeclared_thing[’'] undeclared", proc.stderr)  # gcc's own words
    assert f"{src}/pci.c:" in proc.stderr  # naming the user's file, not the build copy


DEADLOCK = ROOT / "known-bugs" / "linux-6.1-scan-reset-deadlock"
DOORBELL = ROOT / "known-bugs" / "linux-6.1-doorbell-config-after-requeue"


def _directed_deadlock(src: Path, kernel: str) -> subprocess.CompletedProcess[str]:
    return harness("run", "--kernel", kernel, "--nvme-src", str(src),
                   "--topology", "controllers=2,subsystem=on,namespaces=512M+256M:detached",
                   "--timeout", "120", "--", "bash", "-c",
                   (DEADLOCK / "directed-repro.sh").read_text(), timeout=600)


def _deadlocked_or_not(proc: subprocess.CompletedProcess[str], fixed: bool) -> None:
    if fixed:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "jobs still running: 0" in proc.stdout, proc.stdout
        # the scan after the reset attached the namespace on both paths
        assert re.search(r"namespace 2 devices: nvme\d+c\d+n2 nvme\d+c\d+n2 nvme\d+n2",
                         proc.stdout), proc.stdout
    else:
        assert proc.returncode == EXIT_TIMEOUT, proc.stdout + proc.stderr
        assert "reported a hung task" in proc.stderr, proc.stderr
        assert re.search(r"nvme_wait_freeze\+\S+ \[nvme_core\]\s+nvme_reset_work",
                         proc.stderr), proc.stderr


@pytest.mark.parametrize("fixed", [False, True], ids=["widened", "widened+fix"])
def test_the_6_1_scan_reset_deadlock_reproduced_on_purpose(
        stock_sources: Path, tmp_path: Path, fixed: bool) -> None:
    # The known bug ns-churn-during-reset found, with its window widened (sleeps only) and a
    # reset started inside a scan: the stock 6.1 logic deadlocks every time, the fix never.
    patches = [DEADLOCK / "widen-window.patch"]
    if fixed:
        patches.append(DEADLOCK / "fix-839a40d1e730-backport.patch")
    _deadlocked_or_not(_directed_deadlock(patched(stock_sources, tmp_path / "host", *patches),
                                          "debian:6.1"), fixed)


@pytest.mark.evidence
@pytest.mark.parametrize("fixed", [False, True], ids=["widened", "widened+fix"])
def test_the_scan_reset_deadlock_reproduced_on_5_10_without_its_doorbell_bugs(
        stock_sources_5_10: Path, tmp_path: Path, fixed: bool) -> None:
    # 5.10 strands requeued I/O behind two doorbell bugs, which hangs a reset the same way:
    # with both fixed, the widened race still deadlocks, and the scan/reset fix still cures it
    patches = [ROOT / "known-bugs" / "linux-5.10-stale-shadow-doorbells" /
               "fix-58847f12-backport.patch", DOORBELL / "fix-06c59d427017-backport-5.10.patch",
               DEADLOCK / "widen-window-5.10.patch"]
    if fixed:
        patches.append(DEADLOCK / "fix-839a40d1e730-backport-5.10.patch")
    _deadlocked_or_not(_directed_deadlock(
        patched(stock_sources_5_10, tmp_path / "host", *patches), "debian:5.10"), fixed)


@pytest.mark.evidence
@pytest.mark.parametrize("fixed", [False, True], ids=["widened", "widened+fix"])
def test_the_6_1_doorbell_config_bug_after_a_sysfs_reset_reproduced_on_purpose(
        stock_sources: Path, tmp_path: Path, fixed: bool) -> None:
    # A sysfs reset rarely finds commands the device has not fetched yet; the patch makes
    # every reset under load find some (it holds the doorbells for 20 ms before the reset
    # disables the controller). Stock 6.1 then loses what the reset requeued, every time:
    # the suite names the recorded bug and exits 1; with the fix it passes.
    patches = [DOORBELL / "widen-unfetched-at-reset.patch"]
    if fixed:
        patches.append(DOORBELL / "fix-06c59d427017-backport.patch")
    proc, _ = repro(patched(stock_sources, tmp_path / "host", *patches), 900)
    if fixed:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"iteration 1/1 seed {SEED}: PASS" in proc.stdout, proc.stdout
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert re.search(r"FAIL: no stable recovery: .* timeout, aborting; \d+ request\(s\) had "
                         r"been requeued by the last reset", proc.stdout), proc.stdout
        assert ("known kernel bug on debian:6.1 (from 4.12, fixed in 6.8): 06c59d427017"
                in proc.stderr), proc.stderr


POLL_MAP = ROOT / "known-bugs" / "linux-6.1-poll-queue-without-poll-map"


@pytest.mark.evidence
@pytest.mark.parametrize("fixed", [False, True], ids=["stock", "fix"])
def test_the_6_12_poll_queue_without_a_poll_map_reproduced(
        stock_sources_6_12: Path, tmp_path: Path, fixed: bool) -> None:
    # 6.12's own driver takes a poll queue at runtime its tag set has no map for: CPU 1's
    # I/O waits for the timeout, and the suite names the record; the fix declines the queue
    patches = [POLL_MAP / "fix-no-poll-queue-without-map.patch"] if fixed else []
    proc, _ = repro(patched(stock_sources_6_12, tmp_path / "host", *patches), 600,
                    scenario="poll-queues-added-under-load", kernel="debian:6.12")
    if fixed:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"iteration 1/1 seed {SEED}: PASS" in proc.stdout, proc.stdout
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert re.search(r"FAIL: no stable recovery: .* QID 2 timeout, completion polled",
                         proc.stdout), proc.stdout
        assert "known kernel bug on debian:6.12 (from 6.1, unfixed)" in proc.stderr, proc.stderr


LAYOUT = ROOT / "known-bugs" / "linux-6.12-requeue-across-queue-layout"


@pytest.mark.evidence
@pytest.mark.parametrize(("scenario", "fixed"), [("queue-count-under-load", False),
                                                 ("queue-count-under-load", True),
                                                 ("poll-queues", False)],
                         ids=["layout-changed", "layout-changed-fix", "layout-kept"])
def test_requests_requeued_across_a_queue_layout_change_reproduced(
        stock_sources_6_12: Path, tmp_path: Path, scenario: str, fixed: bool) -> None:
    # Every widened reset requeues requests; only the resets that change the queues' layout
    # send them to a queue that is gone (I/O error) or became a poll queue (a 30 s wait),
    # and the suite names the record. The fix drains before it takes the new counts (the
    # widening's held doorbells ring then, as a live device fetches what it was given).
    patches = [LAYOUT / "widen-unfetched-at-reset-6.12.patch"]
    if fixed:
        patches += [LAYOUT / "fix-drain-before-new-queue-counts.patch",
                    LAYOUT / "widen-ring-held-doorbells-at-drain.patch"]
    proc, _ = repro(patched(stock_sources_6_12, tmp_path / "host", *patches), 600,
                    scenario=scenario, kernel="debian:6.12")
    if scenario == "poll-queues" or fixed:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"iteration 1/1 seed {SEED}: PASS" in proc.stdout, proc.stdout
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"seed {SEED}: FAIL: I/O error where recovery should be transparent" \
            in proc.stdout, proc.stdout
        assert "request(s)" in proc.stdout  # what the reset had requeued
        assert "known kernel bug on debian:6.12 (from 5.10, unfixed)" in proc.stderr, \
            proc.stderr


def test_a_lost_write_is_not_hidden_behind_the_hang_it_leads_to(
        stock_sources: Path, tmp_path: Path) -> None:
    # fio stops at its inline verify error before the device goes silent, so nothing is in
    # flight to strand and the driver has nothing to react to: the lost write is the finding,
    # not "the driver never acted on its stranded commands"
    proc, _ = repro(patched(stock_sources, tmp_path / "host", "lost-write.patch"), 600,
                    scenario="bus-master-off")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"seed {SEED}: FAIL: lost or corrupted data" in proc.stdout, proc.stdout
    assert "EILSEQ" in proc.stdout and "never acted on its stranded commands" not in proc.stdout


def test_a_driver_that_refuses_a_reset_fails_instead_of_being_untestable(
        stock_sources: Path, tmp_path: Path) -> None:
    # The write to reset_controller fails (EBUSY): the driver's state, so exit 1 with its
    # kind, never 125 (which git bisect run takes for "skip")
    proc, _ = repro(patched(stock_sources, tmp_path / "host", "refuse-resets.patch"), 600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"seed {SEED}: FAIL: controller did not return to live: nvme0 refused "
                     r"a reset: writing \S+/reset_controller failed: .*Device or resource busy",
                     proc.stdout), proc.stdout


def test_a_stale_completion_the_driver_only_logs_is_a_failure(
        stock_sources: Path, tmp_path: Path) -> None:
    # No WARNING, nothing lost, always live: the driver's own "genctr mismatch" and "invalid
    # id" lines (one completion in 1024 also looked up as its tag's previous generation) are
    # the only sign, and they are the finding
    proc, _ = repro(patched(stock_sources, tmp_path / "host", "stale-completion.patch"), 600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"seed {SEED}: FAIL: the driver reported an impossible state: " in proc.stdout
    assert re.search(r"nvme nvme0: request 0x[0-9a-f]+ genctr mismatch \(got 0x[0-9a-f]+ "
                     r"expected 0x[0-9a-f]+\)", proc.stdout), proc.stdout
    assert re.search(r"nvme nvme0: invalid id \d+ completed on queue 1", proc.stdout)
    assert "--- evidence (the driver reported an impossible state) ---" in proc.stderr


@pytest.mark.parametrize(("patch", "found"), [
    ("slow-reset.patch", r"FAIL: controller did not return to live: nvme0 was out of live "
                         r"for [5-9]\.\ds \(from [\d.]+s\): longer than the 3s a reset may take"),
    ("stall-after-live.patch", r"FAIL: throughput did not come back after recovering: no write "
                               r"completed on nvme0 for [6-9]\.\ds after it was live again"),
], ids=["idle-in-reset", "frozen-after-live"])
def test_a_driver_that_stalls_without_logging_anything_is_caught(
        stock_sources: Path, tmp_path: Path, patch: str, found: str) -> None:
    # No timeout, no error, nothing lost, throughput back once the stall ends: only the state
    # monitor's samples show a reset idling for 5 s, or queues frozen for 8 s after live
    proc, _ = repro(patched(stock_sources, tmp_path / "host", patch), 600)
    xfail_on_a_known_bug(proc)  # 6.1's own doorbell-config bug came first
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(found, proc.stdout), proc.stdout


def test_a_driver_that_idles_after_a_reset_is_not_excused_as_a_slow_host(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # Live, writes resume at once, nothing fails or is logged: for 15 s after each reset it
    # sends one I/O in 50 ms. The VM then gets little CPU from the host, as a starved one
    # would, but its guest sits idle: those seconds count. (On 6.12: the requests it turns
    # away are requeues, which set off 6.1's own doorbell-config bug first.) The host takes
    # 75% of the VM's time throughout, as a slow CI host does: the little work the guest
    # does then stretches over more of each second, and it looks busier than it is.
    with stolen(0.75):
        proc, _ = repro(patched(stock_sources_6_12, tmp_path / "host",
                                "idle-after-reset.patch"), 600, kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # A second or two right after a reset may be excused (the reset itself keeps the guest
    # busy while the host holds it back); the limping seconds after them are not
    assert re.search(r"FAIL: throughput did not come back after recovering: load0: \d+ IOPS "
                     r"before the fault \(median of \d+ s\)(, [1-3] s after it not counted "
                     r"\([^)]*\))?(, the host [^,]*)?, at best \d+ IOPS \(\d%\)", proc.stdout), \
        proc.stdout
    assert "how busy the guest was" in proc.stderr


def test_a_driver_that_keeps_its_old_queue_map_after_the_count_changed_is_caught(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # The reset set up fewer queues (or as many, of other types), but the tag set was resized
    # only when the count grew: blk-mq sends requests to deleted queues, which fail them
    proc, _ = repro(patched(stock_sources_6_12, tmp_path / "host", "queue-count-not-updated.patch"),
                    600, scenario="queue-count-under-load", kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"seed {SEED}: FAIL: I/O error where recovery should be transparent" in proc.stdout, \
        proc.stdout


def test_a_driver_that_drops_completions_while_a_cpus_queue_drains_is_caught(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # CPU 1 goes offline with requests in flight on its queue (the backend throttled
    # meanwhile); their completions arrive while blk-mq drains the queue, and this driver
    # drops them: the drain, and the write to cpu1/online, never end
    proc, _ = repro(patched(stock_sources_6_12, tmp_path / "host",
                            "drop-completions-cpu-offline.patch"),
                    600, scenario="cpu-offline-under-load", kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"seed {SEED}: FAIL: hang" in proc.stdout, proc.stdout


def test_a_driver_that_stops_its_queues_on_a_non_fatal_aer_error_is_caught(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # error_detected quiesces the I/O queues and answers "can recover": the AER driver
    # reports success and the controller stays live, but no write completes again
    proc, took = repro(patched(stock_sources_6_12, tmp_path / "host",
                               "aer-nonfatal-quiesced.patch"),
                       600, scenario="aer-under-load", kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"seed {SEED}: FAIL: hang: load\S*: no write completed within 20s of the "
                     "recovery", proc.stdout), proc.stdout
    # the writes wait in the stopped queues: none reached the driver, none will time out
    assert "blk-mq: no request with the driver" in proc.stderr, proc.stderr
    assert took < 240, f"found only after {took:.0f}s"


def test_a_driver_that_does_not_restart_after_a_fatal_aer_error_is_caught(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # slot_reset restores the config space and answers "recovered" without restarting the
    # controller error_detected disabled: the AER driver reports success, the controller
    # stays resetting, and the scenario does not take the AER driver's word for it
    proc, _ = repro(patched(stock_sources_6_12, tmp_path / "host", "aer-fatal-no-restart.patch"),
                    600, scenario="aer-under-load", kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"seed {SEED}: FAIL: controller did not return to live" in proc.stdout, proc.stdout
    assert "(last state: resetting)" in proc.stdout, proc.stdout


def test_a_soak_finds_a_stall_that_comes_once_in_25_resets_and_replays_it(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # Every 25th reset leaves the queues frozen for 8 s after live, logging nothing: an
    # iteration's 3-5 resets never meet it; a soak meets it at fault 25, names that fault,
    # and its reproduce line meets it there again on a fresh VM
    src = patched(stock_sources_6_12, tmp_path / "host", "stall-once-in-25-resets.patch")
    proc, _ = repro(src, 900, "--soak", "600", kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = (r"FAIL: throughput did not come back after recovering: no write of load0 "
             r"completed on /dev/nvme0n1 within 5s of the recovery")
    assert re.search(found, proc.stdout), proc.stdout
    assert re.search(r"^nvmeh: soak seed 5 failed at fault 25, \d+s into the soak$",
                     proc.stderr, re.MULTILINE), proc.stderr
    line = re.search(r"^reproduce \(the same faults on a fresh VM\): python -m harness (.*)$",
                     proc.stderr, re.MULTILINE)
    assert line is not None and "--soak-faults 25 " in line.group(1), proc.stderr
    assert "--soak 600" not in line.group(1)
    again = harness(*shlex.split(line.group(1)), "--artifacts", str(tmp_path / "replay"),
                    timeout=900)
    assert again.returncode == 1, again.stdout + again.stderr
    assert re.search(found, again.stdout), again.stdout
    assert "failed at fault 25," in again.stderr, again.stderr


def test_a_soak_whose_faults_log_timeouts_still_finds_one_after_a_recovery(
        stock_sources_6_12: Path, tmp_path: Path) -> None:
    # stall-timeout's own faults log timeouts, so its soak reads the kernel log from each
    # recovery to the next fault; this driver loses the first completion after each abort:
    # that request times out after the recovery, and its abort loses the next one
    src = patched(stock_sources_6_12, tmp_path / "host", "lose-a-completion-after-an-abort.patch")
    proc, _ = repro(src, 600, "--soak-faults", "3", scenario="stall-timeout",
                    kernel="debian:6.12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"FAIL: no stable recovery: .* after the last recovery, first: \[ *[\d.]+\] "
                     r"nvme nvme0: I/O tag \d+ \(\w+\) opcode \w+ \(I/O Cmd\) QID 1 timeout",
                     proc.stdout), proc.stdout
    assert re.search(r"^nvmeh: soak seed 5 failed at fault 1, \d+s into the soak$", proc.stderr,
                     re.MULTILINE), proc.stderr


@pytest.mark.parametrize("broken", [False, True], ids=["stock", "resume-without-reset"])
def test_a_driver_that_never_restarts_its_controller_after_a_suspend_is_caught(
        stock_sources_6_12: Path, tmp_path: Path, broken: bool) -> None:
    # Suspend shuts QEMU's controller down (it has no power states of its own) and freezes
    # the queues; resume must reset it. This one returns without: the load's next request
    # waits for the frozen queue forever, which the hung-task detector reports
    src = patched(stock_sources_6_12, tmp_path / "host",
                  *(["resume-without-reset.patch"] if broken else []))
    proc, took = repro(src, 600, scenario="suspend-under-load", kernel="debian:6.12")
    if not broken:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert re.search(rf"seed {SEED}: PASS in [\d.]+s, [23] recoveries", proc.stdout), \
            proc.stdout
        return
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"seed {SEED}: FAIL: hang: the guest kernel reported a hung task: INFO: "
                     r"task hung in (__)?bio_queue_enter", proc.stdout), proc.stdout
    assert took < 180, f"found only after {took:.0f}s"
