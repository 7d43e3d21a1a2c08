"""Kernel preparation logic on synthetic inputs: boot header parsing, module handling."""

from __future__ import annotations

import lzma
import struct
from pathlib import Path

import pytest

from harness.build import kernels
from harness.build.images import module_closure
from harness.errors import BadInput


def fake_bzimage(payload: bytes, version: str = "6.12.1-test (gcc) #1 SMP") -> bytes:
    """A bzImage with just enough of a setup header: 4 setup sectors, then the payload."""
    setup_sects = 4
    data = bytearray((setup_sects + 1) * 512)
    data[0x1F1] = setup_sects
    data[0x202:0x206] = b"HdrS"
    vpos = 0x300
    data[vpos:vpos + len(version) + 1] = version.encode() + b"\0"
    struct.pack_into("<H", data, 0x20E, vpos - 0x200)
    struct.pack_into("<II", data, 0x248, 0x40, len(payload))
    return bytes(data) + b"\0" * 0x40 + payload + b"TRAILER"


def test_release_is_read_from_the_setup_header():
    assert kernels.bzimage_release(fake_bzimage(b"x")) == "6.12.1-test"
    assert kernels.bzimage_release(b"\0" * 4096) is None


def test_vmlinux_is_extracted_from_an_xz_payload_despite_trailing_bytes():
    elf = b"\x7fELF" + b"kernel" * 100
    assert kernels.extract_vmlinux(fake_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ))) == elf


def test_unknown_payload_falls_back_to_none():
    assert kernels.extract_vmlinux(fake_bzimage(b"\x02\x21\x4c\x18lz4 data")) is None
    assert kernels.extract_vmlinux(b"not a kernel") is None


def test_compressed_modules_are_stored_uncompressed(tmp_path: Path):
    mod = tmp_path / "kernel" / "nvme.ko.xz"
    mod.parent.mkdir()
    mod.write_bytes(lzma.compress(b"\x7fELFmodule"))
    kernels.decompress_modules(tmp_path)
    assert (tmp_path / "kernel" / "nvme.ko").read_bytes() == b"\x7fELFmodule"
    assert not mod.exists()


def test_a_kernel_without_nvme_is_refused_naming_the_option(tmp_path: Path):
    (tmp_path / "modules.dep").write_text("kernel/fs/overlayfs/overlay.ko:\n")
    (tmp_path / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\n"
        "kernel/fs/ext4/ext4.ko\nkernel/drivers/firmware/qemu_fw_cfg.ko\n"
        "kernel/drivers/net/virtio_net.ko\n")
    with pytest.raises(BadInput, match=r"nvme \(CONFIG_BLK_DEV_NVME\)$"):
        kernels.check_required_modules("/src/linux", tmp_path)
    (tmp_path / "modules.builtin").write_text(
        (tmp_path / "modules.builtin").read_text() + "kernel/drivers/nvme/host/nvme.ko\n")
    kernels.check_required_modules("/src/linux", tmp_path)


def test_built_in_modules_are_not_loaded_from_the_initramfs():
    dep = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko\nkernel/lib/crc16.ko:\n"
    assert module_closure(dep, ["ext4", "virtio_blk"], frozenset({"virtio_blk"})) == [
        "kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko"]


def test_a_missing_kernel_path_is_one_clear_line(tmp_path: Path):
    with pytest.raises(BadInput, match="does not exist"):
        kernels.get(str(tmp_path / "nope"), progress=None)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="not usable"):
        kernels.get(str(tmp_path), progress=None)  # type: ignore[arg-type]


def test_kernel_specs_are_checked_before_anything_is_fetched(tmp_path: Path):
    kernels.validate("debian:6.1")
    kernels.validate(str(tmp_path))
    kernels.validate(f"{tmp_path},/nonexistent/modules")  # modules are checked later
    with pytest.raises(BadInput, match=r"unknown kernel 'debian:4\.19'.*debian:5\.10"):
        kernels.validate("debian:4.19")
    with pytest.raises(BadInput, match="does not exist"):
        kernels.validate("/no/such/bzImage")


def test_a_suite_brings_its_updates_and_security_suites():
    from harness.build.apt import Suite

    lines = Suite("trixie").sources_list().splitlines()
    assert [ln.split()[-2] for ln in lines] == ["trixie", "trixie-updates", "trixie-security"]
    assert all("signed-by=" in ln for ln in lines)
