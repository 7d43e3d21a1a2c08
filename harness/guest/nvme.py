"""Guest-side NVMe and PCI operations through sysfs: what a kernel engineer types by hand.

Only a :class:`~harness.guest.ssh.Guest` is needed, so these work on a physical machine too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import CommandTimeout, HarnessError
from harness.guest.ssh import Background, Guest, call_line
from harness.reading.kmsg import Requeue, parse_requeues

SYS_NVME = "/sys/class/nvme"


class NotRecovered(HarnessError):
    """A controller did not reach the expected state in time."""

    exit_code = 1


class ResetRefused(HarnessError):
    """The driver refused a reset (the write to ``reset_controller`` failed): its state."""

    exit_code = 1


@dataclass(frozen=True)
class StateSample:
    at: float  # the guest's clock (epoch seconds) when the state was read
    state: str


class Controller:
    """One NVMe controller as the guest's driver sees it (``/sys/class/nvme/nvmeX``)."""

    def __init__(self, guest: Guest, name: str = "nvme0") -> None:
        self.guest = guest
        self.name = name
        self.sysfs = f"{SYS_NVME}/{name}"

    def __repr__(self) -> str:
        return f"Controller({self.name})"

    def _attr(self, attr: str) -> str:
        return self.guest.run(f"cat {self.sysfs}/{attr}", timeout=30, check=True).stdout.strip()

    @property
    def state(self) -> str:
        return self._attr("state")

    @property
    def pci_address(self) -> str:
        out = self.guest.run(f"basename $(readlink -f {self.sysfs}/device)", timeout=30,
                             check=True)
        return out.stdout.strip()

    @property
    def port_address(self) -> str:
        """The PCI address of the port the controller's function sits below."""
        out = self.guest.run(f"basename $(dirname $(readlink -f {self.sysfs}/device))",
                             timeout=30, check=True)
        return out.stdout.strip()

    def own_queues(self, disk: str) -> dict[int, str]:
        """CPU -> the interrupt name (``nvme0q2``) of the I/O queue that serves that CPU
        alone for ``disk``'s default requests (blk-mq maps hardware context N to queue N+1);
        CPUs that share their queue are left out."""
        out = self.guest.run(f"grep -H . /sys/block/{disk}/mq/*/cpu_list", timeout=30,
                             check=True).stdout
        contexts = []
        for line in out.splitlines():
            path, _, cpus = line.partition(":")
            contexts.append((int(path.split("/")[-2]), cpus.strip()))
        owned: dict[int, str] = {}
        for hctx, cpus in sorted(contexts):  # the default type's contexts come first
            if cpus.isdigit():
                owned.setdefault(int(cpus), f"{self.name}q{hctx + 1}")
        return owned

    def queue_types(self, disk: str) -> tuple[int, int, int] | None:
        """How many of ``disk``'s hardware queues are default, read and poll ones, as blk-mq's
        debugfs says; None where debugfs is not there."""
        res = self.guest.run(f"cat /sys/kernel/debug/block/{disk}/hctx*/type", timeout=30)
        if not res.ok or not res.stdout.strip():
            return None
        types = res.stdout.split()
        return types.count("default"), types.count("read"), types.count("poll")

    def in_flight(self, disk: str, queue: str) -> int:
        """Requests ``disk`` has in flight on ``queue`` (e.g. ``nvme0q2``), as blk-mq's
        debugfs lists them (hardware context N is queue N+1); -1 where debugfs is not there."""
        hctx = int(queue.rsplit("q", 1)[1]) - 1
        res = self.guest.run(f"cat /sys/kernel/debug/block/{disk}/hctx{hctx}/busy", timeout=30)
        return len(res.stdout.splitlines()) if res.ok else -1

    def interrupts(self, queue: str) -> int:
        """Interrupts of ``queue`` (e.g. ``nvme0q2``) so far, over every CPU: the
        completions it delivered."""
        out = self.guest.run(f"grep -E ' {queue}$' /proc/interrupts || true", timeout=30).stdout
        fields = out.split()
        return sum(int(f) for f in fields[1:] if f.isdigit())

    def namespaces(self) -> list[str]:
        """Block device names of this controller's namespaces, e.g. ``nvme0n1``."""
        out = self.guest.run(f"ls {self.sysfs} | grep -E '^nvme[0-9]+(c[0-9]+)?n[0-9]+$' || true",
                             timeout=30)
        return sorted(out.stdout.split())

    @property
    def cntlid(self) -> int:
        return int(self._attr("cntlid"))

    def attach_command(self, nsid: int, controllers: str = "") -> str:
        """The nvme-cli command attaching namespace ``nsid`` to ``controllers`` (comma-separated
        controller IDs; default: this controller's own)."""
        return attachment_command("attach", self.name, nsid, controllers)

    def detach_command(self, nsid: int, controllers: str = "") -> str:
        return attachment_command("detach", self.name, nsid, controllers)

    def block_device(self, nsid: int) -> str | None:
        """The block device (``/dev/nvme0n1``) through which this controller's namespace
        ``nsid`` is used, or None (see :func:`controller_device_script`)."""
        out = self.guest.run(controller_device_script(self.name, nsid), timeout=30).stdout
        return f"/dev/{out.split()[0]}" if out.split() else None

    def attached_nsids(self) -> list[int]:
        """The namespaces the controller says are attached to it (Identify, active list)."""
        return parse_list_ns(self.guest.run(f"nvme list-ns /dev/{self.name}", timeout=30,
                                            check=True).stdout)

    def reset(self) -> None:
        """``echo 1 > reset_controller``: returns when the driver has finished the reset."""
        self.guest.run(f"echo 1 > {self.sysfs}/reset_controller", timeout=120, check=True)

    def reset_and_wait(self, bound: float) -> tuple[float, float]:
        """Reset through sysfs and wait for ``live``; (fault, live) on the guest's clock.

        Timed inside the guest, in one command, so SSH latency is not part of the figure.
        Raises :class:`NotRecovered` if the controller is not live within ``bound`` seconds.
        """
        try:
            res = self.guest.call("_nvme_reset_wait_live", self.name, timeout=bound)
        except CommandTimeout as exc:
            raise NotRecovered(f"{self.name} not live within {bound:g}s of a reset (state: "
                               f"{self._last_state()})", exc.detail) from None
        out = res.stdout.split()
        if len(out) != 3 or out[2] != "0":
            said = res.stderr.strip().splitlines()
            raise ResetRefused(f"{self.name} refused a reset: writing {self.sysfs}/"
                               f"reset_controller failed: "
                               f"{said[-1] if said else 'exit status ' + out[-1]}")
        return float(out[0]), float(out[1])

    def wait_state(self, want: str = "live", timeout: float = 60.0) -> list[StateSample]:
        """Poll ``state`` until it is ``want``; returns the transitions seen on the way.

        Polling runs in one guest shell loop of builtins, every 10 ms, without an SSH round
        trip per sample.
        """
        try:
            res = self.guest.call("_nvme_wait_state", self.name, want, timeout=timeout)
        except CommandTimeout as exc:
            raise NotRecovered(f"{self.name} did not reach {want!r} within {timeout:g}s "
                               f"(last state: {self._last_state()})", exc.detail) from None
        return parse_samples(res.stdout)

    def wait_not(self, state: str, timeout: float) -> list[StateSample]:
        """Wait until the controller leaves ``state`` (or is gone); the transitions seen.
        Raises :class:`CommandTimeout` if it is still in ``state`` after ``timeout``."""
        return parse_samples(self.guest.call("_nvme_wait_state", self.name, f"!{state}", 0,
                                             "last", timeout=timeout).stdout)

    def wait_settled(self, states: str, within: float,
                     sample: float = 0.1) -> tuple[bool, str]:
        """Wait until the state matches ``states`` (globs joined by "|": "live|gone|dead";
        without a state file the controller is "gone"), sampling every ``sample`` seconds in
        the guest, for at most ``within`` (whole) seconds; (whether it did, the state then)."""
        res = self.guest.call("_nvme_wait_state", self.name, states, int(within), "state",
                              sample, timeout=within + 30)
        return res.ok, res.stdout.strip()

    def _last_state(self) -> str:
        try:
            return self.state
        except HarnessError as exc:
            return f"unreadable: {exc}"


