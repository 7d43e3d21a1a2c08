"""The killer of a tagged guest command, run by bash on this host: it must end the command's
own shell and subshells even when they run builtins only (no process carries the tag in its
environment then), what the command started, and nothing else."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from harness.guest.ssh import LIBRARY, _kill_script


def _start(command: str, tag: str, run_dir: Path) -> subprocess.Popen[bytes]:
    """``command`` as the SSH server starts a tagged one: ``bash -c 'export TAG; ...'``."""
    return subprocess.Popen(["bash", "-c", f"export NVMEH_TAG={tag}; {command}"],
                            env={"PATH": "/usr/bin:/bin", "NVMEH_RUN": str(run_dir)})


def _kill(tag: str) -> None:
    subprocess.run(["bash", "-c", f"export NVMEH_TAG=killer; {_kill_script(tag)}"],
                   check=True, timeout=30)


def _ended(proc: subprocess.Popen[bytes], within: float = 5.0) -> bool:
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_a_loop_of_builtins_its_subshell_and_its_children_are_killed(tmp_path: Path) -> None:
    naps = LIBRARY.script("_nap_open; while :; do _nap 0.05; done")
    loop = _start(naps, "bg7-100", tmp_path)
    sub = _start(f"( {naps} ) | cat", "bg7-101", tmp_path)
    child = _start("sleep 300", "bg7-102", tmp_path)
    time.sleep(0.5)
    try:
        for proc, tag in ((loop, "bg7-100"), (sub, "bg7-101"), (child, "bg7-102")):
            assert proc.poll() is None
            _kill(tag)
            assert _ended(proc), tag
    finally:
        for proc in (loop, sub, child):
            proc.kill()


def test_a_command_with_a_longer_tag_of_the_same_start_lives_on(tmp_path: Path) -> None:
    other = _start(LIBRARY.script("_nap_open; while :; do _nap 0.05; done"), "bg7-1000",
                   tmp_path)
    time.sleep(0.3)
    try:
        _kill("bg7-100")
        assert not _ended(other, within=1.0)
    finally:
        other.kill()


def test_a_command_of_the_long_lived_shell_is_its_subshell_and_the_shell_lives_on(
        tmp_path: Path) -> None:
    naps = LIBRARY.script("_nap_open; while :; do _nap 0.05; done")
    # as the long-lived shell runs a command: a subshell, then the next request's wait
    shell = _start(f"( {naps} ); sleep 300; :", "agent", tmp_path)
    time.sleep(0.5)
    try:
        subprocess.run(["bash", "-c", f"export NVMEH_TAG=killer; "
                        f"{_kill_script('7-100', parent=shell.pid)}"], check=True, timeout=30)
        time.sleep(0.5)
        children = subprocess.run(["ps", "-o", "args=", "--ppid", str(shell.pid)],
                                  capture_output=True, text=True).stdout
        assert shell.poll() is None and children.split() == ["sleep", "300"]
    finally:
        subprocess.run(["pkill", "-KILL", "-P", str(shell.pid)])
        shell.kill()
