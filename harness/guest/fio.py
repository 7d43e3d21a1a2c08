"""fio jobs in the guest and their results, judged from fio's JSON, never its exit code alone."""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import math
import os
import re
import shlex
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import CommandTimeout, HarnessError
from harness.guest.ssh import Background, Guest
from harness.reading import throughput

JOBS_DIR = paths.GUESTS / "fio"
REMOTE_DIR = "/run/nvmeh/fio"
INLINE_VERIFY_BACKLOG = 64  # the load re-reads its blocks after this many writes (0: never)


class FioError(HarnessError):
    """fio could not run at all (bad job, missing device): not a verdict on the driver."""


class LoadStalled(HarnessError):
    """fio runs, but the device completed none of its writes: a verdict on the driver."""

    exit_code = 1


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
    messages: str = ""  # what fio printed on stderr (e.g. the verify failure's details)

    @property
    def ok(self) -> bool:
        return bool(self.jobs) and all(j.ok for j in self.jobs)

    @property
    def failures(self) -> list[str]:
        found = [j.describe_error() for j in self.jobs if not j.ok]
        if not self.jobs:
            found.append("fio ran no job")
        return found

    @property
    def write_bytes(self) -> int:
        return sum(j.write_bytes for j in self.jobs)

    @property
    def read_bytes(self) -> int:
        return sum(j.read_bytes for j in self.jobs)


def parse_json(text: str, messages: str = "") -> FioResult:
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
    return FioResult(tuple(jobs), data, messages)


# A load's fio messages, each line stamped with the guest's clock (see VerifyLoad.start).
STAMPED = re.compile(r"(\d+\.\d+) (.*)")
# fio's report of a failed I/O (io_u.c), and of a block a verify found wrong (verify.c:
# "verify: bad magic header ...", "crc32c: verify failed ..."; both end the same way).
IO_U_ERROR = re.compile(r"fio: io_u error on file \S+: .*: (\w+) offset=(\d+), buflen=\d+")
VERIFY_ERROR = re.compile(r"^(?:verify: |\w+: verify failed).* at file \S+ offset (\d+), "
                          r"length \d+")
JOB_ERROR = re.compile(r"^fio: pid=\d+, err=")


def stamped_lines(text: str) -> list[tuple[float, str]]:
    """(guest time, line) for each stamped line of a load's messages."""
    return [(float(m.group(1)), m.group(2)) for line in text.splitlines()
            if (m := STAMPED.fullmatch(line))]


def is_error(line: str) -> bool:
    """A line in which fio reports a failed I/O, a wrong block, or a job ended by an error."""
    return bool(IO_U_ERROR.search(line) or VERIFY_ERROR.search(line) or JOB_ERROR.search(line))


def is_verify_error(line: str) -> bool:
    return VERIFY_ERROR.search(line) is not None


def failed_writes(messages: str) -> set[int]:
    """Offsets of the writes fio reports as failed."""
    return {int(m.group(2)) for m in IO_U_ERROR.finditer(messages) if m.group(1) == "write"}


def bad_blocks(messages: str) -> dict[int, str]:
    """Offset of each block a verify pass found wrong, with fio's words for it."""
    found: dict[int, str] = {}
    for line in messages.splitlines():
        if (m := VERIFY_ERROR.search(line)) is not None:
            found.setdefault(int(m.group(1)), line.strip())
    return found


# fio 3.33's verify state file (verify-state.h): a header (version, size, crc), then the
# job's thread_io_list: no_comps, depth, nofiles, numberio, index, its random state (56
# bytes), its name (64), then ``depth`` x (file number, offset) of its last completed writes.
STATE_HEADER = struct.Struct("<QQQ")
STATE_LIST = struct.Struct("<QIIQQ56s64s")
STATE_COMP = struct.Struct("<QQ")


def last_completed(state: bytes) -> list[int]:
    """Offsets of the last writes (up to the queue depth) a job saw complete, from its saved
    verify state: the writes fio's verify-only pass may skip (it stops at the first write of
    the state's last ``depth`` that is not among them)."""
    if len(state) < STATE_HEADER.size + STATE_LIST.size:
        raise FioError(f"a verify state of {len(state)} bytes is too short")
    version = STATE_HEADER.unpack_from(state)[0]
    if version != 3:
        raise FioError(f"verify state version {version}, not fio 3.x's 3")
    comps = STATE_LIST.unpack_from(state, STATE_HEADER.size)[0]
    at = STATE_HEADER.size + STATE_LIST.size
    if len(state) < at + comps * STATE_COMP.size:
        raise FioError(f"a verify state of {len(state)} bytes holds no {comps} completions")
    return [STATE_COMP.unpack_from(state, at + i * STATE_COMP.size)[1] for i in range(comps)]


