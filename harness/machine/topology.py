"""The NVMe topology a test needs, declared by a pytest marker or a CLI option.

A :class:`Topology` is a frozen value: equal topologies can share a VM, and its string form is
the key under which a VM (and later a snapshot) is reused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BadInput

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# ASCII only: str.isdigit() and \d accept digits such as '²' that int() refuses, and
# re.IGNORECASE alone matches the Kelvin sign as a K.
_SIZE_RE = re.compile(r"^\s*([0-9]+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE | re.ASCII)
_INTEGER_RE = re.compile(r"\s*([0-9]+)\s*", re.ASCII)
MAX_DIGITS = 20  # beyond any count or size here; int() refuses over 4300 digits

BLOCK_SIZES = (512, 4096)
MAX_CONTROLLERS = 8
MAX_NAMESPACES = 16
MAX_IO_QUEUES = 64
MIN_MEMORY = 256 << 20
LINK_SPEEDS = ("", "2.5", "5", "8", "16")  # GT/s; "": QEMU's default
# A namespace's backing file is sparse; ext4 refuses files of 16T and more (EFBIG).
MAX_NAMESPACE_SIZE = 8 << 40


def _integer(text: str, what: str) -> int:
    """``text`` as a decimal integer of ASCII digits."""
    m = _INTEGER_RE.fullmatch(text)
    if not m:
        raise BadInput(f"{what} must be an integer, not {text.strip()!r}")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > MAX_DIGITS:
        raise BadInput(f"{what} {digits[:MAX_DIGITS]}... has more than {MAX_DIGITS} digits")
    return int(digits)


def parse_size(text: str | int, what: str = "size") -> int:
    """Parse ``"1G"``, ``"512M"``, ``"4096"`` (bytes) or an int into bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise BadInput(f"bad {what} {text!r}: expected a number with an optional K/M/G/T suffix")
    return _integer(m.group(1), what) * _UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n % _UNITS[unit] == 0 and n >= _UNITS[unit]:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)


@dataclass(frozen=True)
class Namespace:
    size: int = 1 << 30
    block_size: int = 512
    # Created but attached to no controller: the guest attaches it (nvme attach-ns). Only in
    # a subsystem, where namespaces exist apart from controllers.
    detached: bool = False

    def __post_init__(self) -> None:
        if self.block_size not in BLOCK_SIZES:
            raise BadInput(
                f"namespace block size {self.block_size} is not one of "
                f"{', '.join(map(str, BLOCK_SIZES))}"
            )
        if self.size < 1 << 20 or self.size % self.block_size:
            raise BadInput(
                f"namespace size {self.size} must be at least 1M and a multiple of its "
                f"block size {self.block_size}"
            )
        if self.size > MAX_NAMESPACE_SIZE:
            raise BadInput(f"namespace size {format_size(self.size)} is larger than the maximum "
                           f"{format_size(MAX_NAMESPACE_SIZE)}")

    @classmethod
    def parse(cls, spec: str) -> Namespace:
        """``SIZE[:BLOCKSIZE][:detached]``, e.g. ``1G``, ``256M:4096``, ``512M:detached``."""
        size, *rest = [p.strip() for p in spec.split(":")]
        detached = bool(rest) and rest[-1].lower() == "detached"
        if detached:
            rest.pop()
        if len(rest) > 1 or (rest and not _INTEGER_RE.fullmatch(rest[0])):
            raise BadInput(f"bad namespace {spec!r}: expected SIZE[:BLOCKSIZE][:detached]")
        block_size = _integer(rest[0], "namespace block size") if rest else 512
        return cls(parse_size(size, "namespace size"), block_size, detached)

    def __str__(self) -> str:
        return f"{format_size(self.size)}:{self.block_size}" + (":detached" * self.detached)


@dataclass(frozen=True)
class Controller:
    namespaces: tuple[Namespace, ...] = (Namespace(),)
    io_queues: int = 0  # QEMU's max_ioqpairs; 0 means QEMU's default (64)

    def __post_init__(self) -> None:
        if not 1 <= len(self.namespaces) <= MAX_NAMESPACES:
            raise BadInput(f"a controller needs 1 to {MAX_NAMESPACES} namespaces")
        if not 0 <= self.io_queues <= MAX_IO_QUEUES:
            raise BadInput(f"io_queues must be between 0 (QEMU default) and {MAX_IO_QUEUES}")


