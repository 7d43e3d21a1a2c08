"""The guest's shell library (guests/lib), run by bash on this host against a fake sysfs.

The functions read their paths under $NVMEH_SYSFS and $NVMEH_RUN (the real /sys and
/run/nvmeh by default), and programs the host lacks (setpci, nvme, fio) are stand-ins on
PATH. The Python side runs through a :class:`~harness.guest.ssh.Guest` whose commands run here, so
what it sends, parses and logs is what a VM gets.
"""

from __future__ import annotations

import ast
import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import paths
from harness.errors import CommandTimeout, HarnessError
from harness.faults import FaultRefused
from harness.faults.guest import SilencedDuringReset, stamped
from harness.guest import guestcpu
from harness.guest.fio import VerifyLoad
from harness.guest.nvme import (
    IO_RESUMED,
    PCI_COMMAND_MASTER,
    PCI_COMMAND_MEMORY,
    Controller,
    NotRecovered,
    PciFunction,
    RequeueTrace,
    ResetRefused,
    controller_device_script,
    parse_list_ns,
    parse_samples,
)
from harness.guest.ssh import (
    LIBRARY,
    Guest,
    SSHTarget,
    _Agent,
    _TimedOut,
    call_line,
    parse_library,
)
from harness.recovery.scenarios.namespaces import LoopResult

ADDRESS = "0000:00:04.0"
DROPBEAR_MAX_CMD_LEN = 9000  # dropbear refuses a longer command (sysoptions.h MAX_CMD_LEN)