class RequeueTrace:
    """The block layer's requeue tracepoint, switched on in the guest.

    A reset that finds commands in flight cancels and requeues them: the driver's requeue
    path, where resets race with I/O. The kernel log does not tell which resets did (the
    driver's own line is debug-only and rate-limited); the tracepoint records every request.
    Needs tracefs (CONFIG_FTRACE, as Debian's kernels have); a kernel without it is reported,
    not refused. Starting clears the trace buffer.
    """

    def __init__(self, guest: Guest) -> None:
        self.guest = guest

    def start(self) -> bool:
        return self.guest.call("_trace_start_requeues", timeout=30).ok

    def read(self, stop: bool = False) -> list[Requeue]:
        """Every requeue since :meth:`start` (the buffer holds thousands); ``stop``: switch
        the tracepoint off again (a physical machine is left as it was found)."""
        args = ["stop"] if stop else []
        return parse_requeues(self.guest.call("_trace_read_requeues", *args, timeout=10).stdout)


def attachment_command(verb: str, ctrl: str, nsid: int, controllers: str = "") -> str:
    """``nvme attach-ns`` or ``detach-ns`` (``verb``) through controller ``ctrl`` of namespace
    ``nsid`` to or from ``controllers`` (comma-separated IDs; default: ``ctrl``'s own)."""
    ctrls = controllers or f"$(cat {SYS_NVME}/{ctrl}/cntlid)"
    return f"nvme {verb}-ns /dev/{ctrl} --namespace-id={nsid} --controllers={ctrls}"


