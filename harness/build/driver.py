"""A patched NVMe host driver, built out of tree against the guest kernel, loaded instead of
the stock one (``--nvme-src DIR``).

DIR holds the kernel's ``drivers/nvme/host`` sources. For a Debian kernel the build runs in a
build root of the kernel's own suite (mmdebstrap: its ``linux-headers`` package and the very
compiler the kernel was built with), so a bookworm host builds for bullseye's gcc 10 and
trixie's gcc 14 alike. For a user's kernel build tree the build runs in that tree. Results are
cached by a hash of the sources and the kernel; only ``nvme-core.ko`` and ``nvme.ko`` are built.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.build import apt
from harness.build.kernels import KernelImage, module_name
from harness.errors import BadInput, HarnessError, HostNotReady, ImageBuildError
from harness.progress import Progress
from harness.util import digest

BUILDER_VERSION = "driver-1"
BUILDROOT_VERSION = "buildroot-1"
MODULES = ("nvme-core", "nvme")  # what the guest loads from a --nvme-src build, in order
# Everything else the host driver's Makefile can build is switched off on make's command line.
OFF = ("CONFIG_NVME_FABRICS", "CONFIG_NVME_RDMA", "CONFIG_NVME_FC", "CONFIG_NVME_TCP",
       "CONFIG_NVME_APPLE")


class DriverBuildError(HarnessError):
    """The driver sources did not compile; ``detail`` is the compiler's output as printed."""


@dataclass(frozen=True)
class Driver:
    source: Path  # the user's sources
    hash: str  # of the sources and the kernel: the cache key
    modules: tuple[Path, ...]  # built .ko files, in load order
    depends: tuple[str, ...]  # stock modules they need, loaded first (by stage 1)
    srcversions: dict[str, str]  # module name -> srcversion, to check what the guest loaded
    seconds: float  # how long the build took (0 when it came from the cache)


def source_files(src: Path) -> list[Path]:
    """What a build reads from ``src``: the sources and the make files."""
    return sorted(p for p in src.rglob("*") if p.is_file() and _is_source(p))


def source_hash(src: Path) -> str:
    return digest(*(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes()
                    for p in source_files(src)))


def _is_source(path: Path) -> bool:
    return path.suffix in (".c", ".h") or path.name in ("Makefile", "Kbuild", "Kconfig")


def check_source(src: Path, option: str = "--nvme-src") -> None:
    """Refuse, in one line naming it, a directory that holds no driver sources."""
    if not (src / "Makefile").exists() or not any(src.glob("*.c")):
        raise BadInput(f"{option} {src}: not a driver source directory (expected "
                       "drivers/nvme/host: a Makefile and the .c files)")


def build(src: Path, kernel: KernelImage, progress: Progress) -> Driver:
    """The driver built from ``src`` for ``kernel``, from the cache when the sources are known."""
    src = src.expanduser().resolve()
    check_source(src)
    key = digest(BUILDER_VERSION.encode(), kernel.key.encode(), source_hash(src).encode())
    return cached(src, key, lambda dest: _build(src, kernel, dest, progress))


def cached(src: Path, key: str, make: Callable[[Path], float]) -> Driver:
    """The driver under ``key`` in the cache, made first by ``make(dest)`` (which returns its
    seconds) when it is not there."""
    dest = paths.cache_dir() / "drivers" / key
    seconds = 0.0
    if not (dest / "done").exists():
        with paths.locked(dest.with_suffix(".lock")):
            if not (dest / "done").exists():
                seconds = make(dest)
    mods = tuple(dest / f"{name}.ko" for name in MODULES)
    info = {m: modinfo(m) for m in mods}
    ours = {module_name(m.name) for m in mods}
    depends: list[str] = []
    for m in mods:
        for dep in info[m].get("depends", "").split(","):
            if dep and module_name(dep) not in ours and dep not in depends:
                depends.append(dep)
    return Driver(src, key, mods, tuple(depends),
                  {module_name(m.name): info[m].get("srcversion", "") for m in mods}, seconds)


