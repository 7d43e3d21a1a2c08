from pathlib import Path

from harness.build.images import GuestImage
from harness.build.kernels import KernelImage
from harness.machine.accel import Accel
from harness.machine.snapshot import snapshot_key, unsupported_reason
from harness.machine.topology import DEFAULT, Topology

TCG = Accel("tcg", "test")


def _image(kernel_key: str = "k1", rootfs_dir: str = "r1") -> GuestImage:
    k = KernelImage("debian:6.1", kernel_key, "6.1.0-1-amd64", Path("/c/vmlinux"),
                    Path("/c/m"), Path("/c/modules.img"))
    return GuestImage(k, Path("/c/initrd/abc.cpio"), Path(f"/c/rootfs/{rootfs_dir}/rootfs.img"))


def _key(topology: Topology = DEFAULT, image: GuestImage | None = None,
         accel: Accel = TCG, qemu: str = "/bin/true") -> str:
    return snapshot_key(image or _image(), topology, accel, qemu)


def test_same_inputs_same_key():
    assert _key() == _key()


def test_every_input_changes_the_key():
    base = _key()
    assert _key(image=_image(kernel_key="k2")) != base
    assert _key(image=_image(rootfs_dir="r2")) != base
    assert _key(accel=Accel("kvm", "test")) != base
    assert _key(qemu="/bin/false") != base
    assert _key(Topology.build(cpus=2)) != base
    assert _key(Topology.build(memory="2G")) != base
    assert _key(Topology.build(kernel_args="nvme_core.io_timeout=5")) != base
    assert _key(Topology.build(controllers=2)) != base
    assert _key(Topology.build(ssh_relay=False)) != base  # a VM without the relay port
    assert _key(Topology.build(link_speed="2.5")) != base  # root ports are in the snapshot


def test_what_is_added_after_the_restore_does_not_change_the_key():
    assert _key(Topology.build(namespaces=["256M:4096"], io_queues=2)) == _key()


def test_several_namespaces_need_a_cold_boot():
    assert unsupported_reason(Topology()) is None
    assert "nvme-ns" in (unsupported_reason(Topology.build(namespaces=2)) or "")
