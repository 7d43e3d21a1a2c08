import json
from pathlib import Path

import pytest

from harness.guest.fio import (
    FioError,
    bad_blocks,
    block_size,
    failed_writes,
    is_error,
    is_verify_error,
    last_completed,
    parse_json,
    stamped_lines,
)


def _job(name="verify", error=0, total_err=0, wbytes=1 << 20, rbytes=1 << 20):
    return {"jobname": name, "error": error, "total_err": total_err,
            "read": {"io_bytes": rbytes, "iops": 100.0},
            "write": {"io_bytes": wbytes, "iops": 50.0}}


def test_clean_run():
    res = parse_json(json.dumps({"fio version": "fio-3.33", "jobs": [_job(), _job("b")]}))
    assert res.ok and res.write_bytes == 2 << 20 and res.failures == []


def test_error_lines_before_json_are_skipped_and_errors_reported():
    text = "fio: verify failed\n" + json.dumps({"jobs": [_job(error=84)]})
    res = parse_json(text)
    assert not res.ok
    assert res.failures[0].startswith("job verify: error EILSEQ")


def test_continue_on_error_total_err_counts_as_failure():
    res = parse_json(json.dumps({"jobs": [_job(total_err=3)]}))
    assert not res.ok and "3 errors counted" in res.failures[0]


def test_no_jobs_is_not_ok():
    assert not parse_json(json.dumps({"jobs": []})).ok


def test_garbage_is_a_fio_error():
    with pytest.raises(FioError, match="no JSON"):
        parse_json("fio: command not found")
    with pytest.raises(FioError, match="malformed"):
        parse_json("{ nope")


# fio 3.33's words: a load's stamped messages as a hot-remove left them (6.12, seed 1), and a
# verify pass's after a block was zeroed and another overwritten
DATA = Path(__file__).parent / "data"
STAMPED_MESSAGES = (DATA / "fio-3.33-load-messages-stamped.txt").read_text()
PASS_MESSAGES = (DATA / "fio-3.33-verify-pass-messages.txt").read_text()


def test_stamped_lines_carry_the_guest_time():
    lines = stamped_lines(STAMPED_MESSAGES)
    assert len(lines) == 16 and lines[0][0] == pytest.approx(1796222046.492790)
    assert all(is_error(line) for _, line in lines)
    assert is_error("fio: pid=812, err=5/file:io_u.c:1889, func=io_u error, error=Input/output "
                    "error")
    assert not is_error("fio: multiple writers may overwrite blocks that belong to other jobs")


def test_failed_writes_are_the_writes_fio_reports_failed():
    failed = failed_writes(STAMPED_MESSAGES)
    assert len(failed) == 16 and 577609728 in failed and 698966016 in failed
    assert failed_writes("fio: io_u error on file /dev/nvme0n1: Input/output error: read "
                         "offset=536875008, buflen=4096") == set()


def test_bad_blocks_name_every_block_a_pass_found_wrong():
    bad = bad_blocks(PASS_MESSAGES)
    assert set(bad) == {57344, 268275712}
    assert bad[57344].startswith("verify: bad magic header 0")
    assert all(is_verify_error(line) for line in bad.values())
    assert not is_verify_error(STAMPED_MESSAGES.splitlines()[1])


@pytest.mark.parametrize(("text", "size"), [("4k", 4096), ("512", 512), ("1M", 1 << 20)])
def test_block_size(text: str, size: int):
    assert block_size(text) == size


def test_the_last_completed_writes_are_read_from_a_saved_verify_state():
    # job 1 of a verify-load.fio run of fio 3.33 (queue depth 8, the job at 128M)
    state = (DATA / "fio-3.33-verify-state-job1.state").read_bytes()
    last = last_completed(state)
    assert len(last) == 8 and last[0] == 200495104
    assert all(128 << 20 <= o < 256 << 20 and o % 4096 == 0 for o in last)
    with pytest.raises(FioError):
        last_completed(state[:100])
    with pytest.raises(FioError):
        last_completed(b"\x02" + state[1:])
