"""``kernel source`` and ``kernel build`` as a user runs them, on the smallest config.

A full test kernel takes long to build on a small machine (see the README), so this builds
tinyconfig with the harness's fragment merged: it proves the configure step (base, fragment,
olddefconfig, the unmet-options report), the build, and that a second call reuses the tree.
`tox -e kernel` then builds the real debug kernel and runs the fault-injection scenarios on it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness.test_cli import harness


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("kernel") / "linux"
    proc = harness("kernel", "source", "--kernel", "debian:6.1", str(tree))
    assert proc.returncode == 0, proc.stderr
    assert (tree / "Makefile").exists() and (tree / "drivers" / "nvme" / "host" / "pci.c").exists()
    return tree


def test_build_configures_once_then_reuses_the_tree(source_tree: Path) -> None:
    proc = harness("kernel", "build", str(source_tree), "--base", "tinyconfig", timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "configured and built" in proc.stdout, proc.stdout
    assert (source_tree / "arch" / "x86" / "boot" / "bzImage").exists()
    config = (source_tree / ".config").read_text()
    for granted in ("CONFIG_FAULT_INJECTION=y", "CONFIG_PVH=y", "CONFIG_DETECT_HUNG_TASK=y"):
        assert granted in config, granted
    # tinyconfig lacks what some fragment options depend on: they are reported, not hidden
    assert all(line.startswith("warning: CONFIG_") for line in proc.stderr.splitlines()
               if line.startswith("warning:"))

    t0 = time.monotonic()
    again = harness("kernel", "build", str(source_tree), "--base", "tinyconfig", timeout=3600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "built (config unchanged)" in again.stdout
    assert time.monotonic() - t0 < 300


def test_build_refuses_a_directory_that_is_not_a_kernel_tree(tmp_path: Path) -> None:
    proc = harness("kernel", "build", str(tmp_path))
    assert proc.returncode == 125 and "is not a Linux source tree" in proc.stderr
    assert "Traceback" not in proc.stderr
