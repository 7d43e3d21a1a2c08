"""The options declared once for the CLI and the pytest plugin, and what both build of them:
the lab's config and the command line that re-runs a test. The expected command lines are
those the separate builders made before there was one."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pytest

from harness import cli, plugin
from harness.campaigns import options
from harness.campaigns.repro import lab_reproduce_command, reproduce_command
from harness.machine.lab import LabConfig
from harness.recovery.registry import Scenario

pytest_plugins = ["pytester"]

STORM = Scenario("reset-storm", "", lambda ctx: None)
PYTEST = shlex.join([sys.executable, "-m", "pytest"])


@pytest.mark.parametrize("args, expected", [
    (argparse.Namespace(kernel="debian:6.12", nvme_src=None, qemu="qemu-system-x86_64",
                        accel=None, topology="", no_snapshot=False),
     "python -m harness repro reset-storm --seed 42 --iterations 1"),
    (argparse.Namespace(kernel="debian:6.1", nvme_src=Path("/src/nvme host"), qemu="/opt/q/qemu",
                        accel="tcg", topology="cpus=2", no_snapshot=True),
     "python -m harness repro reset-storm --seed 42 --iterations 1 --kernel debian:6.1 "
     "--nvme-src '/src/nvme host' --qemu /opt/q/qemu --accel tcg --topology cpus=2 "
     "--no-snapshot"),
    (argparse.Namespace(kernel="/home/me/linux", nvme_src=None, qemu="qemu-system-x86_64",
                        accel="kvm", topology="", no_snapshot=True),
     "python -m harness repro reset-storm --seed 42 --iterations 1 --kernel /home/me/linux "
     "--accel kvm --no-snapshot"),
    (argparse.Namespace(kernel="debian:5.10"),  # options it lacks are at their defaults
     "python -m harness repro reset-storm --seed 42 --iterations 1 --kernel debian:5.10"),
], ids=["defaults", "everything", "kvm-cold", "sparse"])
def test_the_repro_command_names_the_options_not_at_their_defaults(
        args: argparse.Namespace, expected: str) -> None:
    assert reproduce_command(args, STORM, 42) == expected


@pytest.mark.parametrize("config, expected", [
    (LabConfig(), "python -m harness repro reset-storm --seed 7 --iterations 1"),
    (LabConfig(kernel="debian:6.1", qemu="/opt/q/qemu", accel="tcg", boot_timeout=30.0,
               snapshots=False, nvme_src=Path("/src/host")),
     "python -m harness repro reset-storm --seed 7 --iterations 1 --kernel debian:6.1 "
     "--nvme-src /src/host --qemu /opt/q/qemu --accel tcg --no-snapshot"),
], ids=["defaults", "everything"])
def test_a_lab_made_by_other_means_gets_the_same_repro_command(
        config: LabConfig, expected: str) -> None:
    assert lab_reproduce_command(config, STORM, 7) == expected


def _plugin_values(**given: object) -> dict[str, object]:
    return {**{o.dest: o.default for o in options.SHARED}, **given}


@pytest.mark.parametrize("values, expected", [
    (_plugin_values(), "'tests/test_x.py::test[a b]' --kernel=debian:6.12 --seed=20261121"),
    (_plugin_values(kernel="debian:6.1", seed=7, iterations=3, nvme_src=Path("/src/nvme host")),
     "'tests/test_x.py::test[a b]' --kernel=debian:6.1 --seed=7 --iterations=3 "
     "'--nvme-src=/src/nvme host'"),
    # the QEMU binary, accelerator and snapshots were never part of it
    (_plugin_values(kernel="/home/me/linux", qemu="/opt/q", accel="tcg", no_snapshot=True,
                    boot_timeout=30.0),
     "'tests/test_x.py::test[a b]' --kernel=/home/me/linux --seed=20261121"),
    (_plugin_values(iterations=0), "'tests/test_x.py::test[a b]' --kernel=debian:6.12 "
     "--seed=20261121"),
], ids=["defaults", "seeds-and-driver", "vm-options", "no-iterations"])
def test_the_pytest_command_names_kernel_seed_iterations_and_driver(
        values: dict[str, object], expected: str) -> None:
    assert plugin.reproduce_command("tests/test_x.py::test[a b]", values) == \
        f"{PYTEST} {expected}"


def test_the_cli_and_the_plugin_make_the_same_lab_config_of_the_same_options() -> None:
    argv = ["--kernel", "debian:6.1", "--qemu", "/opt/q", "--accel", "tcg", "--boot-timeout",
            "30", "--no-snapshot", "--nvme-src", "/src/host"]
    expected = LabConfig(kernel="debian:6.1", qemu="/opt/q", accel="tcg", boot_timeout=30.0,
                         snapshots=False, nvme_src=Path("/src/host"))
    args = cli.build_parser().parse_args(["run", *argv, "--", "true"])
    assert options.lab_config(vars(args)) == expected
    assert options.lab_config(_plugin_values(**{k: v for k, v in vars(args).items()
                                                if k in {o.dest for o in options.LAB}})) == \
        expected
    assert options.lab_config(vars(cli.build_parser().parse_args(["shell"]))) == LabConfig()
    assert options.lab_config(_plugin_values()) == LabConfig()
    assert options.lab_config(options.lab_values(expected)) == expected


def test_the_matrix_makes_one_lab_config_per_kernel() -> None:
    args = cli.build_parser().parse_args(["matrix", "--kernels", "debian:6.1,debian:6.12",
                                          "--accel", "kvm"])
    assert options.lab_config({**vars(args), "kernel": "debian:6.1"}) == LabConfig(
        kernel="debian:6.1", accel="kvm")


def test_repro_and_matrix_pick_a_random_seed_where_pytest_has_a_fixed_one() -> None:
    parser = cli.build_parser()
    repro = parser.parse_args(["repro", "reset-storm"])
    assert (repro.seed, repro.iterations) == (None, None)
    matrix = parser.parse_args(["matrix"])
    assert (matrix.seed, matrix.iterations) == (None, 1)
    assert (options.SEED.default, options.ITERATIONS.default) == (20261121, 1)


def test_pytest_has_every_shared_option_and_the_nvme_marker_once(
        pytester: pytest.Pytester) -> None:
    # no conftest.py and no -p: the plugin comes through its pytest11 entry point
    helped = pytester.runpytest("--help").stdout.str()
    assert "nvme-harness:" in helped
    for flag in [o.flag for o in options.SHARED] + ["--artifacts-dir"]:
        assert flag in helped
    markers = pytester.runpytest("--markers").stdout.str()
    assert markers.count("@pytest.mark.nvme(**topology)") == 1


def test_pytest_refuses_a_boot_timeout_that_bounds_nothing_in_one_line(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--boot-timeout", "inf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "positive, finite number of seconds" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()
