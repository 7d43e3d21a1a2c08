import io
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.build import cpio
from harness.build.images import is_static_elf, module_closure
from harness.build.kernels import module_name
from harness.errors import ImageBuildError

DEP = """\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/nvme/host/nvme-core.ko.xz: kernel/lib/crc16.ko
"""


def test_module_closure_puts_dependencies_first_once():
    order = module_closure(DEP, ["virtio_blk", "ext4"])
    names = [module_name(p) for p in order]
    assert names.index("virtio_ring") < names.index("virtio") < names.index("virtio_blk")
    assert names.index("jbd2") < names.index("ext4")
    assert len(names) == len(set(names)) == 7


def test_module_names_normalise_dashes_and_compression():
    assert module_name("kernel/drivers/nvme/host/nvme-core.ko.xz") == "nvme_core"
    assert module_closure(DEP, ["nvme-core"])[-1].endswith("nvme-core.ko.xz")


def test_missing_module_is_named():
    with pytest.raises(ImageBuildError, match="no module overlay"):
        module_closure(DEP, ["overlay"])


def test_static_elf_detection():
    sh = Path("/bin/sh").resolve().read_bytes()
    assert not is_static_elf(sh)
    busybox = Path("/bin/busybox")
    if busybox.exists():
        assert is_static_elf(busybox.read_bytes())
    assert not is_static_elf(b"#!/bin/sh\n")


@pytest.mark.skipif(not shutil.which("cpio"), reason="cpio tool not installed")
def test_cpio_archive_unpacks_with_the_cpio_tool(tmp_path):
    buf = io.BytesIO()
    cpio.write(buf, [cpio.directory("bin"), cpio.file("bin/hello", b"hi\n", 0o755),
                     cpio.symlink("bin/alias", "hello"), cpio.file("odd", b"12345")])
    subprocess.run(["cpio", "-id", "--quiet"], input=buf.getvalue(), cwd=tmp_path, check=True)
    assert (tmp_path / "bin/hello").read_bytes() == b"hi\n"
    assert (tmp_path / "bin/hello").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "bin/alias").readlink().name == "hello"
    assert (tmp_path / "odd").read_bytes() == b"12345"


def test_cpio_is_four_byte_aligned_and_ends_with_trailer():
    buf = io.BytesIO()
    cpio.write(buf, [cpio.file("a", b"x")])
    data = buf.getvalue()
    assert len(data) % 4 == 0
    assert b"TRAILER!!!" in data


def test_recipe_change_changes_the_cache_key(tmp_path, monkeypatch):
    from harness import paths
    from harness.build import images

    for name in ("rootfs.json", "rootfs-hook.sh"):
        (tmp_path / name).write_bytes((paths.IMAGES / name).read_bytes())
    monkeypatch.setattr(paths, "IMAGES", tmp_path)
    before = images.rootfs_key()
    assert images.rootfs_key() == before, "the key must be stable"
    recipe = (tmp_path / "rootfs.json").read_text().replace('"fio",', '"fio", "strace",')
    (tmp_path / "rootfs.json").write_text(recipe)
    assert images.rootfs_key() != before


def test_mmdebstrap_command_carries_the_recipe(tmp_path):
    from harness.build import images

    cmd = images.mmdebstrap_command(
        {"suite": "bookworm", "variant": "minbase", "packages": ["fio", "nvme-cli"],
         "path_exclude": ["/usr/share/doc/*"], "remove": ["/var/cache/apt/*"]},
        tmp_path / "root.img")
    assert "--include=fio,nvme-cli" in cmd and "--variant=minbase" in cmd
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in cmd
    assert cmd[-2:] == ["bookworm", "/dev/null"]
    hook = next(a for a in cmd if a.startswith("--customize-hook="))
    assert str(tmp_path / "root.img") in hook and "'/var/cache/apt/*'" in hook


def test_a_root_image_of_another_suite_with_more_packages_has_its_own_key(tmp_path):
    from harness.build import images

    plain = images.rootfs_key()
    headers = images.rootfs_key("trixie", ("linux-headers-6.12.1-amd64", "make"))
    assert headers not in (plain, images.rootfs_key("trixie"))
    cmd = images.mmdebstrap_command(
        {"suite": "trixie", "packages": ["fio", "make"]}, tmp_path / "root.img",
        "deb http://deb.debian.org/debian trixie main\n")
    assert cmd[-3:-1] == ["trixie", "/dev/null"] and cmd[-1].startswith("deb http")
