"""A real machine as the system under test: reached over SSH with the user's own keys and
known_hosts, its kernel log followed from the moment the harness starts, its NVMe namespace
checked before anything writes to it, and the settings a run changes put back after it.

:class:`TargetLab` is to a target what :class:`harness.machine.lab.Lab` is to VMs: it reaches
and checks the machine once per run (its errors come before any iteration) and hands out a
:class:`Target` per iteration.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from harness import paths
from harness.build import driver, kernels
from harness.build.kernels import module_name
from harness.errors import BadInput, GuestPanic, GuestUnreachable, HarnessError
from harness.guest.nvme import namespace_id
from harness.guest.ssh import Background, Guest, SSHTarget
from harness.machine.console import Console
from harness.machine.qemu import NamespaceNames
from harness.machine.qmp import Qmp
from harness.machine.system import HungTasks, Lifecycle
from harness.machine.topology import Topology
from harness.progress import Progress
from harness.reading.kmsg import Oops
from harness.target import address as address_mod
from harness.target import build as target_build
from harness.target import safety, settings, targetfile
from harness.target.address import Address

_KMSG_MARK = "nvmeh: kernel log followed from here"
_BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
POWER_CMD_TIMEOUT_S = 300
OACS_NS_MANAGEMENT = 1 << 3  # Namespace Management and Attachment commands supported


def _wwid(name: str) -> str:
    """A shell command printing the namespace's world-wide ID (or its EUI/NGUID/serial where
    the kernel shows no wwid), one line."""
    return f"cat /sys/block/{name}/wwid 2>/dev/null || echo none"
_NAMESPACE = re.compile(r"nvme\d+n\d+")


def _oacs(id_ctrl: str) -> int | None:
    """The OACS field of ``nvme id-ctrl``'s output (``oacs      : 0x12a``), or None."""
    found = re.search(r"^oacs\s*:\s*(0x[0-9a-fA-F]+|\d+)\s*$", id_ctrl, re.MULTILINE)
    return int(found.group(1), 0) if found else None


def boot_parameters(cmdline: str, module: str) -> list[str]:
    """``module``'s parameters on a kernel command line (``nvme.poll_queues=2`` ->
    ``poll_queues=2``): modprobe applies them to a module it loads, insmod does not."""
    name = module_name(module)
    return [arg.split(".", 1)[1] for arg in cmdline.split()
            if "." in arg.split("=", 1)[0] and module_name(arg.split(".", 1)[0]) == name]


class NotOnTarget(HarnessError):
    """A scenario asked for what only a VM has (QMP, a backing file, a power cut)."""


@dataclass(frozen=True)
class TargetConfig:
    address: Address
    device: str  # /dev/nvmeXnY: the only namespace written to
    destroy_data_on: str | None = None  # the device named again: its data may go
    # A command run on this host that cuts the machine's power and gives it back (an IPMI,
    # PDU or labgrid power cycle); None: scenarios that cut the power are skipped
    power_cmd: str | None = None
    boot_timeout: float = 600.0  # how long the machine may take to answer after a power cycle
    nvme_src: Path | None = None  # driver sources built for its kernel and loaded for the run
    connect_timeout: float = 30.0

    @classmethod
    def parse(cls, target: str, device: str | None, destroy_data_on: str | None,
              power_cmd: str | None = None, boot_timeout: float = 600.0,
              nvme_src: Path | None = None) -> TargetConfig:
        source = ""  # the target file the address came from
        if targetfile.is_target_file(target):
            source = target
            found = targetfile.read(Path(target))
            target = found["target"]
            device = device or found.get("device")
            destroy_data_on = destroy_data_on or found.get("destroy-data-on")
            power_cmd = found.get("power-cmd") if power_cmd is None else power_cmd
        if not device:
            raise HarnessError("--target needs --device /dev/nvmeXnY: the namespace the "
                               "scenarios may write to" + (f" (or device = ... in {source})"
                                                           if source else ""))
        if power_cmd is not None and not power_cmd.strip():
            raise HarnessError("--power-cmd is empty")
        if nvme_src is not None:
            driver.check_source(nvme_src.expanduser().resolve())
        try:
            return cls(address_mod.parse(target), address_mod.parse_device(device),
                       destroy_data_on, power_cmd, boot_timeout, nvme_src)
        except BadInput as exc:
            raise BadInput(f"{source}: {exc}" if source else str(exc)) from None