@dataclass(frozen=True)
class Topology:
    controllers: tuple[Controller, ...] = (Controller(),)
    cpus: int = 1
    memory: int = 1 << 30
    kernel_args: tuple[str, ...] = field(default=())
    # One NVM subsystem that every controller belongs to: its namespaces (the first
    # controller's list) are shared by all of them, and may start detached.
    subsystem: bool = False
    # The harness's SSH session over a virtio-serial port (True) or the virtual network. A
    # port's byte stream does not survive the guest's suspend (virtio_console drops what it
    # holds and reports the host side closed); TCP's retransmissions do.
    ssh_relay: bool = True
    # The link speed of each controller's root port in GT/s, "" for QEMU's (16). A port of
    # 2.5 GT/s has no Data Link Layer Link Active reporting, so after resetting its link (the
    # recovery of a fatal PCIe error) the kernel waits a fixed time, not for a link-active
    # bit that QEMU's faster ports advertise but never set.
    link_speed: str = ""

    def __post_init__(self) -> None:
        if self.link_speed not in LINK_SPEEDS:
            raise BadInput(f"link_speed must be one of {', '.join(LINK_SPEEDS[1:])} (GT/s), "
                           f"not {self.link_speed!r}")
        if not 1 <= len(self.controllers) <= MAX_CONTROLLERS:
            raise BadInput(f"controllers must be between 1 and {MAX_CONTROLLERS}")
        detached = any(ns.detached for c in self.controllers for ns in c.namespaces)
        if detached and not self.subsystem:
            raise BadInput("a detached namespace needs subsystem=on (outside a subsystem a "
                           "namespace belongs to its controller)")
        if self.subsystem and len(set(c.namespaces for c in self.controllers)) > 1:
            raise BadInput("the controllers of a subsystem share its namespaces: declare them "
                           "once")
        host_cpus = os.cpu_count() or 1
        if not 1 <= self.cpus <= max(host_cpus, 8):
            raise BadInput(f"cpus must be between 1 and {max(host_cpus, 8)}, not {self.cpus}")
        if self.memory < MIN_MEMORY:
            raise BadInput(f"memory {format_size(self.memory)} is below the minimum 256M")

    @classmethod
    def build(
        cls,
        controllers: int = 1,
        namespaces: int | str | list[str] | tuple[str, ...] = 1,
        io_queues: int = 0,
        cpus: int = 1,
        memory: str | int = "1G",
        kernel_args: str | list[str] | tuple[str, ...] = (),
        subsystem: bool | str = False,
        ssh_relay: bool = True,
        link_speed: str = "",
    ) -> Topology:
        """Build from the marker's keywords; every controller gets the same namespaces.

        ``namespaces`` is a count (1G, 512-byte blocks each) or a list of ``SIZE[:BS]``.
        """
        # Counts are checked before building: a huge one would take minutes and all memory.
        if isinstance(namespaces, int):
            if namespaces < 1:
                raise BadInput("namespaces must be at least 1")
            if namespaces > MAX_NAMESPACES:
                raise BadInput(f"a controller needs 1 to {MAX_NAMESPACES} namespaces")
            ns = tuple(Namespace() for _ in range(namespaces))
        else:
            specs = namespaces.split("+") if isinstance(namespaces, str) else list(namespaces)
            ns = tuple(Namespace.parse(s) for s in specs)
        if not isinstance(controllers, int) or controllers < 1:
            raise BadInput(f"controllers must be a positive integer, not {controllers!r}")
        if controllers > MAX_CONTROLLERS:
            raise BadInput(f"controllers must be between 1 and {MAX_CONTROLLERS}")
        if isinstance(kernel_args, str):
            kernel_args = tuple(kernel_args.split())
        if isinstance(subsystem, str):
            if subsystem.lower() not in ("on", "off", "1", "0", "yes", "no", "true", "false"):
                raise BadInput(f"subsystem must be on or off, not {subsystem!r}")
            subsystem = subsystem.lower() in ("on", "1", "yes", "true")
        ctrl = Controller(ns, io_queues)
        return cls(tuple(ctrl for _ in range(controllers)), cpus, parse_size(memory, "memory"),
                   tuple(kernel_args), subsystem, ssh_relay, str(link_speed).strip())

    @classmethod
    def parse(cls, spec: str) -> Topology:
        """Parse the CLI form, e.g. ``controllers=2,namespaces=1G+256M:4096,cpus=2``.

        Kernel arguments may hold commas (``kernel_args=module_blacklist=a,b``): an item that
        does not start with a topology key continues the ``kernel_args`` before it.
        """
        kwargs: dict[str, Any] = {}
        ints = {"controllers", "io_queues", "cpus"}
        keys = ints | {"namespaces", "memory", "kernel_args", "subsystem", "link_speed"}
        last = ""
        for item in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if last == "kernel_args" and not (sep and key in keys):
                kwargs[last] += "," + item
                continue
            last = key
            if not sep or key not in keys:
                raise BadInput(
                    f"bad topology item {item!r}: expected KEY=VALUE with KEY one of "
                    "controllers, namespaces, io_queues, cpus, memory, kernel_args, subsystem, "
                    "link_speed"
                )
            if key in ints or (key == "namespaces" and _INTEGER_RE.fullmatch(value)):
                kwargs[key] = _integer(value, key)
            else:
                kwargs[key] = value.strip()
        return cls.build(**kwargs)

    def __str__(self) -> str:
        ctrls = ";".join(
            "+".join(map(str, c.namespaces)) + (f"/q{c.io_queues}" if c.io_queues else "")
            for c in self.controllers
        )
        extra = f",args={' '.join(self.kernel_args)}" if self.kernel_args else ""
        subsys = ",subsystem" if self.subsystem else ""
        ssh = "" if self.ssh_relay else ",ssh=tcp"
        link = f",link={self.link_speed}GT/s" if self.link_speed else ""
        return (f"cpus={self.cpus},mem={format_size(self.memory)},nvme=[{ctrls}]{subsys}{ssh}"
                f"{link}{extra}")

    def block_devices(self, ctrl: int) -> list[str]:
        """The guest's block devices of controller ``ctrl``'s namespaces (``nvme0n1``, ...).
        Not for a subsystem: Linux names its namespaces after the subsystem's number, which
        is the number of whichever controller identified itself first (see
        :func:`harness.guest.nvme.block_device_of`)."""
        assert not self.subsystem, "a subsystem's block device names are known in the guest"
        return [f"nvme{ctrl}n{j}" for j in range(1, len(self.controllers[ctrl].namespaces) + 1)]

    def attached_nsids(self) -> list[int]:
        """The subsystem's namespaces attached at start."""
        return [j for j, ns in enumerate(self.controllers[0].namespaces, start=1)
                if not ns.detached]


DEFAULT = Topology()