def block_size(text: str) -> int:
    """fio's block size (``4k``, ``512``) in bytes."""
    units = {"k": 1 << 10, "m": 1 << 20}
    unit = units.get(text[-1:].lower(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


def job_environment(**params: object) -> dict[str, str]:
    return {k.upper(): str(v) for k, v in params.items()}


def env_assignments(env: dict[str, str]) -> str:
    """``env``'s variables as shell words, for ``env A=1 B=2 fio ...``."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def read_result(guest: Guest, path: str, stderr: str) -> FioResult:
    """The JSON fio wrote to ``path``; ``stderr`` (fio's messages) is kept as evidence."""
    try:
        text = guest.read_text(path)
    except OSError:
        raise FioError(f"fio wrote no {path}: {stderr.strip()[-300:]}") from None
    return parse_json(text, stderr)


def run_job(guest: Guest, job: str, timeout: float = 300.0, **params: object) -> FioResult:
    """Upload ``guests/fio/<job>.fio``, run it with ``params`` as its variables, parse the JSON."""
    source = JOBS_DIR / f"{job}.fio"
    if not source.exists():
        raise FioError(f"no fio job {job!r} in {JOBS_DIR}")
    guest.run(f"mkdir -p {REMOTE_DIR}", check=True)
    remote = f"{REMOTE_DIR}/{job}.fio"
    guest.write_text(remote, source.read_text())
    out = f"{REMOTE_DIR}/{job}.json"
    env = env_assignments(job_environment(**params))
    res = guest.run(f"rm -f {out}; env {env} fio --output-format=json --output={out} {remote}",
                    timeout=timeout)
    result = read_result(guest, out, res.stderr)
    if res.exit_code != 0 and result.ok:
        raise FioError(f"fio exited {res.exit_code} but reported no job error: "
                       f"{res.stderr.strip()[-300:]}")
    return result


class VerifyLoad:
    """The verifying write load of a recovery scenario, and the proof that nothing was lost.

    ``start()`` runs ``verify-load.fio`` in the background (crc32c headers, inline
    verification, verify state saved); ``wait()`` judges its JSON; ``verify_pass()`` re-reads
    every write the load saw complete (``--verify_only --verify_state_load=1``).
    """

    def __init__(self, guest: Guest, filename: str, seed: int, runtime: float,
                 name: str = "load", iodepth: int = 8, numjobs: int = 2, bs: str = "4k",
                 size: str = "256M", backlog: int = INLINE_VERIFY_BACKLOG, offset: str = "0",
                 fsync: int = 0, polled: bool = False, headroom: float = 0.0) -> None:
        """``polled``: io_uring with HIPRI, completions reaped by polling (the driver needs
        poll queues, ``nvme.poll_queues=N``); otherwise libaio and interrupts.
        ``headroom``: fio may run this much longer than ``runtime``, for a caller that ends
        the load itself (:meth:`end`) once it has seen enough after a recovery."""
        self.guest = guest
        self.name = name
        self.polled = polled
        self.workdir = f"{REMOTE_DIR}/{name}"
        self.runtime = runtime
        self.ends_at: float | None = None  # host monotonic time the planned runtime is over
        self.params = job_environment(filename=filename, seed=seed,
                                      runtime=int(runtime + headroom),
                                      iodepth=iodepth, numjobs=numjobs, bs=bs, size=size,
                                      backlog=backlog, offset=offset, fsync=fsync,
                                      engine="io_uring" if polled else "libaio",
                                      verify_fatal=1, on_error="none")
        self._bg: Background | None = None
        self.lost = False  # its guest lost power: nothing of it is left to stop or fetch
        self.saved: Path | None = None  # where checkpoint() kept its verify state
        self.messages = ""  # what fio said, each line stamped with the guest's clock

    def _env(self) -> list[str]:
        """The job's variables as ``env`` takes them (VAR=VALUE)."""
        return [f"{k}={v}" for k, v in self.params.items()]

    def start(self, flowing_within: float = 60.0) -> None:
        """Start fio and return once it has sent writes and writes have completed on the
        device. fio's messages go to ``load.err``, each line stamped with the guest's clock,
        so that an error can be placed before or after a fault (:attr:`messages`).

        fio takes a while to start under TCG (seconds, on a busy host); a fault injected
        before its writes flow would hit nothing, and the scenario would pass without testing
        anything. Its own writes are told from those of another load on the same device by
        its process's I/O accounting (its jobs are threads of one process: verify-load.fio).
        """
        self._install()
        before = self._writes_completed()
        # The trigger file makes fio save its verify state, stop, and flush (see checkpoint).
        flush = f"{self._flush} && touch {self.workdir}/flushed"
        self._bg = self.guest.call_background("_fio_run_load", self.workdir, flush,
                                              *self._env())
        self.ends_at = time.monotonic() + self.runtime
        if before is None:
            return  # not a block device: nothing to watch
        if not self._writes_flow(before, flowing_within):
            raise LoadStalled(f"the load on {self.params['FILENAME']} completed no write "
                              f"within {flowing_within:.0f}s of starting")
        if self.running:  # else fio ended at once: wait() reports why
            self.ends_at = time.monotonic() + self.runtime

    def _writes_flow(self, before: int, within: float) -> bool:
        """Has the load sent writes, and the device completed more than ``before``, within
        ``within`` seconds? True too if fio ended meanwhile (its result says why). Watched in
        the guest, two seconds per command, so that fio's exit is seen."""
        deadline = time.monotonic() + within
        while self.running:
            if self.guest.call("_fio_wait_writes", self.workdir, self.params["FILENAME"],
                               before, timeout=60).ok:
                return True
            if time.monotonic() > deadline:
                return False
        return True

    def _install(self) -> None:
        """A fresh working directory in the guest with both job files."""
        self.guest.run(f"rm -rf {self.workdir} && mkdir -p {self.workdir}", check=True)
        for job in ("verify-load", "verify-pass"):
            text = (JOBS_DIR / f"{job}.fio").read_text()
            if job == "verify-load" and self.polled:
                text += "hipri=1\n"
            self.guest.write_text(f"{self.workdir}/{job}.fio", text)

    def moved_to(self, filename: str) -> None:
        """The device came back under another name (a namespace detached and attached again):
        the verify pass reads it there."""
        self.params["FILENAME"] = filename

    def checkpoint(self, dest: Path, timeout: float = 120.0) -> FioResult:
        """Stop the load, keep what it completed, flush the device; the state goes to ``dest``.

        fio, seeing its trigger file, saves its verify state, stops its jobs and runs the
        trigger command, a flush of the whole device: every write the state counts as
        completed was completed before a flush that has completed, which is what a power cut
        must spare. The state is copied to the host because the guest's copy (tmpfs) dies
        with the power. Returns the load's result, to be judged like any other.
        """
        assert self._bg is not None, "start() first"
        self.guest.run(f"touch {self.workdir}/trigger", check=True)
        result = self.wait(timeout)  # fio exits once the trigger command is done
        if self.guest.run(f"test -e {self.workdir}/flushed", timeout=30).exit_code != 0:
            # The load ended on its own before it saw the trigger: its state was saved at
            # exit, and the flush is ours to make.
            self.guest.run(self._flush, check=True, timeout=timeout)
        self.fetch(dest)
        if not list(dest.glob("*verify.state")):
            raise FioError(f"the load {self.name} saved no verify state in {self.workdir}")
        self.saved = dest
        return result

    def after_power_cycle(self, guest: Guest) -> None:
        """The guest restarted: a checkpointed load gets its job files and verify state back
        in a fresh working directory, ready for verify_pass(); any other load is lost."""
        if self.saved is None:
            self.lost = True
            return
        self.guest = guest
        self._install()
        for state in sorted(self.saved.glob("*verify.state")):
            guest.put(state, f"{self.workdir}/{state.name}")

    @property
    def _flush(self) -> str:
        """A guest command flushing the device's write cache (fsync on a block device)."""
        return f"sync {shlex.quote(self.params['FILENAME'])}"

    def _writes_completed(self) -> int | None:
        """The device's completed-write count, None if it is not a block device."""
        out = self.guest.call("_blk_print_writes", self.params["FILENAME"],
                              timeout=30).stdout.strip()
        return int(out) if out.isdigit() else None

    def writes_resume(self, within: float) -> bool:
        """Does the device of the load complete writes again within ``within`` seconds (True
        if it is not a block device, or the load has ended: its result says why)? One
        command in the guest (a soak asks after every fault)."""
        seconds = math.ceil(within)
        return (self.guest.call("_blk_wait_more_writes", self.params["FILENAME"], seconds,
                                timeout=seconds + 30).ok
                or not self.running)

    @property
    def running(self) -> bool:
        return self._bg is not None and self._bg.running

    def wait(self, timeout: float) -> FioResult:
        assert self._bg is not None, "start() first"
        self._bg.wait(timeout)
        # fio's messages are complete once the stamping loop has seen their end
        self.messages = self.guest.call("_fio_read_messages", self.workdir, timeout=30).stdout
        return self._result("load.json", self.messages)

    def end(self, timeout: float = 300.0, now: bool = False) -> FioResult:
        """Let the load run to the end of its runtime (``now``: not that long), then stop it
        the way a checkpoint does (completed writes kept, verify state saved) and return its
        result."""
        assert self._bg is not None and self.ends_at is not None, "start() first"
        with contextlib.suppress(CommandTimeout):
            self._bg.wait(0.0 if now else max(0.0, self.ends_at - time.monotonic()))
        if self.running:
            self.guest.run(f"touch {self.workdir}/trigger", check=True)
        return self.wait(timeout)

    def stop(self) -> None:
        if self._bg is not None and self._bg.running and not self.lost:
            self._bg.kill()

    def _verify_command(self, every_error: bool = False) -> str:
        env = dict(self.params)
        if every_error:  # go on past a wrong block: report every one
            env.update(VERIFY_FATAL="0", ON_ERROR="verify")
        return (f"cd {self.workdir} && env {env_assignments(env)} fio --output-format=json "
                "--output=pass.json --verify_only --verify_state_load=1 verify-pass.fio")

    def verify_pass(self, timeout: float = 600.0) -> FioResult:
        res = self.guest.run(self._verify_command(), timeout=timeout)
        return self._result("pass.json", res.stderr)

    def start_verify_pass(self, every_error: bool = False) -> Background:
        """The verify-only pass in the background, for a caller that watches the device
        meanwhile; :meth:`verify_result` reads its outcome. ``every_error``: it reads on past
        a wrong block, and fio's messages name each one (:func:`bad_blocks`)."""
        return self.guest.background(self._verify_command(every_error))

    def last_completed(self) -> set[int]:
        """Offsets of each job's last completed writes, from the verify state it saved."""
        out = self.guest.call("_fio_dump_states", self.workdir, timeout=30, check=True).stdout
        return {offset for text in out.split() for offset in
                last_completed(base64.b64decode(text))}

    def read_blocks(self, offsets: set[int]) -> dict[int, bytes]:
        """The load's blocks at ``offsets``, read from its device as they are now."""
        if not offsets:
            return {}
        out = self.guest.call("_blk_read_blocks", self.params["FILENAME"],
                              block_size(self.params["BS"]), *sorted(offsets),
                              timeout=60 + len(offsets), check=True).stdout
        blocks: dict[int, bytes] = {}
        for chunk in out.split("@@")[1:]:
            offset, _, data = chunk.partition("\n")
            blocks[int(offset)] = base64.b64decode(data.strip())
        return blocks

    def verify_result(self, stderr: str) -> FioResult:
        return self._result("pass.json", stderr)

    def _result(self, name: str, stderr: str) -> FioResult:
        return read_result(self.guest, f"{self.workdir}/{name}", stderr)

    def _job_logs(self, kind: str) -> list[str]:
        """The text of each job's fio log of ``kind`` (iops, lat, bw), written when the load
        ended."""
        out = self.guest.call("_fio_dump_logs", self.workdir, kind, timeout=30)
        return out.stdout.split("@@job")

    def iops_per_second(self) -> throughput.Series:
        """(guest epoch second ending a window, write IOPS of all jobs) from fio's logs."""
        return throughput.sum_jobs([throughput.parse_log(job, throughput.WRITE)
                                    for job in self._job_logs("iops")])

    def latency_per_second(self) -> throughput.Series:
        """(guest epoch second ending a window, mean write latency in ms, submission to
        completion, over the jobs). A second in which no write completed has no entry: a
        stalled queue shows as a gap, then as the latency of the writes it held."""
        return throughput.mean_jobs([throughput.parse_log(job, throughput.WRITE, 1e-6)
                                     for job in self._job_logs("lat")])

    def fetch(self, dest: Path) -> None:
        """Copy fio's JSON, per-second logs, messages and verify state into ``dest`` (the
        artifacts)."""
        if self.lost:
            return
        dest.mkdir(parents=True, exist_ok=True)
        listing = self.guest.run(f"ls {self.workdir}", timeout=30).stdout.split()
        for name in listing:
            if name.endswith((".json", ".log", ".state", ".err")):
                self.guest.get(f"{self.workdir}/{name}", dest / name)