def parse_list_ns(text: str) -> list[int]:
    """The namespace IDs ``nvme list-ns`` printed (``[   0]:0x1`` each), in order; its lines
    or their words alike."""
    return sorted(int(word.rsplit(":", 1)[1], 0) for word in text.split()
                  if re.fullmatch(r"\[?\d*\]?:(0x[0-9a-fA-F]+|\d+)", word))


def ns_device_script(nsid: int) -> str:
    """A guest shell snippet printing the block device names (``nvme0n2``) of namespace
    ``nsid`` on any controller or subsystem (path devices excluded)."""
    return ("for d in /sys/block/nvme*n*; do case ${d##*/} in *c*) continue;; esac; "
            f'[ "$(cat $d/nsid 2>/dev/null)" = {nsid} ] && echo ${{d##*/}}; done; true')


def controller_device_script(ctrl: str, nsid: int) -> str:
    """A shell snippet printing the block device name (``nvme0n1``) through which controller
    ``ctrl``'s namespace ``nsid`` is used: its own disk, or its subsystem's multipath head's
    (which may be there through another controller of the subsystem alone). Never another
    drive's namespace of the same ID: a machine has other drives."""
    return (f"{{ for d in {SYS_NVME}/{ctrl}/nvme*n*; do case ${{d##*/}} in *c*) ;; "
            "*) echo $d;; esac; done; for s in /sys/class/nvme-subsystem/*; do "
            f"[ -e $s/{ctrl} ] && for d in $s/nvme*n*; do echo $d; done; done; }} | "
            f'while read -r d; do [ "$(cat $d/nsid 2>/dev/null)" = {nsid} ] && '
            "echo ${d##*/}; done; true")


def namespace_id(guest: Guest, device: str) -> int:
    """The namespace ID of block device ``device`` (``/dev/nvme0n1``)."""
    name = device.removeprefix("/dev/")
    return int(guest.run(f"cat /sys/block/{name}/nsid", timeout=30, check=True).stdout)


def block_device_of(guest: Guest, nsid: int) -> str | None:
    """The block device (``/dev/nvme0n2``) a VM's guest shows for namespace ``nsid`` of its
    subsystem, or None.

    Looked up by the namespace's ID: Linux numbers a subsystem's disks after whichever of its
    controllers identified itself first, and its namespaces in the order it finds them, so
    the name is known only in the guest, and may change after a detach and attach. (On a
    machine with other drives, :meth:`Controller.block_device`.)"""
    out = guest.run(ns_device_script(nsid), timeout=30).stdout.split()
    return f"/dev/{out[0]}" if out else None


def parse_samples(text: str) -> list[StateSample]:
    """The "EPOCH STATE" lines the guest-side samplers print."""
    samples = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            samples.append(StateSample(float(parts[0]), parts[1]))
    return samples


def controllers(guest: Guest) -> list[Controller]:
    out = guest.run(f"ls {SYS_NVME} 2>/dev/null || true", timeout=30)
    return [Controller(guest, n) for n in sorted(out.stdout.split())]


def held_by_driver(guest: Guest) -> int | None:
    """Requests the driver holds, dispatched and not completed, over every NVMe disk's
    hardware queues, as blk-mq's debugfs lists them; None where debugfs is not there."""
    res = guest.run("[ -d /sys/kernel/debug/block ] && "
                    "cat /sys/kernel/debug/block/nvme*/hctx*/busy", timeout=10)
    return len(res.stdout.splitlines()) if res.ok else None


# Reads and writes the NVMe disks completed, from /proc/diskstats (fields 4 and 8; no partition)
NVME_COMPLETIONS = "awk '$3 ~ /^nvme[0-9]+(c[0-9]+)?n[0-9]+$/ {s += $4 + $8} END {print s + 0}'"


def nvme_io_stalled(guest: Guest, over: float = 1.0) -> bool:
    """No NVMe disk completes a read or a write for ``over`` seconds (``/proc/diskstats``):
    requests the driver holds then are stuck, not a load's requests in flight."""
    count = f"{NVME_COMPLETIONS} /proc/diskstats"
    out = guest.run(f"{count}; sleep {over:g}; {count}", timeout=over + 10, check=True).stdout
    before, after = out.split()
    return before == after


def io_timeout(guest: Guest) -> int:
    """The driver's I/O timeout in seconds (``nvme_core.io_timeout``)."""
    return int(guest.run("cat /sys/module/nvme_core/parameters/io_timeout", timeout=10,
                         check=True).stdout)


