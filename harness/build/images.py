"""The guest: a kernel (see :mod:`harness.build.kernels`), an initramfs and a root filesystem.

The root filesystem is a read-only ext4 image built with mmdebstrap; every VM mounts it under
a tmpfs overlay, so all VMs share one image and each starts clean. The NVMe namespaces are
separate scratch files: the device under test is never the guest's root disk.

Everything is cached under :func:`harness.paths.cache_dir`, keyed by a hash of its recipe:
a second call does nothing, a changed recipe rebuilds.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.build import apt, cpio, driver, kernels
from harness.build.driver import Driver
from harness.build.kernels import KernelImage, module_name
from harness.errors import BadInput, HostNotReady, ImageBuildError
from harness.progress import Progress
from harness.util import digest, digest_files

ROOTFS_BUILDER = "rootfs-1"
INITRD_BUILDER = "initrd-1"
BUSYBOX = Path("/bin/busybox")
# Debian's current stable: the kernel the suite's own checks must pass on (the older ones'
# recorded bugs are tested on them by name: tests/harness/test_known_bugs.py)
DEFAULT_KERNEL = "debian:6.12"


@dataclass(frozen=True)
class GuestImage:
    kernel: KernelImage
    initrd: Path
    rootfs: Path
    driver: Driver | None = None  # an NVMe driver built from --nvme-src, loaded instead of stock

    @property
    def key(self) -> str:
        return f"{self.kernel.key}/{self.initrd.stem}/{self.rootfs.parent.name}"


def prepare(kernel: str = DEFAULT_KERNEL, progress: Progress | None = None,
            nvme_src: Path | None = None) -> GuestImage:
    """Build or reuse everything a VM boots from."""
    progress = progress or Progress()
    rootfs = build_rootfs(progress)
    kimage = kernels.get(kernel, progress)
    drv = driver.build(nvme_src, kimage, progress) if nvme_src is not None else None
    initrd = build_initrd(kimage, progress, drv)
    progress.done()
    return GuestImage(kimage, initrd, rootfs, drv)


def check_image(path: Path, what: str) -> None:
    """Refuse a missing or corrupt image with one line naming it."""
    if not path.exists():
        raise BadInput(f"{what} {path} does not exist")
    if path.suffix == ".img":
        with open(path, "rb") as fh:
            fh.seek(1024 + 56)
            if fh.read(2) != b"\x53\xef":
                raise BadInput(f"{what} {path} is corrupt: no ext4 superblock")


# --- root filesystem -------------------------------------------------------------------------

def rootfs_recipe() -> dict[str, object]:
    recipe: dict[str, object] = json.loads((paths.IMAGES / "rootfs.json").read_text())
    return recipe


def rootfs_key(suite: str | None = None, extra: tuple[str, ...] = ()) -> str:
    variant = [f"{suite} {' '.join(extra)}".encode()] if suite or extra else []
    return digest(ROOTFS_BUILDER.encode(),
                  (paths.IMAGES / "rootfs.json").read_bytes(),
                  (paths.IMAGES / "rootfs-hook.sh").read_bytes(), *variant)


def mmdebstrap_command(recipe: dict[str, object], image: Path,
                       sources: str | None = None) -> list[str]:
    """The mmdebstrap call that builds the root image in one go (no root needed);
    ``sources``: a sources.list for the suite (else mmdebstrap's default mirror)."""
    packages = recipe["packages"]
    excludes = recipe.get("path_exclude", [])
    removes = recipe.get("remove", [])
    assert isinstance(packages, list) and isinstance(excludes, list) and isinstance(removes, list)
    hook = " ".join(shlex.quote(str(a)) for a in
                    ["sh", str(paths.IMAGES / "rootfs-hook.sh")]) + ' "$1" ' + " ".join(
        shlex.quote(str(a)) for a in [str(image), *removes])
    cmd = [
        "mmdebstrap", "--mode=auto", f"--variant={recipe.get('variant', 'minbase')}",
        f"--include={','.join(packages)}",
        "--aptopt=APT::Install-Recommends \"false\"",
        *(f"--dpkgopt=path-exclude={p}" for p in excludes),
        f"--customize-hook={hook}",
        str(recipe["suite"]), "/dev/null", *([sources] if sources else []),
    ]
    return cmd


def build_rootfs(progress: Progress, suite: str | None = None,
                 extra: tuple[str, ...] = ()) -> Path:
    """The guest's root image: bookworm as the recipe says, or (for a stand-in lab machine)
    the same packages in another Debian ``suite`` plus ``extra`` ones."""
    key = rootfs_key(suite, extra)
    dest = paths.cache_dir() / "rootfs" / key / "rootfs.img"
    if dest.exists():
        return dest
    if not shutil.which("mmdebstrap"):
        raise HostNotReady("mmdebstrap is missing: run `python -m harness doctor --install`")
    with paths.locked(dest.parent.with_suffix(".lock")):
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        recipe = rootfs_recipe()
        sources = None
        if suite or extra:
            recipe["suite"] = suite = suite or str(recipe["suite"])
            recipe["packages"] = [*recipe["packages"], *extra]  # type: ignore[misc]
            sources = apt.Suite(suite).sources_list()
        progress.step(f"building root filesystem with mmdebstrap ({' '.join(extra)} too)"
                      if extra else "building root filesystem with mmdebstrap (about a minute)")
        proc = subprocess.Popen(mmdebstrap_command(recipe, tmp, sources),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log: list[str] = []
        assert proc.stdout
        for line in proc.stdout:
            log.append(line)
            if line.startswith("I: ") and "tempdir" not in line:
                progress.info("  mmdebstrap: " + line[3:].strip())
        if proc.wait() != 0 or not tmp.exists():
            tmp.unlink(missing_ok=True)
            raise ImageBuildError("building the root filesystem failed (mmdebstrap output below)",
                                  "".join(log[-40:]))
        os.rename(tmp, dest)
    return dest


LAB_STORAGE_TOOLS = ("fdisk", "e2fsprogs", "lvm2", "mdadm")  # what puts data on its disks


def lab_machine_rootfs(kernel: KernelImage, progress: Progress) -> Path:
    """The guest's root image made in ``kernel``'s own Debian suite with its headers, make
    and the storage tools a lab machine has: a machine that can build a driver for itself and
    whose disks may hold partitions, LVM or RAID (what the tests of ``--target`` boot to
    check its builds and refusals)."""
    if kernel.suite is None:
        raise BadInput(f"{kernel.spec} is not a Debian kernel: no headers package to install")
    return build_rootfs(progress, kernel.suite,
                        (f"linux-headers-{kernel.release}", "make", *LAB_STORAGE_TOOLS))


# --- initramfs -------------------------------------------------------------------------------

def module_closure(modules_dep: str, wanted: list[str],
                   builtin: frozenset[str] = frozenset(),
                   optional: frozenset[str] = frozenset()) -> list[str]:
    """Paths (relative to the modules dir) of ``wanted`` and their dependencies, load order.

    Modules compiled into the kernel need no loading and are left out."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[module_name(path)] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        key = name.replace("-", "_")
        if key in builtin or (key in optional and key not in by_name):
            continue
        if key not in by_name:
            raise ImageBuildError(f"the kernel has no module {name} (needed in the initramfs); "
                                  "is it built in? then drop it from images/initramfs.json")
        visit(by_name[key])
    return order


def is_static_elf(data: bytes) -> bool:
    """True for a 64-bit ELF without a PT_INTERP segment (no dynamic loader needed)."""
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3
               for i in range(phnum))


def initrd_files() -> list[Path]:
    return sorted(p for p in paths.GUESTS.iterdir() if p.is_file())


def build_initrd(kernel: KernelImage, progress: Progress, drv: Driver | None = None) -> Path:
    """The initramfs: busybox, every module the guest loads, the guest scripts, and a
    --nvme-src driver under guest/driver (stage 1 loads it instead of the stock one)."""
    if not BUSYBOX.exists():
        raise HostNotReady("busybox is missing: run `python -m harness doctor --install`")
    busybox = BUSYBOX.read_bytes()
    if not is_static_elf(busybox):
        raise HostNotReady(f"{BUSYBOX} is not static: install busybox-static "
                           "(`python -m harness doctor --install`)")
    key = digest(INITRD_BUILDER.encode(), kernel.key.encode(), busybox,
                 digest_files(paths.IMAGES / "initramfs.json", *initrd_files()).encode(),
                 (drv.hash if drv else "stock").encode())
    dest = paths.cache_dir() / "initrd" / f"{key}.cpio"
    if dest.exists():
        return dest
    progress.step("building initramfs")
    recipe = json.loads((paths.IMAGES / "initramfs.json").read_text())
    # The NVMe driver last: the stock one, or the stock modules a --nvme-src one needs.
    wanted = recipe["modules"] + (list(drv.depends) if drv is not None else ["nvme"])
    order = module_closure((kernel.modules_dir / "modules.dep").read_text(), wanted,
                           kernel.builtin, frozenset(recipe.get("optional", ())))
    entries = [cpio.directory(d) for d in ("bin", "dev", "proc", "sys", "modules", "guest")]
    entries += [cpio.chardev("dev/console", 5, 1), cpio.file("bin/busybox", busybox, 0o755)]
    for rel in order:
        entries.append(cpio.file(f"modules/{Path(rel).name}",
                                 (kernel.modules_dir / rel).read_bytes()))
    entries.append(cpio.file("modules/order", "".join(Path(r).name + "\n"
                                                      for r in order).encode()))
    for f in initrd_files():
        mode = 0o755 if os.access(f, os.X_OK) else 0o644
        name = "init" if f.name == "init" else f"guest/{f.name}"
        entries.append(cpio.file(name, f.read_bytes(), mode))
    if drv is not None:
        entries.append(cpio.directory("guest/driver"))
        for ko in drv.modules:
            entries.append(cpio.file(f"guest/driver/{ko.name}", ko.read_bytes()))
        entries.append(cpio.file("guest/driver/order",
                                 "".join(ko.name + "\n" for ko in drv.modules).encode()))
    buf = io.BytesIO()
    cpio.write(buf, entries)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.rename(tmp, dest)
    return dest
