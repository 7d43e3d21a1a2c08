"""What a run may change on a real machine, read before it starts and put back after it,
whatever happened: kernel tunables (hung-task detector, printk level), the requeue
tracepoint, the NVMe drivers' parameters, fault injection, the PCI function's command bits and
its driver binding, the namespace's attachment to its controller, the controller's queue
layout (a reset under changed queue parameters rebuilds it). What could not be put back is
said, never passed over.

Pure logic over what the machine printed; :class:`harness.target.machine.Target` runs the
scripts."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.guest.nvme import (
    SYS_NVME,
    attachment_command,
    controller_device_script,
    parse_list_ns,
)

# Files a run may write ({ns}: the namespace's name, {ctrl}: its controller's). Only writable
# regular files are read; only those found changed are written back.
WATCHED = (
    "/proc/sys/kernel/hung_task_timeout_secs", "/proc/sys/kernel/hung_task_warnings",
    "/proc/sys/kernel/printk",
    "/sys/kernel/tracing/tracing_on", "/sys/kernel/tracing/events/block/block_rq_requeue/enable",
    "/sys/module/nvme_core/parameters/*", "/sys/module/nvme/parameters/*",
    "/sys/kernel/debug/{ns}/fault_inject/*", "/sys/kernel/debug/{ctrl}/fault_inject/*",
    "/sys/kernel/debug/fail_io_timeout/*", "/sys/block/{ns}/io-timeout-fail",
    "/sys/block/{ns}/queue/io_timeout",
)
RUN_DIR = "/run/nvmeh"  # the loads' working files (harness.guest.fio)
TRACEFS = "/sys/kernel/tracing"  # mounted by the requeue trace where it was not
PCI_BITS = 0x6  # Memory Space and Bus Master Enable: what the faults turn off
DRIVER_MODULES = ("nvme", "nvme_core")  # swapped for a --nvme-src build, by srcversion
FAULT_MODULES = ("aer_inject",)  # loaded by faults: unloaded after, where they were not loaded
CPUS = "/sys/devices/system/cpu"  # CPUs the faults take offline


@dataclass(frozen=True)
class Attachment:
    """Whether the controller has the namespace attached (a scenario detaches it)."""

    ctrl: str  # nvmeX
    nsid: int
    attached: bool


@dataclass(frozen=True)
class Queues:
    """The controller's queue layout: its namespaces' blk-mq hardware queues, and its
    queues with an interrupt (``nvme0q1``; a poll queue has none)."""

    ctrl: str  # nvmeX
    contexts: int
    with_interrupts: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.contexts} blk-mq hardware queues, interrupts on "
                f"{' '.join(self.with_interrupts) or 'none'}")


@dataclass
class Snapshot:
    """The settings as read: file -> value, and the PCI function's state."""

    files: dict[str, str] = field(default_factory=dict)
    command: int | None = None  # the PCI command register; None: the function is gone
    driver: str = ""  # the bound driver's name; "" unbound
    run_dir: bool = False  # RUN_DIR existed
    tracefs: bool = False  # TRACEFS was mounted
    modules: dict[str, str] = field(default_factory=dict)  # loaded module -> its srcversion
    offline: frozenset[int] = frozenset()  # CPUs offline
    fault_modules: frozenset[str] = frozenset()  # of FAULT_MODULES, those loaded
    attachment: Attachment | None = None  # None: nvme-cli could not tell (or not asked)
    queues: Queues | None = None  # None: the controller or its namespaces are gone


