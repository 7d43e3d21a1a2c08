"""A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs.

Written here so building an initramfs needs neither root nor the cpio tool.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import BinaryIO

_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    path: str  # relative, no leading slash
    mode: int  # full st_mode, type bits included
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node


def _header(ino: int, entry: Entry, nlink: int) -> bytes:
    name = entry.path.encode() + b"\0"
    major, minor = entry.rdev
    fields = [ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, major, minor, len(name), 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields) + name


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def write(out: BinaryIO, entries: list[Entry]) -> None:
    """Write ``entries`` in order (parents before children), then the trailer."""
    for ino, entry in enumerate([*entries, Entry(_TRAILER, 0)], start=1):
        is_dir = stat.S_ISDIR(entry.mode)
        head = _header(ino if entry.path != _TRAILER else 0, entry, 2 if is_dir else 1)
        out.write(head + _pad(len(head)))
        out.write(entry.data + _pad(len(entry.data)))


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def chardev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, rdev=(major, minor))