IO_RESUMED = "io-resumed"  # StateMonitor's pseudo-state: writes complete again after live


class StateMonitor:
    """Samples a controller's ``state`` in the guest every 10 ms and records each change.

    The sampler is one guest shell loop made of builtins only (no process start per sample),
    stamped with the guest's clock, so transitions are timed without SSH in the way.
    """

    def __init__(self, guest: Guest, controller: str = "nvme0", namespace: str = "") -> None:
        self.guest = guest
        self.controller = controller
        self.namespace = namespace  # whose writes tell I/O resumed ("": the first one's)
        self._bg: Background | None = None

    def start(self) -> None:
        """Also, each time the controller is back to ``live``, the moment the first write
        completes on its namespace after that (a sample whose state is ``IO_RESUMED``)."""
        self._bg = self.guest.call_background("_nvme_sample_state", self.controller,
                                              *([self.namespace] if self.namespace else []))

    def stop(self) -> list[StateSample]:
        """Stop sampling; the first sample and every change."""
        if self._bg is None:
            return []
        res = self._bg.kill()
        self._bg = None
        return parse_samples(res.stdout)


# PCI command register bits (PCI Local Bus spec, offset 0x04)
PCI_COMMAND_MEMORY = 0x2  # Memory Space Enable: BAR accesses reach the device
PCI_COMMAND_MASTER = 0x4  # Bus Master Enable: the device may DMA (queues, data, MSI-X)


class PciFunction:
    """A PCI function as the guest sees it, driven with setpci and sysfs only, so that it
    works the same on a real machine: the command register, FLR, remove and rescan."""

    def __init__(self, guest: Guest, address: str) -> None:
        self.guest = guest
        self.address = address

    def __repr__(self) -> str:
        return f"PciFunction({self.address})"

    def command_while(self, state_file: str, state: str = "live") -> int | None:
        """The command register, read between two reads of ``state_file`` that both say
        ``state``; None when they do not (the driver was resetting meanwhile, and a reset
        clears Bus Master Enable while it disables the device)."""
        out = self.guest.call("_pci_read_command", state_file, self.address, timeout=30,
                              check=True).stdout.split()
        if len(out) != 3:
            raise HarnessError(f"reading {self.address}'s command register: {out}")
        before, value, after = out
        return int(value, 16) if before == after == state else None

    def set_command(self, bits: int, enabled: bool) -> str:
        """The setpci command that sets or clears ``bits`` (value:mask, others untouched)."""
        return f"setpci -s {self.address} COMMAND={bits if enabled else 0:x}:{bits:x}"

    def aer_counts(self) -> dict[str, int]:
        """The AER errors this function reported so far, by severity (``correctable``,
        ``nonfatal``, ``fatal``: the TOTAL lines of its ``aer_dev_*`` files); empty where it
        has none (no AER capability, or the kernel does not own AER)."""
        res = self.guest.run(f"cd /sys/bus/pci/devices/{self.address} && grep -H TOTAL "
                             "aer_dev_correctable aer_dev_nonfatal aer_dev_fatal", timeout=30)
        return {m.group(1): int(m.group(2)) for m in re.finditer(
            r"^aer_dev_(\w+):TOTAL_ERR_\w+ (\d+)$", res.stdout, re.M)}

    def bus_master_command(self, enabled: bool) -> str:
        return self.set_command(PCI_COMMAND_MASTER, enabled)

    def memory_space_command(self, enabled: bool) -> str:
        return self.set_command(PCI_COMMAND_MEMORY, enabled)

    def restore_command(self, bits: int, driver: str = "nvme") -> str:
        """The guest command that brings a silenced function back: ``bits`` of its command
        register set again if it still exists; then, if no driver holds it (it was removed,
        or its driver gave it up), a bus rescan, and ``driver`` bound should the rescan not
        do it."""
        return call_line("_pci_restore", self.address, f"{bits:x}", driver)

    def silence_during_reset(self, ctrl: Controller, bits: int, phase: str) -> str:
        """The guest command that starts a sysfs reset of ``ctrl`` and clears ``bits`` of the
        command register as soon as its state shows ``phase`` ("resetting": out of live;
        "connecting") or the reset has ended; it prints "EPOCH STATE": when, on the guest's
        clock, and the state it saw."""
        return call_line("_pci_silence_during_reset", ctrl.name, self.address, f"{bits:x}",
                         phase)

    def exists(self) -> bool:
        return self.guest.run(f"[ -e /sys/bus/pci/devices/{self.address} ]", timeout=30).ok

    def driver(self) -> str | None:
        out = self.guest.run(f"basename $(readlink /sys/bus/pci/devices/{self.address}/driver)"
                             " 2>/dev/null", timeout=30)
        return out.stdout.strip() or None if out.ok else None