def read_script(ns: str, ctrl: str, pci: str, nsid: int = 0) -> str:
    """Prints one line per setting: ``F<TAB>path<TAB>value``, ``C<TAB>command``,
    ``D<TAB>driver``, ``R<TAB>1`` when RUN_DIR exists, ``T<TAB>1`` when TRACEFS is mounted,
    ``M<TAB>module<TAB>srcversion`` for each of DRIVER_MODULES loaded as a module,
    ``O<TAB>cpu list`` of the CPUs offline, ``L<TAB>module`` for each of FAULT_MODULES
    loaded, ``A<TAB>ctrl<TAB>nsid<TAB>words`` with the namespaces ``nvme list-ns`` says
    ``ctrl`` has attached (when ``nsid`` is given, ``ctrl`` is still the controller at
    ``pci`` and nvme-cli can tell), ``Q<TAB>ctrl<TAB>contexts<TAB>queues`` with the
    hardware queues of ``ctrl``'s namespaces and its queues that have an interrupt (when
    ``ctrl`` is still the one at ``pci`` and has a namespace)."""
    globs = " ".join(g.format(ns=ns, ctrl=ctrl) for g in WATCHED)
    dev = shlex.quote(f"/sys/bus/pci/devices/{pci}")
    return (f"for f in {globs}; do [ -f \"$f\" ] && [ -w \"$f\" ] || continue; "
            "v=$(tr '\\n\\t' '  ' < \"$f\" 2>/dev/null) || continue; "
            "printf 'F\\t%s\\t%s\\n' \"$f\" \"$v\"; done; "
            f"[ -e {dev} ] && printf 'C\\t%s\\n' \"$(setpci -s {shlex.quote(pci)} COMMAND)\"; "
            f"[ -e {dev}/driver ] && "
            f"printf 'D\\t%s\\n' \"$(basename \"$(readlink {dev}/driver)\")\"; "
            f"[ -d {RUN_DIR} ] && printf 'R\\t1\\n'; "
            f"[ -d {TRACEFS}/events ] && printf 'T\\t1\\n'; "
            f"for m in {' '.join(DRIVER_MODULES)}; do [ -e /sys/module/$m/srcversion ] && "
            "printf 'M\\t%s\\t%s\\n' $m \"$(cat /sys/module/$m/srcversion)\"; done; "
            f"printf 'O\\t%s\\n' \"$(cat {CPUS}/offline 2>/dev/null)\"; "
            f"for m in {' '.join(FAULT_MODULES)}; do [ -d /sys/module/$m ] && "
            "printf 'L\\t%s\\n' $m; done; "
            # a namespace's hardware queues are the controller's (one tag set for all); under
            # multipath the block device has none, its path (nvme0c0n1) has them
            f"if {_is_at(ctrl, pci)} && set -- {SYS_NVME}/{ctrl}/nvme*/mq && [ -d \"$1\" ]; "
            f"then printf 'Q\\t{ctrl}\\t%s\\t%s\\n' \"$(ls \"$1\" | wc -l)\" "
            f"\"$(grep -owE '{ctrl}q[0-9]+' /proc/interrupts | sort -V | tr '\\n' ' ')\"; fi; "
            + (f"if {_is_at(ctrl, pci)} && l=$(nvme list-ns /dev/{ctrl} 2>/dev/null); then "
               f"printf 'A\\t{ctrl}\\t{nsid}\\t%s\\n' \"$(echo $l)\"; fi; " if nsid else "")
            + "true")


def _is_at(ctrl: str, pci: str) -> str:
    """A test: controller ``ctrl`` is still the one at PCI address ``pci`` (a reload or
    rescan may give its name to another drive's)."""
    return f"[ \"$(cat {SYS_NVME}/{ctrl}/address 2>/dev/null)\" = {shlex.quote(pci)} ]"


def _until_live(ctrl: str, tenths: int) -> str:
    """Waits until ``ctrl`` is live, for ``tenths`` tenths of a second at most."""
    return (f"for i in $(seq {tenths}); do [ \"$(cat {SYS_NVME}/{ctrl}/state)\" = live ] && "
            "break; sleep 0.1; done")


