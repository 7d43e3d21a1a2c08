"""What a block of a verifying load holds, judged on a block real fio 3.33 wrote.

The data file is the 4 KiB block fio 3.33 (``verify=crc32c``, the guest's fio) wrote at byte
40960 of a file with guests/fio/verify-load.fio, copied as it was.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.reading.fioblock import classify, crc32c

DATA = Path(__file__).parent / "data"
AT = 40960
BLOCK = (DATA / f"fio-3.33-crc32c-block-at-{AT}.bin").read_bytes()


def test_crc32c_is_fios():
    # fio's crc32c: Castagnoli from ~0, not inverted (the standard check value is 0xe3069283
    # with the final inversion)
    assert crc32c(b"123456789") ^ 0xFFFFFFFF == 0xE3069283


def test_the_block_fio_wrote_here_is_written():
    state = classify(BLOCK, AT)
    assert state.kind == "written" and state.old_or_new


def test_zeros_are_unwritten():
    assert classify(bytes(4096), AT).kind == "unwritten"
    assert classify(bytes(4096), AT).old_or_new


def test_an_intact_block_for_another_offset_is_foreign():
    state = classify(BLOCK, AT + 4096)
    assert state.kind == "foreign" and not state.old_or_new
    assert f"offset {AT}" in state.detail


@pytest.mark.parametrize("where", [0, 20, 36, 44, 512, 4095])
def test_any_changed_byte_makes_garbage(where: int):
    block = bytearray(BLOCK)
    block[where] ^= 0x01
    state = classify(bytes(block), AT)
    assert state.kind == "garbage" and not state.old_or_new, (where, state)


def test_a_torn_block_new_header_old_sectors_is_garbage():
    torn = BLOCK[:512] + bytes(4096 - 512)
    state = classify(torn, AT)
    assert state.kind == "garbage" and "torn" in state.detail


def test_random_bytes_are_garbage():
    rng = random.Random(1)
    assert classify(rng.randbytes(4096), AT).kind == "garbage"
    assert classify(b"\xca\xac" + rng.randbytes(4094), AT).kind == "garbage"


def test_a_short_or_empty_read_is_garbage():
    assert classify(BLOCK[:20], AT).kind == "garbage"
    assert classify(b"", AT).kind == "garbage"
