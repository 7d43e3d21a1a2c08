from dataclasses import replace
from pathlib import Path

from harness.build.images import GuestImage
from harness.build.kernels import KernelImage
from harness.machine.qemu import LaunchSpec, command_line, controller_device, hotpluggable
from harness.machine.topology import Topology


def _spec(topology: Topology, accel: str = "tcg") -> LaunchSpec:
    k = KernelImage("debian:6.1", "k", "6.1.0-1-amd64", Path("/c/vmlinux"), Path("/c/mods"),
                    Path("/c/modules.img"))
    image = GuestImage(k, Path("/c/initrd.cpio"), Path("/c/rootfs.img"))
    return LaunchSpec("qemu-system-x86_64", accel, image, topology, Path("/s"), 40022)


def _devices(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == "-device"]


def test_each_controller_on_its_own_root_port():
    cmd = command_line(_spec(Topology.build(controllers=2, namespaces=["256M", "128M:4096"],
                                            io_queues=3)))
    devs = _devices(cmd)
    assert "pcie-root-port,id=rp0,chassis=1,slot=1" in devs
    assert "pcie-root-port,id=rp1,chassis=2,slot=2" in devs
    assert "nvme,id=nvme1,serial=nvmeh1,bus=rp1,max_ioqpairs=3" in devs
    ns = [d for d in devs if d.startswith("nvme-ns")]
    assert len(ns) == 4
    assert ("nvme-ns,id=nvme1n2,drive=nvme1n2-disk,bus=nvme1,nsid=2,logical_block_size=4096,"
            "physical_block_size=4096") in ns


def test_a_link_speed_sets_every_root_ports_speed():
    devs = _devices(command_line(_spec(Topology.build(controllers=2, link_speed="2.5"))))
    assert "pcie-root-port,id=rp0,chassis=1,slot=1,x-speed=2_5" in devs
    assert "pcie-root-port,id=rp1,chassis=2,slot=2,x-speed=2_5" in devs


def test_nvme_is_never_the_root_disk_and_root_is_read_only():
    cmd = command_line(_spec(Topology()))
    blockdevs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-blockdev"]
    assert "driver=file,filename=/c/rootfs.img,node-name=rootfs-file,read-only=on" in blockdevs
    assert "virtio-blk-pci,drive=rootfs,serial=nvmeh-root,id=rootfs" in _devices(cmd)
    assert "driver=file,filename=/s/nvme0n1.img,node-name=nvme0n1-file" in blockdevs


def test_ssh_only_on_loopback_and_guest_isolated():
    cmd = command_line(_spec(Topology()))
    netdev = cmd[cmd.index("-netdev") + 1]
    assert "restrict=on" in netdev
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev


def test_ssh_relay_port_is_a_private_socket_and_the_guest_waits_for_it():
    cmd = command_line(_spec(Topology()))
    chardevs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-chardev"]
    assert "socket,id=sshrelay,path=/s/ssh-relay.sock,server=on,wait=off" in chardevs
    assert "virtserialport,bus=vser0.0,chardev=sshrelay,name=org.nvmeh.ssh" in _devices(cmd)
    # Paused until the harness holds the relay port: both for a cold boot and a restore.
    assert "-S" in cmd and "-incoming" not in cmd
    restore = command_line(replace(_spec(Topology()), incoming=True))
    assert "-S" in restore and restore[restore.index("-incoming") + 1] == "defer"


def test_a_guest_that_suspends_logs_in_over_the_network_without_a_relay_port():
    cmd = command_line(_spec(Topology.build(ssh_relay=False)))
    assert not any("sshrelay" in a or "virtio-serial" in a for a in cmd)
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in cmd[cmd.index("-netdev") + 1]
    assert "-S" in cmd
    assert str(Topology.build(ssh_relay=False)).endswith(",ssh=tcp")


def test_accel_and_cpu_model():
    tcg = command_line(_spec(Topology.build(cpus=2, memory="512M")))
    assert tcg[tcg.index("-machine") + 1] == "q35,accel=tcg"
    assert tcg[tcg.index("-cpu") + 1] == "max"
    assert tcg[tcg.index("-smp") + 1] == "2" and tcg[tcg.index("-m") + 1] == "512M"
    kvm = command_line(_spec(Topology(), accel="kvm"))
    assert kvm[kvm.index("-cpu") + 1] == "host"


