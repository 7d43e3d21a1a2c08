"""Guest kernels: a Debian kernel package (or a user's kernel) made ready for direct boot.

A kernel is ready when the harness has its boot image (the uncompressed ELF ``vmlinux`` where
it can be extracted: it boots through PVH and skips the in-guest decompressor, which is most
of a cold boot under TCG), its ``lib/modules/<release>`` tree with ``modules.dep``, and an
ext4 image of that tree that the guest mounts read-only.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import BadInput, HostNotReady, ImageBuildError
from harness.progress import Progress
from harness.util import digest, find_tool, run_tool

BUILDER_VERSION = "kernel-1"  # bump when the extraction below changes


@dataclass(frozen=True)
class KernelImage:
    spec: str  # what the user asked for: "debian:6.1" or a path
    key: str  # cache key: identifies exactly this kernel build
    release: str  # `uname -r` in the guest
    boot_image: Path  # vmlinux (PVH ELF) or bzImage
    modules_dir: Path  # host copy of lib/modules/<release>
    modules_image: Path  # ext4 image holding <release>/..., mounted at /usr/lib/modules

    @property
    def config(self) -> Path | None:
        cfg = self.boot_image.parent / "config"
        return cfg if cfg.exists() else None


def known_kernels() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((paths.IMAGES / "kernels.json").read_text())
    data.pop("comment", None)
    return data


def get(spec: str, progress: Progress) -> KernelImage:
    """Resolve ``spec`` (``debian:VER`` or a path) to a kernel ready to boot, building if needed."""
    if spec.startswith("debian:"):
        return _debian_kernel(spec, progress)
    path = Path(spec).expanduser()
    if not path.exists():
        raise BadInput(f"kernel {spec!r} does not exist (give debian:VERSION or a path)")
    return _kernel_from_tree(spec, path.resolve(), progress)


def _debian_kernel(spec: str, progress: Progress) -> KernelImage:
    kernels = known_kernels()
    if spec not in kernels:
        raise BadInput(f"unknown kernel {spec!r}: choose one of {', '.join(sorted(kernels))}")
    meta = kernels[spec]["metapackage"]
    package = _apt_resolve(meta)
    version = _apt_field(package, "Version")
    key = f"{package}_{version}-{BUILDER_VERSION}"
    dest = paths.cache_dir() / "kernels" / key
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                progress.step(f"fetching kernel {package} {version}")
                with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                    run_tool(["apt-get", "download", f"{package}={version}"],
                             f"download of {package}", cwd=tmp)
                    deb = next(Path(tmp).glob("*.deb"))
                    root = Path(tmp) / "root"
                    run_tool(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
                    _prepare_tree(root, dest, progress)
    return _load(spec, key, dest)


def _kernel_from_tree(spec: str, path: Path, progress: Progress) -> KernelImage:
    """A directory laid out like an installed kernel: boot/vmlinuz-REL and lib/modules/REL."""
    images = sorted((path / "boot").glob("vmlinuz-*")) if path.is_dir() else []
    if not images or not (path / "lib" / "modules").is_dir():
        raise BadInput(
            f"kernel {spec!r} is not usable: expected a directory holding boot/vmlinuz-RELEASE "
            "and lib/modules/RELEASE"
        )
    key = "path-" + digest(str(path).encode(), *(str(p.stat().st_mtime_ns).encode()
                                                 for p in images), BUILDER_VERSION.encode())
    dest = paths.cache_dir() / "kernels" / key
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                    root = Path(tmp) / "root"
                    shutil.copytree(path, root, symlinks=True)
                    _prepare_tree(root, dest, progress)
    return _load(spec, key, dest)


def _prepare_tree(root: Path, dest: Path, progress: Progress) -> None:
    images = sorted((root / "boot").glob("vmlinuz-*"))
    if not images:
        raise ImageBuildError(f"no boot/vmlinuz-* in kernel package under {root}")
    release = images[-1].name.removeprefix("vmlinuz-")
    moddir = root / "lib" / "modules" / release
    if not moddir.is_dir():
        raise BadInput(f"kernel {release} has no modules directory lib/modules/{release}")
    work = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    progress.step(f"preparing kernel {release}")
    vmlinux = extract_vmlinux(images[-1].read_bytes())
    if vmlinux is not None:
        (work / "vmlinux").write_bytes(vmlinux)
    else:
        shutil.copy2(images[-1], work / "bzImage")
    config = root / "boot" / f"config-{release}"
    if config.exists():
        shutil.copy2(config, work / "config")
    run_tool([depmod_path(), "-b", str(root), release], f"depmod for {release}")
    modules = work / "modules"
    modules.mkdir()
    shutil.move(str(moddir), modules / release)
    progress.step(f"building modules image for {release}")
    make_ext4(modules, work / "modules.img", label="nvmeh-modules")
    (work / "release").write_text(release + "\n")
    (work / "done").write_text("")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(work, dest)


def _load(spec: str, key: str, dest: Path) -> KernelImage:
    release = (dest / "release").read_text().strip()
    boot = dest / "vmlinux" if (dest / "vmlinux").exists() else dest / "bzImage"
    return KernelImage(spec, key, release, boot, dest / "modules" / release,
                       dest / "modules.img")


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside an XZ-compressed bzImage, or None if it is not one."""
    start = bzimage.find(b"\xfd7zXZ\x00")
    if start < 0:
        return None
    try:
        elf = lzma.LZMADecompressor().decompress(bzimage[start:])
    except lzma.LZMAError:
        return None
    return elf if elf[:4] == b"\x7fELF" else None


def depmod_path() -> str:
    found = find_tool("depmod")
    if not found:
        raise HostNotReady("depmod is missing: run `python -m harness doctor --install`")
    return found


def make_ext4(source: Path, image: Path, label: str) -> None:
    """An ext4 image of ``source`` with 25% headroom; files are owned by root in the image."""
    size = sum(f.stat().st_size for f in source.rglob("*") if f.is_file() and not f.is_symlink())
    megabytes = size * 5 // 4 // (1 << 20) + 32
    run_tool(["mkfs.ext4", "-q", "-F", "-L", label, "-E", "root_owner=0:0", "-d", str(source),
              str(image), f"{megabytes}M"], f"mkfs.ext4 for {image.name}")


def _apt_resolve(metapackage: str) -> str:
    out = run_tool(["apt-cache", "depends", "--no-recommends", "--no-suggests", metapackage],
                   f"apt-cache depends {metapackage}")
    for line in out.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    raise ImageBuildError(
        f"apt does not know {metapackage}: run `apt-get update` (or `python -m harness doctor "
        "--install`)"
    )


def _apt_field(package: str, field: str) -> str:
    out = run_tool(["apt-cache", "show", "--no-all-versions", package], f"apt-cache show {package}")
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise ImageBuildError(f"apt-cache show {package} has no {field} field")

