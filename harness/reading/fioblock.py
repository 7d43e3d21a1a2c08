"""What a block of a verifying load holds, read from its own bytes (fio's crc32c verify header).

A verify-only pass says only that a block is not the write fio's saved state expects there.
A write that failed or was in flight when the device went away may rightly read back as its
old data or its new data; what it must never read back as is another block's data or
garbage. This tells them apart on the host: ``unwritten`` (zeros: the region starts empty),
``written`` (a whole, intact fio block whose header names this very offset: the new write, or
an older one to the same place), ``foreign`` (an intact fio block written for another
offset) or ``garbage`` (anything else: a torn or corrupted block).

The layout is fio's ``struct verify_header`` (little endian), then the crc32c of the data
(fio 3.x, ``verify=crc32c``): magic 0xacca, verify type, length, random seed, offset, time
(s, ns), thread, number of the write, crc32c of the header up to that field; then the data's
crc32c, then the data. fio's crc32c starts from ~0 and is not inverted at the end.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("<HHIQQIIHHI")
MAGIC = 0xACCA
CRC32C_TYPES = (4, 5)  # VERIFY_CRC32C, VERIFY_CRC32C_INTEL (fio picks by the CPU)
HEADER_CRC_LEN = HEADER.size - 4  # the header's crc32c covers the fields before it
DATA_AT = HEADER.size + 4  # after the header and the data's crc32c


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """fio's crc32c (Castagnoli, seeded with ~0, not inverted at the end)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


@dataclass(frozen=True)
class BlockState:
    kind: str  # unwritten, written, foreign or garbage
    detail: str = ""

    @property
    def old_or_new(self) -> bool:
        """What a failed or interrupted write may rightly leave behind."""
        return self.kind in ("unwritten", "written")

    def __str__(self) -> str:
        return f"{self.kind} ({self.detail})" if self.detail else self.kind


def classify(block: bytes, offset: int) -> BlockState:
    """What ``block``, read at byte ``offset`` of the device, holds."""
    if not block:
        return BlockState("garbage", "nothing could be read back")
    if not block.strip(b"\0"):
        return BlockState("unwritten")
    if len(block) < DATA_AT:
        return BlockState("garbage", f"{len(block)} bytes, too short for a header")
    magic, vtype, length, _seed, at, _s, _ns, _thread, _number, crc = HEADER.unpack_from(block)
    if magic != MAGIC:
        return BlockState("garbage", f"no fio header (magic {magic:#06x})")
    if crc32c(block[:HEADER_CRC_LEN]) != crc:
        return BlockState("garbage", "fio header with a bad crc")
    if vtype not in CRC32C_TYPES or length != len(block):
        return BlockState("garbage", f"fio header of verify type {vtype}, length {length}, "
                                     f"in a block of {len(block)}")
    data_crc = struct.unpack_from("<I", block, HEADER.size)[0]
    if crc32c(block[DATA_AT:]) != data_crc:
        return BlockState("garbage", f"a header for offset {at} over data that does not "
                                     "match its crc (a torn or corrupted block)")
    if at != offset:
        return BlockState("foreign", f"an intact block written for offset {at}")
    return BlockState("written")
