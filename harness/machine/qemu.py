"""The QEMU command line for a guest and its NVMe topology (pure: no processes here).

Naming, used by the QMP fault layer: controller ``i`` is qdev ``nvme{i}`` on root port
``rp{i}``; its namespace ``j`` (1-based nsid) sits on the block nodes ``nvme{i}n{j}-disk``
(raw format) and ``nvme{i}n{j}-file`` (the scratch file). These are host-side names; the
guest may number its controllers differently.

A controller with one namespace carries it itself (``nvme,drive=...``): QEMU 7.2 can
hot-add such a controller, but cannot hot-add ``nvme-ns`` devices. Controllers with several
namespaces use ``nvme-ns`` children (qdev ``nvme{i}n{j}``) and can only be cold-plugged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.build.images import GuestImage
from harness.machine.topology import Topology

KERNEL_ARGS = (
    "console=ttyS0",
    "loglevel=5",  # warnings and worse reach the console, where they are scanned live
    "panic=-1",  # reboot at once on panic; -no-reboot turns that into QEMU exiting
    # The IO-APIC timer check measures ticks against wall time; on a loaded host under TCG
    # it fails now and then and panics the boot ("IO-APIC + timer doesn't work!").
    "no_timer_check",
    "mitigations=off",
    "random.trust_cpu=on",
    "8250.nr_uarts=1",
)
# The virtio-serial port carrying the harness's SSH session (guests/stage2 looks it up by name).
SSH_RELAY_PORT = "org.nvmeh.ssh"


@dataclass(frozen=True)
class NamespaceNames:
    qdev: str  # the device whose BlockBackend serves it (for block_set_io_throttle id=)
    disk_node: str
    file_node: str
    backing: Path


def namespace_names(scratch: Path, topology: Topology, ctrl: int, nsid: int) -> NamespaceNames:
    """A subsystem's namespaces belong to no controller: they are ``nvme0n{nsid}`` whatever
    ``ctrl`` says."""
    if topology.subsystem:
        ctrl = 0
    base = f"nvme{ctrl}n{nsid}"
    single = len(topology.controllers[ctrl].namespaces) == 1 and not topology.subsystem
    return NamespaceNames(f"nvme{ctrl}" if single else base, f"{base}-disk", f"{base}-file",
                          scratch / f"{base}.img")


def hotpluggable(topology: Topology) -> bool:
    """True when every controller can be added with ``device_add`` (one namespace each,
    carried by the controller itself: not in a subsystem, whose namespaces are nvme-ns)."""
    return not topology.subsystem and all(len(c.namespaces) == 1 for c in topology.controllers)


def controller_device(topology: Topology, i: int) -> dict[str, object]:
    """The ``device_add`` arguments of a single-namespace controller ``i``."""
    ctrl = topology.controllers[i]
    ns = ctrl.namespaces[0]
    dev: dict[str, object] = {"driver": "nvme", "id": f"nvme{i}", "serial": f"nvmeh{i}",
                              "bus": f"rp{i}", "drive": f"nvme{i}n1-disk",
                              "logical_block_size": ns.block_size,
                              "physical_block_size": ns.block_size}
    if ctrl.io_queues:
        dev["max_ioqpairs"] = ctrl.io_queues
    return dev


def _device_arg(dev: dict[str, object]) -> str:
    return ",".join([str(dev["driver"])] + [f"{k}={v}" for k, v in dev.items() if k != "driver"])


@dataclass(frozen=True)
class LaunchSpec:
    qemu: str
    accel: str
    image: GuestImage
    topology: Topology
    scratch: Path  # private dir: QMP socket, fw_cfg files, namespace backing files
    ssh_port: int
    # Leave the NVMe controllers out (root ports and backing nodes stay): for a snapshot
    # base, and for a restore that hot-adds them afterwards.
    without_controllers: bool = False
    incoming: bool = False  # wait for `migrate-incoming` (restore from a snapshot)

    @property
    def qmp_socket(self) -> Path:
        return self.scratch / "qmp.sock"

    @property
    def authorized_keys(self) -> Path:
        return self.scratch / "authorized_keys"

    @property
    def host_key(self) -> Path:
        return self.scratch / "ssh_host_key"

    @property
    def ssh_relay_socket(self) -> Path:
        return self.scratch / "ssh-relay.sock"


def _ro_disk(path: Path, name: str, serial: str) -> list[str]:
    return [
        "-blockdev", f"driver=file,filename={path},node-name={name}-file,read-only=on",
        "-blockdev", f"driver=raw,file={name}-file,node-name={name},read-only=on",
        "-device", f"virtio-blk-pci,drive={name},serial={serial},id={name}",
    ]


def smp(cpus: int, accel: str) -> tuple[str, list[str]]:
    """``-smp`` and the kernel arguments it needs. Under TCG, QEMU before 8.1 emits none of
    the guest's memory barriers on a machine with one possible CPU (fixed by c914d46d0a64),
    yet the NVMe device model runs on another host thread: the driver's shadow doorbell then
    loses a submission now and then, and the queue stalls until a timeout resets it
    (known-bugs/qemu-7.2-tcg-smp1-elided-barriers-shadow-doorbell). A second possible CPU
    makes TCG emit them; ``possible_cpus=1`` keeps the guest from seeing it, so the driver
    still makes one I/O queue, as on one CPU under KVM."""
    if accel != "kvm" and cpus == 1:
        return "1,maxcpus=2", ["possible_cpus=1"]
    return str(cpus), []


def command_line(spec: LaunchSpec) -> list[str]:
    topo = spec.topology
    cpu = "host" if spec.accel == "kvm" else "max"
    cpus, cpu_args = smp(topo.cpus, spec.accel)
    args = [
        spec.qemu,
        "-machine", f"q35,accel={spec.accel}",
        "-cpu", cpu,
        "-smp", cpus,
        "-m", f"{topo.memory >> 20}M",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(spec.image.kernel.boot_image),
        "-initrd", str(spec.image.initrd),
        "-append", " ".join([*KERNEL_ARGS, *cpu_args, *topo.kernel_args]),
        "-chardev", "stdio,id=console,signal=off",
        "-serial", "chardev:console",
        # QEMU waits for the harness's QMP connection before it runs the guest: every event
        # is seen from the first instruction on.
        "-chardev", f"socket,id=qmp,path={spec.qmp_socket},server=on,wait=on",
        "-mon", "chardev=qmp,mode=control",
        *_ro_disk(spec.image.rootfs, "rootfs", "nvmeh-root"),
        *_ro_disk(spec.image.kernel.modules_image, "modules", "nvmeh-modules"),
        # restrict=on: the guest reaches nothing on the host or beyond; only the forwarded
        # SSH port, bound to loopback, reaches the guest.
        "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
        "-device", "virtio-net-pci,netdev=net0,id=net0",
        "-fw_cfg", f"name=opt/nvmeh/authorized_keys,file={spec.authorized_keys}",
        "-fw_cfg", f"name=opt/nvmeh/ssh_host_key,file={spec.host_key}",
        # A new generation ID at every QEMU start makes a restored guest reseed its RNG, so
        # clones of one snapshot do not share random state.
        "-device", "vmgenid,guid=auto",
    ]
    if topo.ssh_relay:
        # The harness's SSH session: a virtio-serial port the guest relays to its SSH server.
        # Unlike a TCP connection through the user-mode network, a port's connection outlives
        # a snapshot, so a restored guest takes the login its snapshot had already accepted.
        # The socket sits in the run's private directory: no other user reaches it.
        args += [
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=sshrelay,path={spec.ssh_relay_socket},server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=sshrelay,name={SSH_RELAY_PORT}",
        ]
    # -S: the guest runs once the harness holds the SSH relay port (and, for a restore, once
    # the controllers are added after loading).
    args += ["-S"]
    if spec.incoming:
        args += ["-incoming", "defer"]
    if topo.subsystem:
        args += ["-device", "nvme-subsys,id=subsys0,nqn=nvmeh-subsys0"]
    speed = f",x-speed={topo.link_speed.replace('.', '_')}" if topo.link_speed else ""
    for i, ctrl in enumerate(topo.controllers):
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},slot={i + 1}{speed}"]
        if not (topo.subsystem and i):  # a subsystem's namespaces: with the first one
            args += _backing_nodes(spec, i)
        if spec.without_controllers:
            continue
        if topo.subsystem:
            queues = f",max_ioqpairs={ctrl.io_queues}" if ctrl.io_queues else ""
            # QEMU wants one serial number for all controllers of a subsystem
            args += ["-device", f"nvme,id=nvme{i},serial=nvmeh-subsys0,bus=rp{i},"
                     f"subsys=subsys0{queues}"]
            continue
        if len(ctrl.namespaces) == 1:
            args += ["-device", _device_arg(controller_device(topo, i))]
            continue
        queues = f",max_ioqpairs={ctrl.io_queues}" if ctrl.io_queues else ""
        args += ["-device", f"nvme,id=nvme{i},serial=nvmeh{i},bus=rp{i}{queues}"]
        args += _namespace_devices(spec, i)
    if topo.subsystem and not spec.without_controllers:
        # After every controller: a shared namespace attaches to those that exist.
        args += _namespace_devices(spec, 0)
    return args


def _backing_nodes(spec: LaunchSpec, i: int) -> list[str]:
    args = []
    for nsid in range(1, len(spec.topology.controllers[i].namespaces) + 1):
        n = namespace_names(spec.scratch, spec.topology, i, nsid)
        args += [
            "-blockdev", f"driver=file,filename={n.backing},node-name={n.file_node}",
            "-blockdev", f"driver=raw,file={n.file_node},node-name={n.disk_node}",
        ]
    return args


def _namespace_devices(spec: LaunchSpec, i: int) -> list[str]:
    """``nvme-ns`` devices of controller ``i`` (of the subsystem, when there is one: shared
    by every controller, attached unless declared detached)."""
    topo, args = spec.topology, []
    for nsid, ns in enumerate(topo.controllers[i].namespaces, start=1):
        n = namespace_names(spec.scratch, topo, i, nsid)
        sharing = (f",shared=on,detached={'on' if ns.detached else 'off'}"
                   if topo.subsystem else "")
        args += ["-device", f"nvme-ns,id={n.qdev},drive={n.disk_node},bus=nvme{i},"
                 f"nsid={nsid},logical_block_size={ns.block_size},"
                 f"physical_block_size={ns.block_size}{sharing}"]
    return args
