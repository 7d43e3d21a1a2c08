import json

import pytest

from harness.fio import FioError, parse_json


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