def make_arguments(jobs: str) -> list[str]:
    """make's arguments after -C and M=: only nvme-core.ko and nvme.ko."""
    return ["modules", f"-j{jobs}", *(f"{opt}=" for opt in OFF)]


def keep(built: Path, output: str, src: Path, dest: Path) -> None:
    """Move the modules built in ``built`` into the cache entry ``dest``, with the build's
    output; refuse a build that made no modules."""
    missing = [m for m in MODULES if not (built / f"{m}.ko").exists()]
    if missing:
        raise DriverBuildError(f"building {src} made no {', '.join(missing)}.ko: is it "
                               "drivers/nvme/host?", output)
    staging = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for m in MODULES:
        shutil.copy2(built / f"{m}.ko", staging / f"{m}.ko")
    (staging / "build.log").write_text(output)
    (staging / "source").write_text(f"{src}\n")
    (staging / "done").write_text("")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(staging, dest)


def _build(src: Path, kernel: KernelImage, dest: Path, progress: Progress) -> float:
    t0 = time.monotonic()
    make_args = make_arguments(str(os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="nvmeh-driver-") as tmp:
        if kernel.build_tree is not None:
            work = Path(tmp) / "src"
            shutil.copytree(src, work)
            inside = str(work)
            cmd = ["make", "-C", str(kernel.build_tree), f"M={work}", *make_args]
        elif kernel.suite is not None:
            root = build_root(kernel, progress)
            work = Path(tempfile.mkdtemp(prefix="build-", dir=root / "tmp"))
            try:
                shutil.copytree(src, work, dirs_exist_ok=True)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
            inside = "/" + str(work.relative_to(root))
            cmd = ["chroot", str(root), "make", "-C", f"/usr/src/linux-headers-{kernel.release}",
                   f"M={inside}", *make_args]
        else:
            raise BadInput(f"--nvme-src needs the kernel's headers: use a debian:* kernel or a "
                           f"kernel build tree, not {kernel.spec}")
        progress.step(f"building the NVMe driver from {src} for {kernel.release}")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "LC_ALL": "C"})
            # The compiler names the build copy; name the user's files instead.
            output = (proc.stdout + proc.stderr).replace(f"{inside}/", f"{src}/")
            if proc.returncode != 0:
                raise DriverBuildError(
                    f"the NVMe driver from {src} does not compile for {kernel.release} "
                    "(compiler output below)", output)
            keep(work, output, src, dest)
        finally:
            if kernel.build_tree is None:
                shutil.rmtree(work, ignore_errors=True)
    return time.monotonic() - t0