class LocalGuest(Guest):
    """A Guest whose commands run in bash on this host (each in its own process group, killed
    whole at its timeout, as the guest's commands are), in ``env``."""

    def __init__(self, env: dict[str, str], log: io.StringIO | None = None) -> None:
        super().__init__(SSHTarget("localhost", 22, "root", None), log)  # type: ignore[arg-type]
        self.env = env
        self.sent: list[str] = []

    def _free_agent(self) -> None:
        return None

    def _run_channel(self, command: str, tag: str, stdin: str | None, deadline: float,
                     shown: str) -> tuple[int, str, str]:
        self.sent.append(command)
        proc = subprocess.Popen(["bash", "-c", command], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise _TimedOut(out.encode(), err.encode()) from None
        return proc.returncode, out, err


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    """A fake /sys with controller nvme0 (state "live", a reset_controller that takes the
    write) and PCI function ADDRESS bound to nvme."""
    ctrl = tmp_path / "sys/class/nvme/nvme0"
    ctrl.mkdir(parents=True)
    (ctrl / "state").write_text("live\n")
    (ctrl / "reset_controller").write_text("")
    dev = tmp_path / f"sys/bus/pci/devices/{ADDRESS}"
    (dev / "driver").mkdir(parents=True)
    (tmp_path / "sys/bus/pci/drivers/nvme").mkdir(parents=True)
    (tmp_path / "sys/bus/pci/drivers/nvme/bind").write_text("")
    (tmp_path / "sys/bus/pci/rescan").write_text("")
    return tmp_path / "sys"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """Stand-ins for the guest's programs: setpci logs its arguments and reads the command
    register as 0507."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _program(bin_dir, "setpci", f'echo "$*" >> {tmp_path}/setpci.log\n'
             '[ "$3" = COMMAND ] && echo 0507\ntrue')
    return bin_dir


@pytest.fixture
def env(tmp_path: Path, sysfs: Path, bin_dir: Path) -> dict[str, str]:
    run = tmp_path / "run"
    run.mkdir()
    return {**os.environ, "NVMEH_SYSFS": str(sysfs), "NVMEH_RUN": str(run),
            "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.fixture
def guest(env: dict[str, str]) -> LocalGuest:
    return LocalGuest(env)


def _program(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _write(path: Path, text: str) -> None:
    """Replace ``path``'s content at once, as sysfs shows a new state (never half-written)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _later(*steps: tuple[float, Path, str]) -> threading.Thread:
    """Write each (delay, file, text) in turn, in the background."""
    def run() -> None:
        for delay, path, text in steps:
            time.sleep(delay)
            _write(path, text)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _bash(script: str, env: dict[str, str],
          timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``script`` with the definitions it needs, run by bash here."""
    return subprocess.run(["bash", "-c", LIBRARY.script(script)], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture
def sampler(env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Library functions that run until killed, each started by the test: killed at its end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.returncode is None:
            _stop(proc)


def _sample(started: list[subprocess.Popen[str]], env: dict[str, str], function: str,
            *args: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["bash", "-c", LIBRARY.script(call_line(function, *args))],
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    started.append(proc)
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate()[0]


# --- the library itself --------------------------------------------------------------------

def _library_calls() -> set[str]:
    """Names of the library functions the harness calls: the first argument of call,
    call_background and call_line, and the function a CommandLoop fault runs."""
    found = set()
    for path in (paths.PROJECT / "harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            at = {"call": 0, "call_background": 0, "call_line": 0, "CommandLoop": 2}.get(name)
            if at is not None and len(node.args) > at and \
                    isinstance(node.args[at], ast.Constant) and \
                    isinstance(node.args[at].value, str):
                found.add(node.args[at].value)
    return found


def test_every_function_the_harness_calls_is_in_the_library():
    called = _library_calls()
    assert {"_nvme_wait_state", "_pci_restore", "_run_stamped", "_loop_commands"} <= called
    assert sorted(called - LIBRARY.functions.keys()) == []


def test_every_library_function_is_called():
    """From Python, or by another library function."""
    called = _library_calls()
    used = set(LIBRARY.needed(" ".join(called)))
    assert sorted(LIBRARY.functions.keys() - used) == []


def test_each_file_declares_bash_and_holds_only_functions():
    files = sorted(paths.GUESTS_LIB.glob("*.sh"))
    assert files
    for path in files:
        assert path.read_text().startswith("# shellcheck shell=bash\n"), path.name
        assert parse_library(path.read_text(), path.name)


def test_top_level_code_is_refused():
    with pytest.raises(HarnessError, match=r"x\.sh:2: outside a function"):
        parse_library("# a comment\nFOO=1\n_f() {\n}\n", "x.sh")
    with pytest.raises(HarnessError, match="_f has no closing"):
        parse_library("_f() {\n  true\n", "x.sh")


def test_a_call_carries_what_it_needs_and_fits_dropbear():
    script = LIBRARY.script(call_line("_run_stamped", call_line(
        "_pci_silence_during_reset", "nvme0", ADDRESS, "4", "resetting")))
    assert "_nvme_wait_state() {" in script and "_nap_open() {" in script
    assert "_cpu_sample_ticks" not in script
    assert not any(line.lstrip().startswith("#") for line in script.splitlines())
    for name in LIBRARY.functions:
        # the largest call's arguments (a command loop's) take about 2000 bytes
        assert len(LIBRARY.script(name).encode()) < DROPBEAR_MAX_CMD_LEN - 2500, name


def test_an_unknown_function_is_refused_before_anything_is_sent():
    with pytest.raises(HarnessError, match="no function _nvme_frobnicate"):
        call_line("_nvme_frobnicate", "nvme0")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    files = [str(p) for p in sorted(paths.GUESTS_LIB.glob("*.sh"))]
    proc = subprocess.run(["shellcheck", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_the_log_shows_the_call_not_the_library(env: dict[str, str]):
    log = io.StringIO()
    guest = LocalGuest(env, log)
    Controller(guest, "nvme0").wait_state("live", timeout=10)
    assert "_nvme_wait_state() {" in guest.sent[0]
    assert "$ _nvme_wait_state nvme0 live\n" in log.getvalue()
    assert "() {" not in log.getvalue()


def test_the_long_lived_shell_defines_a_function_once_and_runs_each_command_clean(
        env: dict[str, str]):
    """The agent's loop, run by bash here: the first call brings the definitions, the next
    sends the call alone, and no command sees the loop's variables or another's changes."""
    shell = subprocess.Popen(["bash", "-c", _Agent.LOOP], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert shell.stdin is not None and shell.stdout is not None
    shell.stdout.readline()  # its PID
    needs = LIBRARY.needed("_blk_print_writes")

    def run(definitions: str, command: str, n: int) -> tuple[str, int]:
        marker = b"__m%d__" % n
        assert shell.stdin is not None and shell.stdout is not None
        shell.stdin.write(_Agent.request(definitions, command, f"t{n}", marker))
        shell.stdin.flush()
        out = b""
        while marker not in out:
            out += shell.stdout.readline()
        text, _, status = out.decode().partition(marker.decode())
        return text, int(status)

    try:
        first = run(LIBRARY.definitions(needs), "_blk_print_writes /dev/none; x=1", 1)
        assert first == ("\n", 0)  # not a block device: an empty line
        assert run("", "_blk_print_writes /dev/none; echo \"[$x$_nv_c$_nv_d]\"", 2) == \
            ("\n[]\n", 0)
        assert run("", "false", 3) == ("", 1)
    finally:
        shell.kill()
        shell.wait()


# --- nvme.sh: waiting for a state ------------------------------------------------------------

def test_wait_state_reports_each_transition(guest: LocalGuest, sysfs: Path):
    state = sysfs / "class/nvme/nvme0/state"
    _write(state, "resetting\n")
    # the first change a second later: bash takes over 0.2 s to start on a busy host, and
    # would never see the state it started in
    _later((1.0, state, "connecting\n"), (0.2, state, "live\n"))
    samples = Controller(guest, "nvme0").wait_state("live", timeout=10)
    assert [s.state for s in samples] == ["resetting", "connecting", "live"]
    assert samples[0].at < samples[1].at < samples[2].at


def test_wait_state_past_its_timeout_is_not_recovered(guest: LocalGuest, sysfs: Path):
    _write(sysfs / "class/nvme/nvme0/state", "resetting\n")
    with pytest.raises(NotRecovered, match=r"did not reach 'live' within 0\.5s"):
        Controller(guest, "nvme0").wait_state("live", timeout=0.5)


def test_wait_not_reports_the_state_left_for(guest: LocalGuest, sysfs: Path):
    state = sysfs / "class/nvme/nvme0/state"
    _later((0.2, state, "resetting\n"))
    samples = Controller(guest, "nvme0").wait_not("live", timeout=10)
    assert [s.state for s in samples] == ["resetting"]
    with pytest.raises(CommandTimeout):
        Controller(guest, "nvme0").wait_not("resetting", timeout=0.5)


def test_settled_states_are_globs_and_a_missing_controller_is_gone(guest: LocalGuest,
                                                                   sysfs: Path):
    state = sysfs / "class/nvme/nvme0/state"
    ctrl = Controller(guest, "nvme0")
    _write(state, "deleting (no IO)\n")
    assert ctrl.wait_settled("live|gone|dead|deleting*", within=5) == (True, "deleting (no IO)")
    state.unlink()
    assert ctrl.wait_settled("live|gone|dead", within=5) == (True, "gone")


def test_settling_ends_at_its_deadline_with_the_state_it_was_left_in(guest: LocalGuest,
                                                                     sysfs: Path):
    _write(sysfs / "class/nvme/nvme0/state", "resetting\n")
    t0 = time.monotonic()
    assert Controller(guest, "nvme0").wait_settled("live|gone", within=1) == (False, "resetting")
    assert 1.0 <= time.monotonic() - t0 < 5


def test_a_missing_state_file_says_nothing_on_stderr(env: dict[str, str], sysfs: Path):
    """A controller gone is a state, not an error: its evidence must not fill with them."""
    (sysfs / "class/nvme/nvme0/state").unlink()
    out = _bash("_nvme_wait_state nvme0 gone 1 state 0.01", env)
    assert out.stdout.split() == ["gone"] and out.stderr == ""


def test_waiting_ends_with_the_process_it_watches(env: dict[str, str]):
    out = _bash("sleep 0.3 & _nvme_wait_state nvme0 connecting 0 state 0 $!; echo $?", env)
    assert out.stdout.split() == ["live", "2"]


def test_reset_and_wait_times_the_reset_on_the_guest(guest: LocalGuest, sysfs: Path):
    fault, live = Controller(guest, "nvme0").reset_and_wait(bound=10)
    assert (sysfs / "class/nvme/nvme0/reset_controller").read_text() == "1\n"
    assert 0 <= live - fault < 5


def test_a_refused_reset_is_reported(guest: LocalGuest, sysfs: Path):
    reset = sysfs / "class/nvme/nvme0/reset_controller"
    reset.unlink()
    reset.mkdir()  # the write fails, as the driver's EBUSY does
    with pytest.raises(ResetRefused, match="Is a directory"):
        Controller(guest, "nvme0").reset_and_wait(bound=10)


def test_concurrent_resets_print_each_answer(env: dict[str, str], sysfs: Path):
    out = _bash(call_line("_nvme_reset_concurrently", "nvme0", 3), env).stdout.split()
    assert out == ["0", "0", "0"]
    reset = sysfs / "class/nvme/nvme0/reset_controller"
    reset.unlink()
    reset.mkdir()
    assert _bash(call_line("_nvme_reset_concurrently", "nvme0", 2), env).stdout.split() == \
        ["1", "1"]


# --- nvme.sh: sampling, the admin loop -------------------------------------------------------

def test_the_sampler_records_changes_and_io_resuming(env: dict[str, str], sysfs: Path,
                                                     sampler: list[subprocess.Popen[str]]):
    state = sysfs / "class/nvme/nvme0/state"
    stat = sysfs / "block/nvme0n1/stat"
    stat.parent.mkdir(parents=True)
    _write(stat, "10 0 80 5 100 0 800 9 0 0 0\n")
    proc = _sample(sampler, env, "_nvme_sample_state", "nvme0")
    _later((1.0, state, "resetting\n"), (0.3, state, "live\n"),  # after its start
           (0.3, stat, "10 0 80 5 101 0 808 9 0 0 0\n")).join()
    time.sleep(0.3)
    samples = parse_samples(_stop(proc))
    assert [s.state for s in samples] == ["live", "resetting", "live", IO_RESUMED]


def test_the_admin_loop_counts_commands_and_reports_a_hung_one(env: dict[str, str],
                                                              bin_dir: Path):
    _program(bin_dir, "nvme", "true")
    out = _bash(call_line("_nvme_loop_admin", "nvme0", 1, 5), env)
    assert out.returncode == 0 and out.stdout.startswith("admin commands: ")
    assert int(out.stdout.split()[-1]) % 3 == 0
    _program(bin_dir, "nvme", '[ "$1" = smart-log ] && sleep 10\ntrue')
    out = _bash(call_line("_nvme_loop_admin", "nvme0", 5, 1), env)
    assert (out.returncode, out.stdout) == (1, "HUNG nvme smart-log /dev/nvme0\n")


# --- pci.sh ----------------------------------------------------------------------------------

def test_the_command_register_is_read_between_two_states(guest: LocalGuest, sysfs: Path):
    pci = PciFunction(guest, ADDRESS)
    state = f"{sysfs}/class/nvme/nvme0/state"
    assert pci.command_while(state) == 0x0507
    assert pci.command_while(state, "resetting") is None


def test_restoring_sets_the_bits_and_binds_a_function_without_driver(
        guest: LocalGuest, sysfs: Path, tmp_path: Path):
    pci = PciFunction(guest, ADDRESS)
    stamped(guest, pci.restore_command(PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY), 10)
    assert (tmp_path / "setpci.log").read_text() == f"-s {ADDRESS} COMMAND=6:6\n"
    assert (sysfs / "bus/pci/rescan").read_text() == ""  # a driver holds it: no rescan
    (sysfs / f"bus/pci/devices/{ADDRESS}/driver").rmdir()
    stamped(guest, pci.restore_command(PCI_COMMAND_MASTER), 10)
    assert (sysfs / "bus/pci/rescan").read_text() == "1\n"
    assert (sysfs / "bus/pci/drivers/nvme/bind").read_text() == f"{ADDRESS}\n"


@pytest.mark.parametrize("phase, states", [("resetting", ["resetting"]),
                                            ("connecting", ["resetting", "connecting"])])
def test_a_device_is_silenced_in_the_phase_of_a_reset(guest: LocalGuest, sysfs: Path,
                                                      tmp_path: Path, phase: str,
                                                      states: list[str]):
    # The reset is a write to a fifo: it lasts until the "driver" opens the other end.
    reset = sysfs / "class/nvme/nvme0/reset_controller"
    reset.unlink()
    os.mkfifo(reset)
    state = sysfs / "class/nvme/nvme0/state"
    _later(*[(0.3, state, f"{s}\n") for s in states])
    driver = threading.Timer(3.0, lambda: reset.open().close())
    driver.start()
    ctrl, pci = Controller(guest, "nvme0"), PciFunction(guest, ADDRESS)
    fault = SilencedDuringReset(ctrl, pci, PCI_COMMAND_MASTER, phase, timeout=10)
    try:
        fault.apply()
    finally:
        driver.join()
    assert fault.seen == phase
    assert fault.applied_at < fault.silenced_at
    assert (tmp_path / "setpci.log").read_text() == f"-s {ADDRESS} COMMAND=0:4\n"


def test_a_reset_that_ends_first_is_silenced_at_once(guest: LocalGuest, tmp_path: Path):
    ctrl, pci = Controller(guest, "nvme0"), PciFunction(guest, ADDRESS)
    fault = SilencedDuringReset(ctrl, pci, PCI_COMMAND_MEMORY, "connecting", timeout=10)
    fault.apply()
    assert fault.seen == "live"
    assert (tmp_path / "setpci.log").read_text() == f"-s {ADDRESS} COMMAND=0:2\n"


# --- common.sh, loop.sh, trace.sh, cpu.sh ----------------------------------------------------

def test_stamped_commands_give_their_start_and_fail_on_their_status(guest: LocalGuest):
    before = time.time()
    at, out = stamped(guest, "echo hi  # a comment ends the command", 10)
    assert out == "hi\n" and before <= at <= time.time()
    with pytest.raises(FaultRefused, match="exit code 3: no"):
        stamped(guest, "echo no >&2; (exit 3)", 10)


def test_the_command_loop_kills_what_hangs(env: dict[str, str]):
    out = _bash(call_line("_loop_commands", 1, "true", "0", "sleep 5", "0", "true", "0"), env)
    assert (out.returncode, LoopResult.parse(out.stdout)) == (1, LoopResult(0, 0, "sleep 5"))


def test_the_requeue_trace_is_started_read_and_stopped(guest: LocalGuest, sysfs: Path):
    tracing = sysfs / "kernel/tracing"
    event = tracing / "events/block/block_rq_requeue/enable"
    event.parent.mkdir(parents=True)
    for f in (tracing / "trace", tracing / "tracing_on", event):
        f.write_text("0\n")
    trace = RequeueTrace(guest)
    assert trace.start()
    assert (event.read_text(), (tracing / "tracing_on").read_text()) == ("1\n", "1\n")
    (tracing / "trace").write_text(
        "# tracer: nop\n"
        "  kworker/u2:4-158 [000] .....  21.566050: block_rq_requeue: 259,0 WS () "
        "611704 + 8 [0]\n")
    assert len(trace.read(stop=True)) == 1
    assert event.read_text() == "0\n"


def test_the_cpu_sampler_reads_proc_stat_every_second(env: dict[str, str],
                                                      sampler: list[subprocess.Popen[str]]):
    proc = _sample(sampler, env, "_cpu_sample_ticks")
    time.sleep(1.5)
    busy = guestcpu.parse(_stop(proc))
    assert len(busy.total) == 2
    assert 0.9 < busy.total[1][0] - busy.total[0][0] < 1.5


# --- fio.sh ----------------------------------------------------------------------------------

def _stats(sysfs: Path, **writes: int) -> None:
    for name, n in writes.items():
        (sysfs / "class/block" / name).mkdir(parents=True, exist_ok=True)
        _write(sysfs / "class/block" / name / "stat", f"1 0 8 1 {n} 0 8 1 0 1 2\n")


def test_completed_writes_of_a_multipath_node_add_its_paths(env: dict[str, str], sysfs: Path):
    _stats(sysfs, nvme0n1=0, nvme0c0n1=5, nvme0c1n1=7, nvme0c1n2=100)
    assert _bash(call_line("_blk_print_writes", "/dev/nvme0n1"), env).stdout == "12\n"
    assert _bash(call_line("_blk_print_writes", "/tmp/a-file"), env).stdout == "\n"


def test_the_load_is_seen_flowing(env: dict[str, str], sysfs: Path, tmp_path: Path):
    _stats(sysfs, nvme0n1=12)
    (tmp_path / "fio.pid").write_text("999999999\n")  # no /proc/PID/io: counts as sending
    assert _bash(call_line("_fio_wait_writes", tmp_path, "/dev/nvme0n1", 11), env).returncode == 0
    t0 = time.monotonic()
    assert _bash(call_line("_fio_wait_writes", tmp_path, "/dev/nvme0n1", 12), env).returncode == 1
    assert time.monotonic() - t0 >= 2


def test_more_writes_are_awaited_until_the_deadline(env: dict[str, str], sysfs: Path):
    _stats(sysfs, nvme0n1=12)
    t0 = time.monotonic()
    assert _bash(call_line("_blk_wait_more_writes", "/dev/nvme0n1", 1), env).returncode == 1
    assert time.monotonic() - t0 >= 1
    assert _bash(call_line("_blk_wait_more_writes", "/tmp/a-file", 1), env).returncode == 0
    waiting = subprocess.Popen(["bash", "-c", LIBRARY.script(call_line(
                                   "_blk_wait_more_writes", "/dev/nvme0n1", 10))],
                               env=env, text=True, start_new_session=True)
    time.sleep(2.0)  # after it counted the writes there were, even on a busy host
    _stats(sysfs, nvme0n1=13)
    assert waiting.wait(timeout=20) == 0


def test_the_load_stamps_fio_messages(guest: LocalGuest, bin_dir: Path, tmp_path: Path):
    _program(bin_dir, "fio", 'echo "$FILENAME: first" >&2\necho "$*" > args\n'
             'echo "fio: io_u error" >&2')
    load = VerifyLoad(guest, "/dev/nvme9n1", seed=1, runtime=1)
    workdir = tmp_path / "load"
    workdir.mkdir()
    load.workdir = str(workdir)
    out = _bash(call_line("_fio_run_load", workdir, "sync /dev/nvme9n1", *load._env()),
                guest.env)
    assert out.returncode == 0
    assert (workdir / "fio.pid").read_text().strip().isdigit()
    assert f"--trigger-file={workdir}/trigger --trigger=sync /dev/nvme9n1 verify-load.fio" in \
        (workdir / "args").read_text()
    messages = guest.call("_fio_read_messages", workdir).stdout
    lines = messages.splitlines()
    assert lines[-1] == "@@end"
    assert [line.split(" ", 1)[1] for line in lines[:-1]] == ["/dev/nvme9n1: first",
                                                              "fio: io_u error"]


def test_verify_states_and_logs_are_listed(guest: LocalGuest, tmp_path: Path):
    (tmp_path / "load.0.verify.state").write_bytes(b"\x00\x01")
    (tmp_path / "load_iops.1.log").write_text("1000, 5, 1, 4096, 0\n")
    (tmp_path / "load_iops.2.log").write_text("1000, 7, 1, 4096, 0\n")
    assert guest.call("_fio_dump_states", tmp_path).stdout == "\nAAE="
    logs = guest.call("_fio_dump_logs", tmp_path, "iops").stdout.split("@@job")
    assert logs == ["", "\n1000, 5, 1, 4096, 0\n", "\n1000, 7, 1, 4096, 0\n"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not guest.call("_fio_dump_states", empty).ok  # no state saved: a failure


def test_blocks_are_read_at_their_offsets(guest: LocalGuest, tmp_path: Path):
    device = tmp_path / "disk"
    device.write_bytes(b"a" * 4096 + b"b" * 4096 + b"c" * 4096)
    probe = subprocess.run(["dd", f"if={device}", "bs=4096", "count=1", "iflag=direct",
                            "of=/dev/null"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the temporary directory's file system does not take O_DIRECT")
    load = VerifyLoad(guest, str(device), seed=1, runtime=1)
    assert load.read_blocks({8192, 0}) == {0: b"a" * 4096, 8192: b"c" * 4096}
    assert load.read_blocks(set()) == {}


# --- suspend to idle -----------------------------------------------------------------------

@pytest.fixture
def power(sysfs: Path, bin_dir: Path, tmp_path: Path) -> Path:
    """A fake /sys/power offering freeze, a PS/2 keyboard, printk's console_suspend; dmesg a
    stand-in that logs its arguments (the real one would change this host's console level)."""
    (sysfs / "power/suspend_stats").mkdir(parents=True)
    (sysfs / "power/state").write_text("freeze mem disk\n")
    (sysfs / "power/pm_debug_messages").write_text("0\n")
    for stat, value in (("success", "3"), ("fail", "0"), ("last_failed_dev", ""),
                        ("last_failed_errno", "0"), ("last_failed_step", "")):
        (sysfs / "power/suspend_stats" / stat).write_text(value + "\n")
    kbd = sysfs / "devices/platform/i8042/serio0/power"
    kbd.mkdir(parents=True)
    (kbd / "wakeup").write_text("disabled\n")
    (sysfs / "module/printk/parameters").mkdir(parents=True)
    (sysfs / "module/printk/parameters/console_suspend").write_text("Y\n")
    _program(bin_dir, "dmesg", f'echo "$*" >> {tmp_path}/dmesg.log')
    return sysfs


def test_a_suspend_arms_the_keyboard_and_the_console_and_its_end_puts_them_back(
        guest: LocalGuest, power: Path, tmp_path: Path):
    reset = power / "class/nvme/nvme0/reset_controller"
    assert guest.call("_suspend_start", reset, timeout=10).exit_code == 0
    assert (power / "devices/platform/i8042/serio0/power/wakeup").read_text() == "enabled\n"
    assert (power / "module/printk/parameters/console_suspend").read_text() == "N\n"
    assert (power / "power/pm_debug_messages").read_text() == "1\n"
    out = guest.call("_suspend_end", timeout=20).stdout  # waits for the detached suspend
    assert (power / "power/state").read_text() == "freeze\n"
    assert reset.read_text() == "1\n"  # the reset raced with it
    assert out.splitlines() == ["rc=0", "success=3", "fail=0", "last_failed_dev=",
                                "last_failed_errno=0", "last_failed_step="]
    assert (power / "devices/platform/i8042/serio0/power/wakeup").read_text() == "disabled\n"
    assert (power / "module/printk/parameters/console_suspend").read_text() == "Y\n"
    assert (power / "power/pm_debug_messages").read_text() == "0\n"
    level = Path("/proc/sys/kernel/printk").read_text().split()[0]
    assert (tmp_path / "dmesg.log").read_text().split("\n")[:2] == ["-n 8", f"-n {level}"]


def test_a_kernel_without_suspend_to_idle_is_refused_in_one_line(guest: LocalGuest,
                                                                 power: Path):
    (power / "power/state").write_text("mem disk\n")
    res = guest.call("_suspend_start", timeout=10)
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [
        f"the kernel offers no suspend to idle ({power}/power/state: mem disk)"]
    assert (power / "devices/platform/i8042/serio0/power/wakeup").read_text() == "disabled\n"


def test_a_guest_without_a_keyboard_to_wake_it_is_refused(guest: LocalGuest, power: Path):
    shutil.rmtree(power / "devices/platform/i8042")
    res = guest.call("_suspend_start", timeout=10)
    assert res.exit_code == 1 and "no PS/2 keyboard to wake the guest" in res.stderr
    assert (power / "power/state").read_text() == "freeze mem disk\n"


def test_list_ns_is_read_in_its_lines_or_words() -> None:
    assert parse_list_ns("[   0]:0x1\n[   1]:0x3\n") == [1, 3]
    assert parse_list_ns("[   0]:0x1 [1000]:0x3e9") == [1, 1001]
    assert parse_list_ns("NVMe status: INVALID_FIELD: The command was invalid") == []


def test_a_namespace_is_found_through_its_own_controller_only(tmp_path: Path) -> None:
    """Its controller's own disk, or its subsystem's node; never the same ID on another
    drive."""
    nvme, subsys = tmp_path / "class/nvme", tmp_path / "class/nvme-subsystem/nvme-subsys2"
    for disk, nsid in ((nvme / "nvme0/nvme0n1", 1), (nvme / "nvme1/nvme1n1", 1),
                       (nvme / "nvme1/nvme1n2", 2), (nvme / "nvme2/nvme2c2n1", 1),
                       (subsys / "nvme2n1", 1)):
        disk.mkdir(parents=True)
        (disk / "nsid").write_text(f"{nsid}\n")
    (subsys / "nvme2").symlink_to(nvme / "nvme2")

    def found(ctrl: str, nsid: int) -> str:
        script = controller_device_script(ctrl, nsid).replace("/sys/class", f"{tmp_path}/class")
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert found("nvme1", 1) == "nvme1n1"
    assert found("nvme1", 2) == "nvme1n2"
    assert found("nvme0", 2) == ""
    assert found("nvme2", 1) == "nvme2n1"  # the node, not the path