def test_one_cpu_under_tcg_keeps_the_guests_memory_barriers():
    # QEMU < 8.1's TCG emits no guest barrier with one possible CPU, and the NVMe device
    # model (another thread) then loses shadow doorbell submissions: a second possible CPU
    # that the guest does not see (one I/O queue, as with one CPU)
    tcg = command_line(_spec(Topology.build(cpus=1)))
    assert tcg[tcg.index("-smp") + 1] == "1,maxcpus=2"
    assert "possible_cpus=1" in tcg[tcg.index("-append") + 1].split()
    kvm = command_line(_spec(Topology.build(cpus=1), accel="kvm"))  # real barriers
    assert kvm[kvm.index("-smp") + 1] == "1"
    assert "possible_cpus" not in kvm[kvm.index("-append") + 1]


def test_kernel_args_appended_and_panic_exits():
    cmd = command_line(_spec(Topology.build(kernel_args="nvme_core.io_timeout=5")))
    append = cmd[cmd.index("-append") + 1]
    assert "panic=-1" in append and append.endswith("nvme_core.io_timeout=5")
    assert "-no-reboot" in cmd


def test_single_namespace_controller_carries_its_drive_so_it_can_be_hot_added():
    topo = Topology.build(namespaces=["256M:4096"], io_queues=2)
    devs = _devices(command_line(_spec(topo)))
    assert ("nvme,id=nvme0,serial=nvmeh0,bus=rp0,drive=nvme0n1-disk,logical_block_size=4096,"
            "physical_block_size=4096,max_ioqpairs=2") in devs
    assert not [d for d in devs if d.startswith("nvme-ns")]
    assert hotpluggable(topo)
    assert not hotpluggable(Topology.build(namespaces=2))
    assert controller_device(topo, 0)["drive"] == "nvme0n1-disk"


def test_snapshot_base_has_root_ports_and_nodes_but_no_controllers():
    topo = Topology.build(controllers=2)
    spec = replace(_spec(topo), without_controllers=True, incoming=True)
    cmd = command_line(spec)
    devs = _devices(cmd)
    assert [d for d in devs if d.startswith("pcie-root-port")] and not \
        [d for d in devs if d.startswith("nvme")]
    assert "driver=raw,file=nvme1n1-file,node-name=nvme1n1-disk" in cmd
    assert cmd[cmd.index("-incoming") + 1] == "defer" and "-S" in cmd


def test_a_subsystem_links_its_controllers_and_shares_its_namespaces():
    topo = Topology.parse("controllers=2,subsystem=on,namespaces=1G+512M:detached")
    cmd = command_line(_spec(topo))
    devs = _devices(cmd)
    nvme = [d for d in devs if d.startswith(("nvme-subsys", "nvme,", "nvme-ns"))]
    assert nvme == [
        "nvme-subsys,id=subsys0,nqn=nvmeh-subsys0",
        "nvme,id=nvme0,serial=nvmeh-subsys0,bus=rp0,subsys=subsys0",
        "nvme,id=nvme1,serial=nvmeh-subsys0,bus=rp1,subsys=subsys0",
        # after both controllers: a shared namespace attaches to the controllers that exist
        "nvme-ns,id=nvme0n1,drive=nvme0n1-disk,bus=nvme0,nsid=1,logical_block_size=512,"
        "physical_block_size=512,shared=on,detached=off",
        "nvme-ns,id=nvme0n2,drive=nvme0n2-disk,bus=nvme0,nsid=2,logical_block_size=512,"
        "physical_block_size=512,shared=on,detached=on"]
    files = [a for a in cmd if a.startswith("driver=file,filename=/s/")]
    assert files == ["driver=file,filename=/s/nvme0n1.img,node-name=nvme0n1-file",
                     "driver=file,filename=/s/nvme0n2.img,node-name=nvme0n2-file"]
    assert not hotpluggable(topo)