def kill_leftovers_script(keep: str = "") -> str:
    """Kill what the harness left running in the background (loads, samplers, what they
    started), but the command tagged ``keep``; builtins only. A background command's shell
    exported its tag (``export NVMEH_TAG=bg...;`` starts its command line), the processes it
    started carry it in their environment. A lost connection leaves fio writing on."""
    keep = keep or "-"
    return ("for p in /proc/[0-9]*; do h=; while IFS= read -r -d '' v; do case $v in "
            f"NVMEH_TAG={keep}) h=k; break;; NVMEH_TAG=bg*) h=1; break;; "
            "NVMEH_TAG=*) h=k; break;; esac; done 2>/dev/null < $p/environ; "
            "[ -z \"$h\" ] && while IFS= read -r -d '' v; do case $v in "
            f"'export NVMEH_TAG={keep};'*) h=k; break;; 'export NVMEH_TAG=bg'*) h=1; break;; "
            "esac; done 2>/dev/null < $p/cmdline; "
            "[ \"$h\" = 1 ] && kill -KILL ${p#/proc/} 2>/dev/null; done; true")


def parse(text: str) -> Snapshot:
    snap = Snapshot()
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "F":
            path, _, value = rest.partition("\t")
            snap.files[path] = value.strip()
        elif kind == "C":
            try:
                snap.command = int(rest.strip(), 16)
            except ValueError:
                raise HarnessError(f"unreadable PCI command register: {rest!r}") from None
        elif kind == "D":
            snap.driver = rest.strip()
        elif kind == "R":
            snap.run_dir = True
        elif kind == "T":
            snap.tracefs = True
        elif kind == "M":
            name, _, version = rest.partition("\t")
            snap.modules[name] = version.strip()
        elif kind == "O":
            snap.offline = cpu_list(rest)
        elif kind == "L":
            snap.fault_modules |= {rest.strip()}
        elif kind == "A":
            fields = rest.split("\t", 2)
            if len(fields) != 3 or not fields[1].isdigit():
                raise HarnessError(f"unreadable namespace attachment: {rest!r}")
            ctrl, nsid, listed = fields[0], int(fields[1]), fields[2]
            snap.attachment = Attachment(ctrl, nsid, nsid in parse_list_ns(listed))
        elif kind == "Q":
            fields = rest.split("\t")
            if len(fields) != 3 or not fields[1].strip().isdigit():
                raise HarnessError(f"unreadable queue layout: {rest!r}")
            snap.queues = Queues(fields[0], int(fields[1]), tuple(fields[2].split()))
        elif line.strip():
            raise HarnessError(f"unexpected line reading the target's settings: {line!r}")
    return snap


def cpu_list(text: str) -> frozenset[int]:
    """The CPUs of a kernel CPU list ("1-3,6"; "" for none)."""
    cpus: set[int] = set()
    for part in filter(None, text.strip().split(",")):
        first, _, last = part.partition("-")
        try:
            cpus.update(range(int(first), int(last or first) + 1))
        except ValueError:
            raise HarnessError(f"unreadable CPU list: {text!r}") from None
    return frozenset(cpus)