@dataclass(frozen=True)
class Facts:
    """What a run needs to know of the machine, read once."""

    release: str  # uname -r
    cpus: int  # online CPUs
    cmdline: str  # /proc/cmdline
    kernel_config: str  # /boot/config-RELEASE ("" where there is none)
    controller: str  # the namespace's controller, nvmeX
    pci_address: str  # its PCI function
    wwid: str  # the namespace's own identity: its name may go to another after a reboot
    overridden: tuple[str, ...]  # safety findings --destroy-data-on allowed
    toolchain: target_build.Toolchain | None = None  # read with --nvme-src: can it build?
    nsid: int = 0  # the namespace's ID
    oacs: int | None = None  # the controller's Optional Admin Command Support (None: unread)


def _connect(config: TargetConfig, log: object = None) -> Guest:
    a = config.address
    guest = Guest(SSHTarget(a.host, a.port, a.user), log=log)  # type: ignore[arg-type]
    guest.connect(timeout=config.connect_timeout)
    return guest


class TargetLab:
    """The run's target: reached and checked once; each iteration gets a :class:`Target`."""

    def __init__(self, config: TargetConfig, progress: Progress | None = None) -> None:
        self.config = config
        self.progress = progress or Progress()
        self.accel = f"target {config.address} {config.device}"  # what a run line names
        self._facts: Facts | None = None
        self._driver: driver.Driver | None = None
        self.driver_built = ""  # where and against what the --nvme-src driver was built

    @property
    def driver(self) -> driver.Driver | None:
        """The --nvme-src build for the machine's kernel, made (or found in the cache) once:
        on the machine against its own headers when it has them, else here in the build root
        of the Debian kernel it runs (the same release)."""
        src = self.config.nvme_src
        if src is None or self._driver is not None:
            return self._driver
        tools = self.facts.toolchain
        assert tools is not None
        if (lacking := tools.lacking()) is None:
            guest = _connect(self.config)
            try:
                self._driver = target_build.build(guest, src, tools, str(self.config.address),
                                                  self.progress)
            finally:
                guest.close()
            self.driver_built = f"on the target, against {tools.headers}"
            return self._driver
        release = self.facts.release
        specs = [s for s in sorted(kernels.known_kernels())
                 if kernels.debian_release(s) == release]
        if not specs:
            raise HarnessError(
                f"--nvme-src on {self.config.address}: it has {lacking}, and {release} is "
                "none of the Debian kernels the harness builds for here ("
                + ", ".join(f"{s}: {kernels.debian_release(s)}"
                            for s in sorted(kernels.known_kernels()))
                + f"); install its headers there (Debian: linux-headers-{release} and make)")
        self._driver = driver.build(src, kernels.get(specs[0], self.progress), self.progress)
        self.driver_built = f"on this host, for {specs[0]} (the target has {lacking})"
        return self._driver

    @property
    def facts(self) -> Facts:
        if self._facts is None:
            self._facts = self._read_facts()
        return self._facts

    def prepare(self) -> None:
        """Reach and check the machine, build the driver: their errors are not an
        iteration's."""
        self.facts  # noqa: B018
        self.driver  # noqa: B018

    def _read_facts(self) -> Facts:
        cfg = self.config
        self.progress.step(f"checking {cfg.device} on {cfg.address}")
        guest = _connect(cfg)
        try:
            probe = safety.parse_probe(guest.run(safety.probe_command(cfg.device), timeout=60,
                                                 check=True).stdout)
            overridden = safety.check(cfg.device, probe, cfg.destroy_data_on,
                                      str(cfg.address))
            name = cfg.device.removeprefix("/dev/")
            out = guest.run(
                "uname -r; nproc; cat /proc/cmdline; "
                f"basename \"$(readlink -f /sys/block/{name}/device)\"; "
                f"basename \"$(readlink -f /sys/block/{name}/device/device)\"; "
                f"{_wwid(name)}", timeout=30, check=True).stdout.splitlines()
            if len(out) != 6:
                raise HarnessError(f"could not tell {cfg.device}'s controller on {cfg.address}:"
                                   f" {out}")
            release, cpus, cmdline, controller, pci, wwid = out
            if controller.startswith("nvme-subsys"):
                raise HarnessError(f"{cfg.device} on {cfg.address} is a multipath node of "
                                   f"{controller}, whose drive reports several controllers: "
                                   "the scenarios need a controller's own namespace (boot the "
                                   "machine with nvme_core.multipath=N)")
            if not _NAMESPACE.fullmatch(name) or not re.fullmatch(r"nvme\d+", controller):
                raise HarnessError(f"{cfg.device} on {cfg.address} hangs off {controller!r}, "
                                   "not an NVMe controller of its own")
            config = guest.run(f"cat /boot/config-{release} 2>/dev/null", timeout=30).stdout
            nsid = namespace_id(guest, cfg.device)
            oacs = _oacs(guest.run(f"nvme id-ctrl /dev/{controller}", timeout=30).stdout)
            tools = None
            if cfg.nvme_src is not None:
                if used := safety.nvme_in_use(probe):
                    raise HarnessError(f"--nvme-src: {cfg.address} uses {', '.join(used)} "
                                       "(mounted or swap): its NVMe driver cannot be swapped "
                                       "under them")
                tools = target_build.parse_toolchain(release, guest.run(
                    target_build.toolchain_script(release), timeout=30, check=True).stdout)
        finally:
            guest.close()
        self.progress.done()
        for finding in overridden:
            print(f"nvmeh: --destroy-data-on {cfg.device}: overwriting despite {finding.what}",
                  file=sys.stderr)
        return Facts(release, int(cpus), cmdline, config, controller, pci, wwid,
                     tuple(f.what for f in overridden), tools, nsid, oacs)

    def unfit(self, topology: Topology, host_side: str, kernel_config: tuple[str, ...],
              power_cut: bool = False) -> str | None:
        """Why a scenario with this machine shape cannot run here, or None."""
        facts = self.facts
        if host_side:
            return f"needs the machine's host side ({host_side}), which a target does not have"
        if power_cut and self.config.power_cmd is None:
            return "cuts the power: give --power-cmd, a command that power-cycles the target"
        if len(topology.controllers) > 1 or len(topology.controllers[0].namespaces) > 1:
            return f"needs {topology} (several controllers or namespaces); a target gives one"
        if topology.subsystem and not (facts.oacs or 0) & OACS_NS_MANAGEMENT:
            return (f"detaches and attaches {self.config.device}'s namespace: {facts.controller}"
                    + (" does not manage namespaces (OACS "
                       f"{facts.oacs:#x}, bit 3 clear)" if facts.oacs is not None else
                       "'s OACS could not be read (nvme id-ctrl)"))
        if topology.cpus > facts.cpus:
            return f"needs {topology.cpus} CPUs; the target has {facts.cpus} online"
        given = facts.cmdline.split()
        if missing := [arg for arg in topology.kernel_args if arg not in given]:
            return (f"needs {' '.join(missing)} on the target's kernel command line "
                    f"(/proc/cmdline: {facts.cmdline})")
        have = set(facts.kernel_config.splitlines())
        if kernel_config and (lacking := [o for o in kernel_config if f"{o}=y" not in have]):
            return f"needs {', '.join(lacking)}, which the target's {facts.release} lacks"
        return None

    def properties(self) -> dict[str, str]:
        facts = self.facts
        return {"target": str(self.config.address), "device": self.config.device,
                "kernel": f"target {self.config.address}", "kernel_release": facts.release,
                "nvme_driver": (f"{self.driver.source} ({self.driver.hash}, built "
                                f"{self.driver_built})" if self.driver else "stock")}

    def vm(self, topology: Topology, artifacts: Path | None = None,
           name: str = "target") -> Target:
        return Target(self, artifacts or paths.make_scratch(name) / "artifacts", name, topology)