def build_root(kernel: KernelImage, progress: Progress) -> Path:
    """A root of the kernel's Debian suite holding its headers and its compiler."""
    assert kernel.suite is not None
    if os.geteuid() != 0:
        raise HostNotReady("building a driver for a Debian kernel runs make in a chroot: run "
                           "as root (or use a kernel build tree as --kernel)")
    headers = f"linux-headers-{kernel.release}"
    version = apt.Suite(kernel.suite).field(headers, "Version")
    key = f"{kernel.suite}-{kernel.release}-{version}-{BUILDROOT_VERSION}"
    root = paths.cache_dir() / "buildroots" / key
    if (root / "done").exists():
        return root / "root"
    if not shutil.which("mmdebstrap"):
        raise HostNotReady("mmdebstrap is missing: run `python -m harness doctor --install`")
    with paths.locked(root.with_suffix(".lock")):
        if (root / "done").exists():
            return root / "root"
        progress.step(f"making a {kernel.suite} build root with {headers} (once, about "
                      "2 minutes)")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        cmd = ["mmdebstrap", "--mode=root", "--variant=minbase",
               f"--include={headers}={version},make",
               "--aptopt=APT::Install-Recommends \"false\"",
               *(f"--dpkgopt=path-exclude={p}" for p in
                 ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*")),
               kernel.suite, str(root / "root"), apt.Suite(kernel.suite).sources_list()]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise ImageBuildError(f"making the {kernel.suite} build root for {headers} failed",
                                  (proc.stdout + proc.stderr)[-4000:])
        (root / "done").write_text("")
    return root / "root"


def modinfo(module: Path) -> dict[str, str]:
    """The key=value strings of a module's .modinfo section (depends, srcversion, vermagic)."""
    info: dict[str, str] = {}
    for item in elf_section(module.read_bytes(), ".modinfo").split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep and name not in info:
            info[name] = value
    return info


def elf_section(elf: bytes, wanted: str) -> bytes:
    """The contents of section ``wanted`` of a 64-bit little-endian ELF file (b"" if absent)."""
    if elf[:5] != b"\x7fELF\x02":
        raise ImageBuildError("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size

    _, str_off, _ = header(shstrndx)
    for i in range(shnum):
        name, offset, size = header(i)
        end = elf.index(b"\0", str_off + name)
        if elf[str_off + name:end].decode() == wanted:
            return elf[offset:offset + size]
    return b""


def stock_sources(kernel: KernelImage, dest: Path, progress: Progress) -> Path:
    """Write the kernel's own ``drivers/nvme/host`` sources (Debian's linux-source package of
    exactly the kernel's version) to ``dest``: the starting point of a patch."""
    tarball = linux_source(kernel, progress)
    cached = tarball.parent / "host"
    if not cached.exists():
        with paths.locked(tarball.parent.with_suffix(".lock")):
            if not cached.exists():
                progress.step(f"extracting drivers/nvme/host from {tarball.name}")
                _extract_nvme_host(tarball, cached)
    _check_empty(dest)
    shutil.copytree(cached, dest, dirs_exist_ok=True)
    return dest


def full_sources(kernel: KernelImage, dest: Path, progress: Progress) -> Path:
    """The whole Debian source tree of ``kernel`` in ``dest`` (for ``kernel build``)."""
    tarball = linux_source(kernel, progress)
    _check_empty(dest)
    dest.mkdir(parents=True, exist_ok=True)
    progress.step(f"extracting {tarball.name} to {dest}")
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest), "--strip-components=1"],
                   check=True)
    progress.done()
    return dest


def _check_empty(dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise BadInput(f"{dest} exists and is not empty")


def linux_source(kernel: KernelImage, progress: Progress) -> Path:
    """Debian's linux-source tarball of exactly the kernel's version, cached."""
    if kernel.suite is None:
        raise BadInput(f"{kernel.spec} is not a Debian kernel: its sources are in its tree")
    suite = apt.Suite(kernel.suite)
    series = ".".join(kernel.release.split(".")[:2])
    package = f"linux-source-{series}"
    image_version = suite.field(f"linux-image-{kernel.release}", "Version")
    version = suite.field(package, "Version")
    if version != image_version:
        raise ImageBuildError(f"Debian {kernel.suite} has {package} {version} but the kernel "
                              f"is {image_version}: run again after the mirror settles")
    where = paths.cache_dir() / "sources" / f"{package}_{version}"
    found = sorted(where.glob("linux-source-*.tar.*"))
    if found:
        return found[0]
    with paths.locked(where.with_suffix(".lock")):
        found = sorted(where.glob("linux-source-*.tar.*"))
        if found:
            return found[0]
        progress.step(f"fetching {package} {version} from Debian {kernel.suite}")
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=where) as tmp:
            deb = suite.download([f"{package}={version}"], Path(tmp))[0]
            root = Path(tmp) / "root"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            tarball = next((root / "usr" / "src").glob("linux-source-*.tar.*"))
            os.rename(tarball, where / tarball.name)
        progress.done()
        return where / tarball.name


def _extract_nvme_host(tarball: Path, cached: Path) -> None:
    out = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = member.name.split("/")
            if parts[1:4] == ["drivers", "nvme", "host"] and len(parts) == 5 \
                    and member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                (out / parts[4]).write_bytes(data.read())
    if not (out / "core.c").exists():
        raise ImageBuildError(f"{tarball.name} has no drivers/nvme/host/core.c")
    os.rename(out, cached)