def changes(before: Snapshot, now: Snapshot, pci: str) -> list[tuple[str, str]]:
    """What is not as it was found, each as (what, the command that puts it back), in the
    order to put them back: the driver's modules, CPUs, the function (a rescan or a bind
    brings the driver's files back), its command bits, the namespace's attachment, files, the
    queue layout (a reset under the parameters put back), the rest."""
    found: list[tuple[str, str]] = []
    if before.modules and now.modules != before.modules:
        # the stock modules back (a --nvme-src build was loaded): they probe the controller
        # again, so the function's state is looked at after
        found.append((f"NVMe modules {_versions(now.modules)}, were {_versions(before.modules)}",
                      f"{{ modprobe -r {' '.join(DRIVER_MODULES)} || ! [ -d /sys/module/nvme ]; "
                      "} && modprobe nvme && "
                      "for i in $(seq 100); do [ -e /sys/bus/pci/devices/"
                      f"{pci}/driver ] && break; sleep 0.1; done"))
        # The rest is fixed after it (a reload makes the parameter files anew) and looked at
        # again in the next pass; if the driver cannot be unloaded, the rest is put back still.
    if went := sorted(now.offline - before.offline):
        found.append((f"CPU {', '.join(map(str, went))} offline, "
                      f"{'was' if len(went) == 1 else 'were'} online",
                      "; ".join(f"echo 1 > {CPUS}/cpu{c}/online" for c in went)))
    if before.command is not None and now.command is None:
        found.append(("the NVMe controller's PCI function is gone",
                      "echo 1 > /sys/bus/pci/rescan"))
    elif before.driver != now.driver:
        unbind = f"echo {pci} > /sys/bus/pci/devices/{pci}/driver/unbind; " if now.driver else ""
        bind = f"echo {pci} > /sys/bus/pci/drivers/{before.driver}/bind" if before.driver else ""
        found.append((f"PCI function bound to {now.driver or 'no driver'}, was "
                      f"{before.driver or 'none'}", unbind + bind or "true"))
    if before.command is not None and now.command is not None and \
            (before.command ^ now.command) & PCI_BITS:
        found.append((f"PCI command register {now.command:#06x}, was {before.command:#06x}",
                      f"setpci -s {pci} COMMAND={before.command & PCI_BITS:x}:{PCI_BITS:x}"))
    was, att = before.attachment, now.attachment
    if was is not None and was.attached and (att is None or not att.attached):
        ctrl, nsid = was.ctrl, was.nsid
        device = f"[ -n \"$({controller_device_script(ctrl, nsid)})\" ]"
        # Never another drive's controller under the name. Attached once the controller is
        # live again (a reload or reset may be under way) and the kernel has dropped the
        # namespace's old block device (its scan after the detach runs late), so that the
        # device looked for after is the new one.
        found.append((f"namespace {nsid} detached from {ctrl}, was attached" if att else
                      f"whether namespace {nsid} is attached to {ctrl} could not be read "
                      "(nvme list-ns), was attached",
                      f"{{ {_is_at(ctrl, pci)} || {{ echo '{ctrl} is not the controller at "
                      f"{pci} any more' >&2; false; }}; }} && {_until_live(ctrl, 100)} && "
                      f"for i in $(seq 100); do {device} || break; sleep 0.1; done && "
                      f"{attachment_command('attach', ctrl, nsid)} && "
                      f"nvme ns-rescan /dev/{ctrl} && "
                      f"for i in $(seq 100); do {device} && break; sleep 0.1; done"))
    for path, value in before.files.items():
        if now.files.get(path) != value:
            found.append((f"{path} is {now.files.get(path, '(gone)')!r}, was {value!r}",
                          f"printf '%s' {shlex.quote(value)} > {shlex.quote(path)}"))
    # The queues are set up anew by a reload, a rescan or a bind: looked at in the next pass
    was_q, now_q = before.queues, now.queues
    if was_q is not None and now_q is not None and was_q != now_q and \
            now.modules == before.modules and now.driver == before.driver:
        ctrl = now_q.ctrl
        found.append((f"{ctrl}'s queues: {now_q}, were {was_q}",
                      f"{_is_at(ctrl, pci)} && echo 1 > {SYS_NVME}/{ctrl}/reset_controller && "
                      + _until_live(ctrl, 300)))
    if not before.run_dir and now.run_dir:
        found.append((f"{RUN_DIR} left behind", f"rm -rf {RUN_DIR}"))
    if not before.tracefs and now.tracefs:
        found.append((f"tracefs left mounted on {TRACEFS}", f"umount {TRACEFS}"))
    for module in sorted(now.fault_modules - before.fault_modules):
        found.append((f"module {module} left loaded", f"rmmod {module}"))
    return found


def _versions(modules: dict[str, str]) -> str:
    return ", ".join(f"{m} {v}" for m, v in sorted(modules.items())) or "none loaded"
