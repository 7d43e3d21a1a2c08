"""``python -m harness`` as a user runs it: exit codes, bad input, and cleanup."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import paths
from harness.build import images
from harness.errors import EXIT_GUEST_PANIC, EXIT_HARNESS, EXIT_VM_DIED
from harness.progress import QUIET

ROOT = Path(__file__).resolve().parents[2]


def harness(*args: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


def xfail_on_a_known_bug(proc: subprocess.CompletedProcess[str]) -> None:
    """A repro that exited 1 on a recorded kernel bug (it names it) hit that bug, rarely, on
    its way to what the test checks: xfail with the bug; anything else goes on to be judged."""
    named = re.search(r"^nvmeh: (known kernel bug .*)$", proc.stderr, re.MULTILINE)
    if proc.returncode == 1 and named:
        pytest.xfail(named.group(1))


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 125 with exactly one error line (progress lines may come before it)."""
    assert proc.returncode == EXIT_HARNESS, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("nvmeh: error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def _qemu_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "qemu-system"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def _scratch_of(pid: int) -> list[Path]:
    return list(paths.scratch_root().glob(f"run-{pid}-*"))


def test_run_prints_the_controller_state() -> None:
    proc = harness("run", "--", "cat", "/sys/class/nvme/nvme0/state")
    assert (proc.returncode, proc.stdout) == (0, "live\n"), proc.stderr


def test_run_exits_with_the_commands_exit_code() -> None:
    proc = harness("run", "--", "echo to-stderr >&2; exit 7")
    assert proc.returncode == 7 and "to-stderr" in proc.stderr


def test_run_reports_a_guest_panic_with_its_own_code() -> None:
    proc = harness("run", "--", "echo c > /proc/sysrq-trigger")
    assert proc.returncode == EXIT_GUEST_PANIC, proc
    assert "guest kernel panic: sysrq triggered crash" in proc.stderr


@pytest.mark.parametrize("args, needles", [
    (["--kernel", "/no/such/kernel"], ["/no/such/kernel", "does not exist"]),
    (["--kernel", "debian:4.19"], ["unknown kernel 'debian:4.19'", "debian:6.1"]),
    (["--qemu", "/no/such/qemu"], ["'/no/such/qemu' not found"]),
    (["--topology", "controllers=two"], ["controllers must be an integer", "'two'"]),
    (["--topology", "namespaces=1G:1000"], ["block size 1000"]),
])
def test_bad_input_gets_one_clear_line(args: list[str], needles: list[str]) -> None:
    assert_one_line_error(harness("run", *args, "--", "true"), *needles)


def test_qemu_that_exits_at_start_shows_its_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "qemu-broken"
    fake.write_text("#!/bin/sh\necho 'qemu-broken: cannot open /dev/imaginary' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert_one_line_error(harness("run", "--qemu", str(fake), "--", "true"),
                          "exited at start with status 1", "cannot open /dev/imaginary")


def test_corrupt_root_image_is_named(tmp_path: Path) -> None:
    real = images.prepare(progress=QUIET)
    cache = tmp_path / "cache"
    (cache / "rootfs" / real.rootfs.parent.name).mkdir(parents=True)
    (cache / "rootfs" / real.rootfs.parent.name / "rootfs.img").write_bytes(os.urandom(1 << 20))
    for sub in ("kernels", "initrd"):
        (cache / sub).symlink_to(paths.cache_dir() / sub)
    proc = harness("run", "--", "true", env={"NVMEH_CACHE": str(cache)})
    assert_one_line_error(proc, "rootfs.img is corrupt")


def test_unreachable_guest_shows_the_console_tail() -> None:
    """The guest boots without a network interface or the SSH relay port: no way in."""
    # 6.1, whose virtio_console is a module (6.12 builds it in, so it cannot be left out)
    proc = harness("run", "--kernel", "debian:6.1", "--boot-timeout", "20", "--topology",
                   "kernel_args=module_blacklist=virtio_net,virtio_console", "--", "true")
    assert_one_line_error(proc, "guest printed ready but SSH to 127.0.0.1:")
    tail = proc.stderr.split("nvmeh: error: ", 1)[1].splitlines()[1:]
    assert any("nvmeh-init: ready" in line for line in tail), proc.stderr


def _start_run(*cmd: str) -> tuple[subprocess.Popen[str], int]:
    # faulthandler: a harness that hangs is made to print every thread's stack (_finish).
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "harness", "run", "--",
                             *cmd], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        kids = _qemu_children(proc.pid)
        if kids and _guest_is_running(proc.pid):
            return proc, kids[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("the VM never started")


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Wait for the harness to end; if it does not, its threads' stacks are the failure."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = proc.communicate()
        raise AssertionError(f"the harness did not end within {timeout:g}s:\n{err[-6000:]}") \
            from None


def _guest_is_running(pid: int) -> bool:
    """The VM is up once the harness has seen its controller live (the command follows)."""
    if any("/sys/class/nvme/nvme0/state" in p.read_text(errors="replace")
           for d in _scratch_of(pid) for p in d.glob("artifacts/commands.log")):
        time.sleep(2)
        return True
    return False


def test_killed_qemu_is_reported_and_cleaned_up() -> None:
    proc, qemu = _start_run("sleep", "600")
    os.kill(qemu, signal.SIGKILL)
    err = _finish(proc)
    assert proc.returncode == EXIT_VM_DIED, err
    assert "QEMU exited unexpectedly" in err and "Traceback" not in err
    assert not _scratch_of(proc.pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_harness_stops_its_vm(sig: signal.Signals) -> None:
    proc, qemu = _start_run("sleep", "600")
    proc.send_signal(sig)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert not Path(f"/proc/{qemu}").exists(), "QEMU outlived the harness"
    assert not _scratch_of(proc.pid)


def test_sigkilled_harness_takes_qemu_with_it_and_next_run_sweeps() -> None:
    proc, qemu = _start_run("sleep", "600")
    proc.kill()
    proc.wait()
    for _ in range(50):
        if not Path(f"/proc/{qemu}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{qemu}").exists(), "QEMU outlived a SIGKILLed harness"
    assert _scratch_of(proc.pid), "expected leftovers from a SIGKILLed run"
    paths.sweep_stale_scratch()
    assert not _scratch_of(proc.pid)


def test_images_second_call_does_nothing() -> None:
    harness("images")
    proc = harness("images")
    assert proc.returncode == 0, proc.stderr
    assert "building" not in proc.stderr and "fetching" not in proc.stderr, proc.stderr
    assert "rootfs" in proc.stdout and "vmlinux" in proc.stdout


def test_shell_runs_an_ssh_session() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "shell"], cwd=ROOT, text=True,
                          capture_output=True, timeout=600,
                          input="cat /sys/class/nvme/nvme0/state\nexit 3\n")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip().endswith("live"), proc.stdout


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="not a Debian host")
def test_doctor_says_ready() -> None:
    proc = harness("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("ready")
    assert "accelerator" in proc.stdout


def test_repro_lists_and_refuses_unknown_scenarios() -> None:
    listing = harness("repro", "--list")
    assert listing.returncode == 0 and "reset-under-load" in listing.stdout
    assert_one_line_error(harness("repro", "no-such-scenario"), "unknown scenario",
                          "reset-under-load")
    assert_one_line_error(harness("repro", "reset-under-load", "--iterations", "0"),
                          "--iterations must be between 1")
    assert_one_line_error(harness("repro", "reset-under-load", "--seed", "-1"),
                          "--seed must be between 0")


def test_report_merge_joins_shards_and_names_a_bad_one(tmp_path: Path) -> None:
    from harness.report import ReportDir, RunRecord, Status

    for shard, status in (("a", Status.PASS), ("b", Status.KNOWN)):
        ReportDir(tmp_path / shard, f"shard {shard}").add(
            RunRecord(f"reset-storm[{shard}]", status, 1.0, {"kernel": "debian:6.1"}))
    proc = harness("report", "merge", str(tmp_path / "a"), str(tmp_path / "b"),
                   "--into", str(tmp_path / "all"))
    assert proc.returncode == 0, proc.stderr
    assert "2 test(s) from 2 report dir(s) (1 PASS, 1 KNOWN)" in proc.stdout
    assert (tmp_path / "all" / "index.html").read_text().count("<tr class=") == 2
    assert_one_line_error(harness("report", "merge", str(tmp_path / "nope"), "--into",
                                  str(tmp_path / "x")), "nope is not a report dir")