class Target(Lifecycle, HungTasks):
    """The machine for one iteration: a context manager, like a VM, that logs in, follows the
    kernel log, saves the settings, and on leaving puts them back and says what it could not."""

    console_name = "kernel log (last lines read)"
    has_host_side = False
    kernel_said = "the target's kernel"

    def __init__(self, lab: TargetLab, artifacts: Path, name: str,
                 topology: Topology) -> None:
        self.lab, self.name = lab, name
        self.config = lab.config
        self.facts = lab.facts
        self.artifacts = artifacts
        self.artifacts.mkdir(parents=True, exist_ok=True)
        # the shape the scenario asked for, which the machine was found to have (unfit)
        self.topology = topology
        self.tainted = False
        self.boot_notes: list[str] = []
        self.console: Console | None = None
        self._guest: Guest | None = None
        self._kmsg: Background | None = None
        self._commands_log = open(self.artifacts / "commands.log", "a")
        self._hangs_reported = 0
        self._oopses_taken = 0
        self._earlier_oopses: list[Oops] = []  # of boots before a power cycle, not taken yet
        self._boot_id = ""
        self._saved: settings.Snapshot | None = None
        self.not_restored: list[str] = []

    @property
    def _namespace(self) -> str:
        return self.config.device.removeprefix("/dev/")

    def _settings_script(self) -> str:
        return settings.read_script(self._namespace, self.facts.controller,
                                    self.facts.pci_address, self.facts.nsid)

    def start(self) -> None:
        guest = _connect(self.config, self._commands_log)
        self._begin_life(guest)
        self._saved = settings.parse(guest.run(self._settings_script(), timeout=30,
                                               check=True).stdout)
        attachment = self._saved.attachment
        if self.topology.subsystem and (attachment is None or not attachment.attached):
            raise HarnessError(f"{self.config.device}'s namespace is not seen attached to "
                               f"{self.facts.controller} (nvme list-ns): a detach could not be "
                               "undone")
        if self.lab.driver is not None:
            self._load_driver(self.lab.driver)
        state = guest.run(f"cat /sys/class/nvme/{self.facts.controller}/state",
                          timeout=30).stdout.strip()
        if state != "live":
            raise HarnessError(f"{self.facts.controller} on {self.config.address} is {state!r}, "
                               "not live: the scenario would start from a broken controller")

    def _load_driver(self, built: driver.Driver) -> None:
        """The stock NVMe modules out, the built ones in (put back by the settings'
        restore), checked by srcversion, the controller and namespace back under their
        names."""
        guest = self.guest
        where = f"{settings.RUN_DIR}/driver"
        guest.run(f"mkdir -p {where}", timeout=30, check=True)
        for module in built.modules:
            guest.put(module, f"{where}/{module.name}")
        loads = " && ".join([*(f"modprobe {d}" for d in built.depends),
                             *(" ".join([f"insmod {where}/{m.name}", *map(shlex.quote,
                                         boot_parameters(self.facts.cmdline, m.name))])
                               for m in built.modules)])
        ctrl, name = self.facts.controller, self._namespace
        result = guest.run(
            f"modprobe -r {' '.join(settings.DRIVER_MODULES)} && {loads} && "
            f"until [ -e /sys/block/{name} ] && [ \"$(cat /sys/class/nvme/{ctrl}/state)\" = "
            "live ]; do sleep 0.1; done", timeout=120)
        if not result.ok:
            raise HarnessError(f"loading the driver built from {built.source} on "
                               f"{self.config.address} failed: "
                               f"{(result.stderr.strip().splitlines() or ['?'])[-1]}",
                               result.stderr)
        loaded = guest.run("; ".join(f"cat /sys/module/{module_name(m.name)}/srcversion"
                                     for m in built.modules), timeout=30).stdout.split()
        wanted = [built.srcversions[module_name(m.name)] for m in built.modules]
        if loaded != wanted:
            raise HarnessError(f"{self.config.address} is not running the driver built from "
                               f"{built.source}: srcversion {loaded}, built {wanted}")
        self._check_identity(guest)

    def _check_identity(self, guest: Guest, device: str = "") -> None:
        """The device's name (or ``device``, its name after a detach and attach) belongs to
        the namespace checked at the start."""
        device = device or self.config.device
        # one round trip at every login: whether it is a block device, then its wwid
        kind, _, wwid = guest.run(
            f"{{ test -b {shlex.quote(device)} && echo block || echo other; }}; "
            f"{_wwid(device.removeprefix('/dev/'))}", timeout=30,
            check=True).stdout.strip().partition("\n")
        if kind != "block":
            raise HarnessError(f"{device} on {self.config.address} is not a block device (a "
                               "file left in /dev where the namespace was?): refusing to write "
                               "to it")
        if wwid != self.facts.wwid:
            raise HarnessError(f"{device} on {self.config.address} is now another "
                               f"namespace (wwid {wwid or 'none'}, was {self.facts.wwid}): "
                               "refusing to write to it")

    def check_namespace(self, device: str) -> None:
        """``device``, the namespace back after a detach and attach, is still the one the
        run was given, under its name (the settings, the next iteration and the user know it
        by that)."""
        self._check_identity(self.guest, device)
        if device != self.config.device:
            raise HarnessError(f"the namespace of {self.config.device} on {self.config.address} "
                               f"came back as {device} after a detach and attach: the run "
                               "stops, as what follows knows it by its old name")

    def _begin_life(self, guest: Guest, from_boot: bool = False) -> None:
        """Take the session of a boot of the machine: its device checked to be the same
        namespace, its kernel log followed (``from_boot``: all of it, a new boot's)."""
        self._guest = guest
        self._boot_id = guest.run(_BOOT_ID, timeout=30, check=True).stdout.strip()
        self._check_identity(guest)
        self._follow_kernel_log(from_boot)
        guest.interrupt = self.hang_report

    def _follow_kernel_log(self, from_boot: bool = False) -> None:
        """The kernel log from a line of our own on (what came before is not this run's),
        into a console the oops and hang detectors read as they read a VM's."""
        assert self._guest is not None
        console = Console(None, self.artifacts / "console.log")  # appended to by each boot
        seen = threading.Event()

        def sink(data: bytes) -> None:
            if data:
                seen.set()
                console.feed(data)
            else:
                console.end()

        tag = f"{_KMSG_MARK} ({time.time_ns()})"
        # dmesg -w prints the whole buffer first: lines until our mark are dropped, unless
        # the buffer is a boot of this run's (after a power cycle)
        skip = "" if from_boot else (
            f"{{ while IFS= read -r l; do case $l in *'{tag}'*) printf '%s\\n' \"$l\"; break;; "
            "esac; done; exec cat; }")
        self._kmsg = self._guest.background(
            f"echo '{tag}' > /dev/kmsg && dmesg -w" + (f" | {skip}" if skip else ""), sink=sink)
        self.console = console
        if not seen.wait(30):
            raise HarnessError(f"the kernel log of {self.config.address} could not be followed "
                               "(dmesg -w printed nothing in 30 s)")

    def stop(self) -> None:
        """Put back what the run changed (logging in again if the connection broke), then
        close. What could not be put back is printed and kept in the artifacts."""
        try:
            if self._saved is not None:
                self._restore(self._saved)
        finally:
            self._end_life()
            self._commands_log.close()

    def _restore(self, saved: settings.Snapshot) -> None:
        guest = self._guest
        keep = self._kmsg.tag if self._kmsg is not None else ""  # the kernel log to the end
        if guest is not None:
            guest.interrupt = None  # a hung task reported again must not stop the clean-up
        try:
            if guest is None or not guest.connected:
                guest = self._guest = _connect(self.config, self._commands_log)
                keep = ""  # the follower of the lost session's log goes too
            guest.run(settings.kill_leftovers_script(keep), timeout=60)
            script, pci = self._settings_script(), self.facts.pci_address
            said: dict[str, str] = {}  # fix -> its last complaint
            for _ in range(3):  # a reload, rescan or bind brings files back: fixed next pass
                now = settings.parse(guest.run(script, timeout=60, check=True).stdout)
                if not (found := settings.changes(saved, now, pci)):
                    break
                for _what, fix in found:  # each on its own: one failing stops no other
                    result = guest.run(fix, timeout=120)  # an unload waits for the driver
                    if not result.ok:
                        said[fix] = (result.stderr.strip().splitlines() or
                                     [f"exit {result.exit_code}"])[-1]
                time.sleep(0.5)
            now = settings.parse(guest.run(script, timeout=60, check=True).stdout)
            self.not_restored = [what + (f" ({said[fix]})" if fix in said else "")
                                 for what, fix in settings.changes(saved, now, pci)]
        except HarnessError as exc:
            self.not_restored = [f"nothing checked or put back: {exc}"]
        if self.not_restored:
            text = "\n".join(self.not_restored)
            (self.artifacts / "not-restored.txt").write_text(text + "\n")
            print(f"nvmeh: {self.config.address} is not as it was found:\n  "
                  + text.replace("\n", "\n  "), file=sys.stderr)

    # --- the system-under-test protocol ------------------------------------------------------

    @property
    def guest(self) -> Guest:
        if self._guest is None:
            raise GuestUnreachable(f"not connected to {self.config.address}")
        return self._guest

    @property
    def connected(self) -> bool:
        return self._guest is not None and self._guest.connected

    @property
    def alive(self) -> bool:
        return True  # no process to watch: a machine that stops answering is its failure

    def controller_names(self) -> list[str]:
        return [self.facts.controller]

    def block_devices(self) -> list[str]:
        return [self.config.device]

    def watched_namespace(self, controller: str) -> str:
        return self._namespace

    def silence_note(self) -> str:
        return "with no panic in its kernel log as far as it was read"

    def check_alive(self) -> None:
        console = self.console
        if console is not None and console.panic:
            raise GuestPanic(f"target {console.panic.title}", console.tail(40))

    def explain_lost_connection(self, grace: float = 5.0) -> None:
        console = self.console
        if console is not None:
            console.wait_for(lambda: console.panic is not None, grace)
        self.check_alive()

    def take_oopses(self) -> list[Oops]:
        """Reports not taken yet (those of an earlier boot first)."""
        found = list(self.console.oopses) if self.console else []
        new = self._earlier_oopses + found[self._oopses_taken:]
        self._earlier_oopses = []
        self._oopses_taken = len(found)
        return new

    def cpu_seconds(self) -> float | None:
        return None  # the machine's CPU is its own: no host steals from it

    def _lacks(self, what: str) -> NoReturn:
        raise NotOnTarget(f"a target has no {what}: the scenario should have been skipped")

    @property
    def qmp(self) -> Qmp:
        self._lacks("QMP")

    def namespace(self, ctrl: int = 0, nsid: int = 1) -> NamespaceNames:
        self._lacks("namespace backing file")

    def power_cycle(self) -> None:
        """Cut the power with the user's command and wait for the machine to answer from a new
        boot (its boot_id changed: a login before the power went counts for nothing), with the
        same namespace under the device's name."""
        command = self.config.power_cmd
        if command is None:
            self._lacks("power command (--power-cmd)")
        self._earlier_oopses += self.take_oopses()
        self._end_life()
        try:
            proc = subprocess.run(command, shell=True, capture_output=True, text=True,
                                  timeout=POWER_CMD_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"--power-cmd still running after {POWER_CMD_TIMEOUT_S}s: "
                               f"{command}") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            raise HarnessError(f"--power-cmd exited {proc.returncode}: {last}", proc.stderr)
        deadline = time.monotonic() + self.config.boot_timeout
        while True:
            try:
                guest = _connect(self.config, self._commands_log)
                booted = guest.run(_BOOT_ID, timeout=10, check=True).stdout.strip()
                if booted != self._boot_id:
                    break
                guest.close()  # the power has not gone yet
            except HarnessError:
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.config.address} did not answer from a new boot "
                                   f"within {self.config.boot_timeout:g}s of --power-cmd")
            time.sleep(1.0)
        self._begin_life(guest, from_boot=True)
        if self.lab.driver is not None:  # the new boot loaded the stock one
            self._load_driver(self.lab.driver)

    def _end_life(self) -> None:
        """Stop following the kernel log and close the session: the machine goes down."""
        if self._kmsg is not None and self.connected:
            with contextlib.suppress(HarnessError):
                self._kmsg.kill()
        self._kmsg = None
        if self.console is not None:
            self.console.close()
        if self._guest is not None:
            self._guest.close()
            self._guest = None
        self._hangs_reported = self._oopses_taken = 0

