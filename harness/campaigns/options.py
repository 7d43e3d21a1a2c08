"""The options ``python -m harness`` and the pytest plugin share, declared once.

Each option is an :class:`Option`: its flag, type, default, metavar and help. The two
adapters, :func:`add_to_argparse` and :func:`add_to_pytest`, hand the same declaration to
either parser, so that ``repro --kernel`` and ``pytest --kernel`` cannot drift apart. What
both sides build from the parsed values is built here too: the lab's config
(:func:`lab_config`) and the command line that re-runs a test (:func:`reproduce_command`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.build import images, kernels, qemus
from harness.machine.lab import LabConfig
from harness.recovery.soak import SEGMENT_FAULTS

if TYPE_CHECKING:  # the CLI does without importing pytest
    import pytest

PYTEST_GROUP = "nvme-harness"


def seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type): nan, inf and 0 bound nothing."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive, finite number of seconds: {text!r}")
    return value


@dataclass(frozen=True)
class Option:
    flag: str  # "--boot-timeout"; its value is found under dest, "boot_timeout"
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a flag alone (store_true), no value
    default_said: str | None = None  # the help's "(default: ...)"; None: the help is silent

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def defaulting(self, default: Any, said: str | None = None) -> Option:
        """The option as a command declares it whose default differs (repro's random seed)."""
        return dataclasses.replace(self, default=default, default_said=said)

    def arguments(self) -> dict[str, Any]:
        """The keywords of ``add_argument`` (argparse) or ``addoption`` (pytest)."""
        text = self.help + (f" (default: {self.default_said})" if self.default_said else "")
        if self.switch:
            return {"action": "store_true", "help": text}
        given = {"type": self.type, "metavar": self.metavar, "choices": self.choices}
        return {"default": self.default, "help": text,
                **{key: value for key, value in given.items() if value is not None}}


KERNEL = Option(
    "--kernel", default=images.DEFAULT_KERNEL, default_said="%(default)s",
    help="debian:VERSION (" + ", ".join(sorted(kernels.known_kernels())) + "), a kernel build "
    "tree, an install directory (boot/, lib/modules/) or BZIMAGE[,MODULES_DIR]")
NVME_SRC = Option(
    "--nvme-src", type=Path, metavar="DIR",
    help="build the NVMe host driver from DIR (drivers/nvme/host, possibly patched) against "
    "the guest kernel and load it instead of the stock one")
QEMU = Option("--qemu", default="qemu-system-x86_64", default_said="%(default)s",
              help="QEMU binary to use, or debian:SUITE (" + ", ".join(qemus.SUITES) +
              "): that suite's QEMU, fetched into the cache and run from there")
ACCEL = Option("--accel", choices=("kvm", "tcg"), help="accelerator",
               default_said="KVM when really usable, else TCG")
BOOT_TIMEOUT = Option("--boot-timeout", type=seconds, default=180.0, metavar="SECONDS",
                      default_said="%(default)s",
                      help="how long a VM may take to boot until its guest answers on SSH")
NO_SNAPSHOT = Option("--no-snapshot", switch=True,
                     help="boot every VM cold instead of starting from a saved snapshot")
SEED = Option("--seed", type=int, default=20261121, metavar="S", default_said="%(default)s",
              help="seed S of the first iteration; iteration i uses S+i")
ITERATIONS = Option("--iterations", type=int, default=1, metavar="N",
                    default_said="%(default)s",
                    help="seeded iterations of each scenario, seeds S..S+N-1")
SOAK = Option(
    "--soak", type=seconds, metavar="SECONDS",
    help="soak instead of iterations: one VM per seed, the scenario's fault again and again "
    "for SECONDS under loads that keep running, every recovery judged, every completed write "
    "verified at checkpoints and at the end")
SOAK_FAULTS = Option(
    "--soak-faults", type=int, metavar="N",
    help="soak for N faults (with --soak: at most N); a failed soak's reproduce line uses it")
SOAK_CHECKPOINT = Option(
    "--soak-checkpoint", type=int, default=SEGMENT_FAULTS, metavar="N", default_said="%(default)s",
    help="faults between a soak's checkpoints (its loads restarted, their writes verified)")
REPORT_DIR = Option(
    "--report-dir", type=Path, metavar="DIR",
    help="write a report to DIR: JUnit XML, a KCIDB-shaped summary.json, an HTML page with "
    "plots, a reproduce.sh per test; the tests' artifacts go to DIR/artifacts unless told "
    "otherwise")
# The CLI's alone (the plugin takes a test's topology from its nvme marker), declared here
# because the repro command line carries it and so needs its default.
TOPOLOGY = Option(
    "--topology", default="",
    help="e.g. controllers=2,namespaces=1G+256M:4096,io_queues=2,cpus=2,memory=1G; "
    "subsystem=on: the controllers share one NVM subsystem and its namespaces, SIZE:detached "
    "ones attachable from the guest; link_speed=2.5: the root ports' link in GT/s")

TARGET = Option(
    "--target", metavar="ssh://USER@HOST[:PORT]|FILE.toml",
    help="run on this real machine instead of a VM, logged into with your SSH keys or agent, "
    "its host key checked against your known_hosts; scenarios that need QEMU's side are "
    "skipped, what the run changes there is put back. FILE.toml: target, device, "
    "power-cmd, destroy-data-on as keys (options given here win)")
DEVICE = Option("--device", metavar="/dev/nvmeXnY",
                help="with --target: the NVMe namespace the scenarios write to (its data is "
                "lost; a device that holds any is refused)")
DESTROY_DATA_ON = Option(
    "--destroy-data-on", metavar="/dev/nvmeXnY",
    help="with --target: overwrite --device although it holds a partition table, a file "
    "system, an LVM or RAID signature or shares its controller with the root file system "
    "(never when it is mounted or swap in use); must name --device exactly")
POWER_CMD = Option(
    "--power-cmd", metavar="CMD",
    help="with --target: a command run here that power-cycles the machine (an IPMI, PDU or "
    "labgrid power cycle), for power-loss (skipped without it); --boot-timeout bounds the "
    "wait for it to answer again")
TARGET_OPTIONS = (TARGET, DEVICE, DESTROY_DATA_ON, POWER_CMD)

# The options of the lab's config, as the CLI's VM commands declare them.
LAB = (KERNEL, NVME_SRC, QEMU, ACCEL, BOOT_TIMEOUT, NO_SNAPSHOT)
# Every option the pytest plugin shares with the CLI.
SHARED = (*LAB, SEED, ITERATIONS, SOAK, REPORT_DIR, *TARGET_OPTIONS)


def add_to_argparse(parser: argparse.ArgumentParser, *options: Option) -> None:
    for option in options:
        parser.add_argument(option.flag, **option.arguments())


def add_to_pytest(parser: pytest.Parser, *options: Option) -> None:
    group = parser.getgroup(PYTEST_GROUP)
    for option in options:
        group.addoption(option.flag, **option.arguments())


def lab_config(values: Mapping[str, Any]) -> LabConfig:
    """The lab's config from the options' values by dest: ``vars()`` of the CLI's namespace,
    or the pytest plugin's values of :data:`SHARED`."""
    return LabConfig(kernel=values["kernel"], qemu=values["qemu"], accel=values["accel"],
                     boot_timeout=values["boot_timeout"], snapshots=not values["no_snapshot"],
                     nvme_src=values["nvme_src"])


def lab_values(config: LabConfig) -> dict[str, Any]:
    """The option values :func:`lab_config` makes ``config`` of (for a command line that
    re-runs something in a lab made by other means)."""
    return {"kernel": config.kernel, "qemu": config.qemu, "accel": config.accel,
            "boot_timeout": config.boot_timeout, "no_snapshot": not config.snapshots,
            "nvme_src": config.nvme_src}


def reproduce_command(head: Sequence[str], values: Mapping[str, Any],
                      options: Sequence[Option], *, always: Collection[Option] = (),
                      joined: bool = False) -> str:
    """``head`` and ``options`` as one shell command line: each option whose value in
    ``values`` (by dest; missing: the default) is not its default, or that is in ``always``;
    a switch as its flag alone, another as ``--flag value`` (``--flag=value`` if ``joined``)."""
    words = list(head)
    for option in options:
        value = values.get(option.dest, option.default)
        if option.switch:
            if value:
                words.append(option.flag)
        elif option in always or value != option.default:
            words += [f"{option.flag}={value}"] if joined else [option.flag, str(value)]
    return shlex.join(words)
