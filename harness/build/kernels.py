"""Guest kernels: a Debian kernel package (or a user's kernel) made ready for direct boot.

A kernel is ready when the harness has its boot image (the uncompressed ELF ``vmlinux`` where
it can be extracted: it boots through PVH and skips the in-guest decompressor, which is most
of a cold boot under TCG), its ``lib/modules/<release>`` tree with ``modules.dep``, and an
ext4 image of that tree that the guest mounts read-only.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.build import apt
from harness.errors import BadInput, HostNotReady, ImageBuildError
from harness.progress import Progress
from harness.util import digest, find_tool, run_tool

BUILDER_VERSION = "kernel-2"  # bump when the extraction below changes


@dataclass(frozen=True)
class KernelImage:
    spec: str  # what the user asked for: "debian:6.1" or a path
    key: str  # cache key: identifies exactly this kernel build
    release: str  # `uname -r` in the guest
    boot_image: Path  # vmlinux (PVH ELF) or bzImage
    modules_dir: Path  # host copy of lib/modules/<release>
    modules_image: Path  # ext4 image holding <release>/..., mounted at /usr/lib/modules
    suite: str | None = None  # Debian suite of a debian:* kernel (where its headers live)
    build_tree: Path | None = None  # a user's kernel build tree (out-of-tree modules build here)
    # The upstream version of a distribution's kernel package ("6.1.192" of Debian's 6.1.192-3,
    # whose release is 6.1.0-57-amd64); None for a kernel the user built
    version: str | None = None

    @property
    def config(self) -> Path | None:
        cfg = self.boot_image.parent / "config"
        return cfg if cfg.exists() else None

    @property
    def builtin(self) -> frozenset[str]:
        """Names of the modules compiled into the kernel (``-`` spelled ``_``)."""
        return builtin_modules(self.modules_dir)


def known_kernels() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((paths.IMAGES / "kernels.json").read_text())
    data.pop("comment", None)
    return data


def required_modules() -> dict[str, str]:
    """Every module the guest loads (initramfs and stage 2), with the option that builds it."""
    data = json.loads((paths.IMAGES / "initramfs.json").read_text())
    need: dict[str, str] = data["required"]
    return need


def get(spec: str, progress: Progress) -> KernelImage:
    """Resolve ``spec`` to a kernel ready to boot, building if needed.

    ``spec`` is ``debian:VERSION``; a kernel build tree; a directory laid out like an installed
    kernel (``boot/vmlinuz-REL`` and ``lib/modules/REL``); or a bzImage file, optionally
    followed by ``,MODULES_DIR``.
    """
    validate(spec)
    if spec.startswith("debian:"):
        return _debian_kernel(spec, progress)
    image_part, _, modules_part = spec.partition(",")
    path = Path(image_part).expanduser().resolve()
    if path.is_file():
        return _kernel_from_bzimage(spec, path, modules_part, progress)
    if (path / "Makefile").exists() and (path / ".config").exists():
        return _kernel_from_build_tree(spec, path, progress)
    return _kernel_from_install_dir(spec, path, progress)


def debian_release(spec: str) -> str:
    """The release ``debian:VERSION`` stands for today (the suite's newest of that series)."""
    return _debian_package(spec)[1].removeprefix("linux-image-")


def _debian_package(spec: str) -> tuple[apt.Suite, str, str]:
    kernels = known_kernels()
    if spec not in kernels:
        raise BadInput(f"unknown kernel {spec!r}: choose one of {', '.join(sorted(kernels))}, "
                       "or give a path")
    suite = apt.Suite(kernels[spec]["suite"])
    package = suite.depends_on(kernels[spec]["metapackage"], "linux-image-")
    return suite, package, suite.field(package, "Version")


def validate(spec: str) -> None:
    """Refuse a kernel spec that cannot work, before anything is fetched or booted."""
    if spec.startswith("debian:"):
        if spec not in known_kernels():
            raise BadInput(f"unknown kernel {spec!r}: choose one of "
                           f"{', '.join(sorted(known_kernels()))}, or give a path")
    else:
        try:  # "~nobody/x" names no home, a name may be longer than the file system takes
            exists = Path(spec.partition(",")[0]).expanduser().exists()
        except (RuntimeError, OSError) as exc:
            raise BadInput(f"kernel {spec!r} is not a usable path: {exc}") from None
        if not exists:
            raise BadInput(f"kernel {spec!r} does not exist (give debian:VERSION, a kernel "
                           "build tree, an install directory or a bzImage)")


def _debian_kernel(spec: str, progress: Progress) -> KernelImage:
    suite, package, version = _debian_package(spec)
    key = f"{package}_{version}-{BUILDER_VERSION}"
    dest = paths.cache_dir() / "kernels" / key
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                progress.step(f"fetching kernel {package} {version} from Debian {suite.name}")
                with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                    deb = suite.download([f"{package}={version}"], Path(tmp))[0]
                    root = Path(tmp) / "root"
                    run_tool(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
                    release = package.removeprefix("linux-image-")
                    _prepare(spec, dest, progress, release,
                             boot=root / "boot" / f"vmlinuz-{release}",
                             moddir=_modules_dir(root, release),
                             config=root / "boot" / f"config-{release}")
    return _load(spec, key, dest, suite=suite.name,
                 version=re.split(r"[-+~]", version.partition(":")[2] or version)[0])


def _kernel_from_install_dir(spec: str, path: Path, progress: Progress) -> KernelImage:
    """A directory laid out like an installed kernel: boot/vmlinuz-REL and lib/modules/REL."""
    images = sorted((path / "boot").glob("vmlinuz-*"))
    if not images:
        raise BadInput(
            f"kernel {spec!r} is not usable: expected a kernel build tree (Makefile, .config), "
            "a directory holding boot/vmlinuz-RELEASE and lib/modules/RELEASE, or a bzImage"
        )
    boot = images[-1]
    release = boot.name.removeprefix("vmlinuz-")
    key = _path_key(path, boot)
    dest = paths.cache_dir() / "kernels" / key
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                _prepare(spec, dest, progress, release, boot=boot,
                         moddir=_modules_dir(path, release, spec),
                         config=path / "boot" / f"config-{release}")
    return _load(spec, key, dest)


def _kernel_from_bzimage(spec: str, path: Path, modules: str,
                         progress: Progress) -> KernelImage:
    """A bzImage file; its modules given after a comma, or found where an install puts them."""
    release = bzimage_release(path.read_bytes()[:0x10000])
    if release is None:
        raise BadInput(f"kernel {str(path)!r} is not a bzImage (no Linux boot header)")
    candidates = ([Path(modules).expanduser().resolve()] if modules else
                  [path.parent / "lib" / "modules" / release,
                   path.parent.parent / "lib" / "modules" / release,
                   Path("/lib/modules") / release])
    moddir = next((c for c in candidates if (c / "modules.order").exists()
                   or (c / "modules.dep").exists()), None)
    if moddir is None:
        raise BadInput(f"kernel {str(path)!r} ({release}): no modules directory for it; give "
                       f"one after a comma: --kernel {path},/path/to/lib/modules/{release}")
    key = _path_key(path, path, moddir)
    dest = paths.cache_dir() / "kernels" / key
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                _prepare(spec, dest, progress, release, boot=path, moddir=moddir,
                         config=path.parent / f"config-{release}")
    return _load(spec, key, dest)


def _kernel_from_build_tree(spec: str, tree: Path, progress: Progress) -> KernelImage:
    """A tree where ``make`` built a kernel: boot its vmlinux (PVH) or bzImage, and install
    its modules into the cache with ``make modules_install``."""
    bzimage = tree / "arch" / "x86" / "boot" / "bzImage"
    rel_file = tree / "include" / "config" / "kernel.release"
    if not bzimage.exists() or not rel_file.exists():
        raise BadInput(f"kernel tree {str(tree)!r} is not built: no arch/x86/boot/bzImage "
                       "(run make, or `python -m harness kernel build`)")
    release = rel_file.read_text().strip()
    config = tree / ".config"
    key = _path_key(tree, bzimage, config)
    dest = paths.cache_dir() / "kernels" / key
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                    root = Path(tmp)
                    if "CONFIG_MODULES=y" in config.read_text():
                        progress.step(f"installing the modules of {tree}")
                        run_tool(["make", "-C", str(tree), "-s", "modules_install",
                                  f"INSTALL_MOD_PATH={root}", "INSTALL_MOD_STRIP=1"],
                                 f"make modules_install in {tree}")
                    moddir = root / "lib" / "modules" / release
                    moddir.mkdir(parents=True, exist_ok=True)
                    for name in ("modules.builtin", "modules.order"):
                        if not (moddir / name).exists() and (tree / name).exists():
                            shutil.copy2(tree / name, moddir / name)
                    vmlinux = tree / "vmlinux"
                    pvh = "CONFIG_PVH=y" in config.read_text() and vmlinux.exists()
                    _prepare(spec, dest, progress, release, boot=vmlinux if pvh else bzimage,
                             moddir=moddir, config=config)
    return _load(spec, key, dest, build_tree=tree)


def _path_key(*files: Path) -> str:
    return "path-" + digest(*(str(f).encode() + b"@" + str(f.stat().st_mtime_ns).encode()
                              for f in files), BUILDER_VERSION.encode())


def _modules_dir(root: Path, release: str, spec: str = "") -> Path:
    for base in (root / "lib" / "modules", root / "usr" / "lib" / "modules"):
        if (base / release).is_dir():
            return base / release
    raise BadInput(f"kernel {spec or release} has no modules directory lib/modules/{release}")


def _prepare(spec: str, dest: Path, progress: Progress, release: str, boot: Path,
             moddir: Path, config: Path) -> None:
    """Fill ``dest``: boot image, config, a private copy of the modules (uncompressed, with
    modules.dep) and the ext4 image of it. Refuses a kernel lacking a module the guest needs."""
    if not boot.exists():
        raise ImageBuildError(f"kernel {spec}: no boot image {boot}")
    work = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    progress.step(f"preparing kernel {release}")
    data = boot.read_bytes()
    vmlinux = data if data[:4] == b"\x7fELF" else extract_vmlinux(data)
    if vmlinux is not None:
        (work / "vmlinux").write_bytes(vmlinux)
    else:
        shutil.copy2(boot, work / "bzImage")
    if config.exists():
        shutil.copy2(config, work / "config")
    root = work / "root"
    modules = root / "lib" / "modules" / release
    shutil.copytree(moddir, modules, symlinks=False,
                    ignore=shutil.ignore_patterns("build", "source"))
    decompress_modules(modules)
    run_tool([depmod_path(), "-b", str(root), release], f"depmod for {release}")
    check_required_modules(spec, modules)
    final = work / "modules"
    os.rename(root / "lib" / "modules", final)
    shutil.rmtree(root)
    progress.step(f"building modules image for {release}")
    make_ext4(final, work / "modules.img", label="nvmeh-modules")
    (work / "release").write_text(release + "\n")
    (work / "done").write_text("")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(work, dest)


def decompress_modules(moddir: Path) -> None:
    """Store every module uncompressed: then neither the initramfs's busybox nor the guest's
    kmod needs to know the compression a distribution chose (trixie: xz)."""
    for path in moddir.rglob("*.ko.*"):
        suffix = path.suffix
        if suffix == ".xz":
            data = lzma.decompress(path.read_bytes())
        elif suffix == ".gz":
            data = gzip.decompress(path.read_bytes())
        elif suffix == ".zst":
            zstd = find_tool("zstd")
            if zstd is None:
                raise HostNotReady("zstd is missing (the kernel's modules are zstd-compressed):"
                                   " apt-get install zstd")
            data = subprocess.run([zstd, "-dc", str(path)], check=True,
                                  capture_output=True).stdout
        else:
            continue
        path.with_suffix("").write_bytes(data)
        path.unlink()


def builtin_modules(moddir: Path) -> frozenset[str]:
    listing = moddir / "modules.builtin"
    if not listing.exists():
        return frozenset()
    return frozenset(module_name(line.strip()) for line in listing.read_text().splitlines()
                     if line.strip())


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    for suffix in (".xz", ".zst", ".gz"):
        base = base.removesuffix(suffix)
    return base.removesuffix(".ko").replace("-", "_")


def check_required_modules(spec: str, moddir: Path) -> None:
    dep = moddir / "modules.dep"
    present = {module_name(line.partition(":")[0])
               for line in (dep.read_text().splitlines() if dep.exists() else [])}
    present |= builtin_modules(moddir)
    missing = [f"{name} ({option})" for name, option in required_modules().items()
               if name.replace("-", "_") not in present]
    if missing:
        raise BadInput(f"kernel {spec} lacks what the guest needs, neither built in nor a "
                       f"module: {', '.join(missing)}")


def _load(spec: str, key: str, dest: Path, suite: str | None = None,
          build_tree: Path | None = None, version: str | None = None) -> KernelImage:
    release = (dest / "release").read_text().strip()
    boot = dest / "vmlinux" if (dest / "vmlinux").exists() else dest / "bzImage"
    return KernelImage(spec, key, release, boot, dest / "modules" / release,
                       dest / "modules.img", suite=suite, build_tree=build_tree,
                       version=version)


def bzimage_release(header: bytes) -> str | None:
    """The release (``uname -r``) a bzImage announces in its setup header, or None."""
    if len(header) < 0x210 or header[0x202:0x206] != b"HdrS":
        return None
    offset = int.from_bytes(header[0x20E:0x210], "little") + 0x200
    end = header.find(b"\0", offset)
    if offset >= len(header) or end < 0:
        return None
    words = header[offset:end].decode(errors="replace").split()
    return words[0] if words else None


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage (xz, gzip or zstd payload), or None.

    The payload is located through the setup header (boot protocol 2.08+), so trailing data
    after it does not upset the decompressor."""
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        return None
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start:start + length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.LZMADecompressor().decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
        elif payload.startswith(b"\x28\xb5\x2f\xfd") and (zstd := find_tool("zstd")):
            elf = subprocess.run([zstd, "-dcq"], input=payload, capture_output=True).stdout
        else:
            return None
    except (lzma.LZMAError, zlib.error):
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
