"""fio jobs in the guest and their results, judged from fio's JSON, never its exit code alone."""

from __future__ import annotations

import errno
import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from harness import paths
from harness.errors import HarnessError
from harness.ssh import Guest

JOBS_DIR = paths.GUESTS / "fio"
REMOTE_DIR = "/run/nvmeh/fio"


class FioError(HarnessError):
    """fio could not run at all (bad job, missing device): not a verdict on the driver."""


@dataclass(frozen=True)
class JobResult:
    name: str
    error: int  # errno of the first error, 0 if none
    total_errors: int  # counted with continue_on_error, else 0 or 1
    read_bytes: int
    write_bytes: int
    read_iops: float
    write_iops: float

    @property
    def ok(self) -> bool:
        return self.error == 0 and self.total_errors == 0

    def describe_error(self) -> str:
        name = errno.errorcode.get(self.error, str(self.error))
        return f"job {self.name}: error {name} ({os.strerror(self.error)}), " \
               f"{self.total_errors} errors counted"


@dataclass(frozen=True)
class FioResult:
    jobs: tuple[JobResult, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return bool(self.jobs) and all(j.ok for j in self.jobs)

    @property
    def failures(self) -> list[str]:
        return [j.describe_error() for j in self.jobs if not j.ok]

    @property
    def write_bytes(self) -> int:
        return sum(j.write_bytes for j in self.jobs)

    @property
    def read_bytes(self) -> int:
        return sum(j.read_bytes for j in self.jobs)


def parse_json(text: str) -> FioResult:
    """Parse fio's ``--output-format=json`` output (error lines before the JSON are skipped)."""
    start = text.find("{")
    if start < 0:
        raise FioError("fio wrote no JSON result")
    try:
        data = json.loads(text[start:])
    except json.JSONDecodeError as exc:
        raise FioError(f"fio's JSON result is malformed: {exc}") from None
    jobs = []
    for job in data.get("jobs", []):
        rd, wr = job.get("read", {}), job.get("write", {})
        jobs.append(JobResult(
            name=str(job.get("jobname", "?")),
            error=int(job.get("error", 0)),
            total_errors=int(job.get("total_err", 0)),
            read_bytes=int(rd.get("io_bytes", 0)),
            write_bytes=int(wr.get("io_bytes", 0)),
            read_iops=float(rd.get("iops", 0.0)),
            write_iops=float(wr.get("iops", 0.0)),
        ))
    return FioResult(tuple(jobs), data)


def job_environment(**params: object) -> dict[str, str]:
    return {k.upper(): str(v) for k, v in params.items()}


def run_job(guest: Guest, job: str, timeout: float = 300.0, **params: object) -> FioResult:
    """Upload ``guests/fio/<job>.fio``, run it with ``params`` as its variables, parse the JSON."""
    source = JOBS_DIR / f"{job}.fio"
    if not source.exists():
        raise FioError(f"no fio job {job!r} in {JOBS_DIR}")
    guest.run(f"mkdir -p {REMOTE_DIR}", check=True)
    remote = f"{REMOTE_DIR}/{job}.fio"
    guest.write_text(remote, source.read_text())
    out = f"{REMOTE_DIR}/{job}.json"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in job_environment(**params).items())
    res = guest.run(f"rm -f {out}; env {env} fio --output-format=json --output={out} {remote}",
                    timeout=timeout)
    try:
        text = guest.read_text(out)
    except OSError:
        raise FioError(f"fio failed to start: {res.stderr.strip()[-300:]}") from None
    result = parse_json(text)
    if res.exit_code != 0 and result.ok:
        raise FioError(f"fio exited {res.exit_code} but reported no job error: "
                       f"{res.stderr.strip()[-300:]}")
    return result
