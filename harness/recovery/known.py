"""Kernel bugs the suite has found, recorded so that it stays green for the right reason.

A scenario that fails on a stock kernel may have found a real driver bug. Once that is
established (checked on another kernel, evidence kept), the failure is recorded here: the stock
kernels it was established on and the upstream versions it affects, the failure codes it
accounts for, the evidence of its mechanism each failure must carry, and the bug's reference.
A record excuses only what it was established on: the stock modules of the kernels it names
(compared by full version, stable fixes included), or a driver built from source that a check
of the source shows still lacks the fix. Anything else that fails the same way is a FAIL that
says which record it resembles and why that record does not excuse it.

The pytest suite then expects exactly that failure (xfail, with the reference); ``repro`` keeps
exiting 1 for it, because a bisect must see the bug, and prints the reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import paths
from harness.build import kernels
from harness.reading.verdict import Failure, Status
from harness.target.machine import TargetLab

if TYPE_CHECKING:
    from harness.build.images import GuestImage
    from harness.machine.lab import Lab


def version_tuple(version: str) -> tuple[int, ...]:
    """``6.1.192`` -> (6, 1, 192); also the leading numbers of ``6.1.0-57-amd64``."""
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not found:
        raise ValueError(f"not a kernel version: {version!r}")
    return tuple(int(n) for n in found.groups() if n is not None)


@dataclass(frozen=True)
class Driver:
    """The NVMe driver an iteration ran, as far as a record is concerned: whose modules."""

    kernel: str  # --kernel as given: "debian:6.1", or the path of a kernel the user built
    release: str  # uname -r
    version: str | None  # upstream version of a distribution's kernel package ("6.1.192");
    #                      None for a kernel the user built
    source: Path | None = None  # --nvme-src: built from these sources, not the stock modules

    @classmethod
    def of(cls, image: GuestImage) -> Driver:
        return cls(image.kernel.spec, image.kernel.release, image.kernel.version,
                   image.driver.source if image.driver else None)


def driver_of(lab: Lab | TargetLab) -> Driver:
    """The driver a lab's iterations run; a target's stock driver matches no record (its
    kernel's upstream version is not known), so its failures are never explained away."""
    if isinstance(lab, TargetLab):
        return Driver(f"target {lab.config.address}", lab.facts.release, None,
                      lab.config.nvme_src)
    return Driver.of(lab.image)


@dataclass(frozen=True)
class Mechanism:
    """What shows that a failure came through a bug's mechanism, not only that it failed the
    same way: a fact the harness measured, or the kernel's own words in the evidence; never
    the harness's English, so rewording a message can neither disarm nor widen a record."""

    requeued: bool = False  # the reset before the failure requeued requests (the trace)
    kernel_log: str | None = None  # a regular expression over the failure's evidence
    # no request was with the driver when the hang was found (blk-mq's busy lists): the
    # queues themselves are stuck, nothing is stranded at the device
    nothing_held: bool = False

    def __post_init__(self) -> None:
        if not self.requeued and self.kernel_log is None:
            raise ValueError("a mechanism needs a fact or a kernel log signature")

    def shown_by(self, failure: Failure) -> bool:
        return ((not self.requeued or failure.requeued > 0)
                and (not self.nothing_held or failure.held == 0)
                and (self.kernel_log is None
                     or re.search(self.kernel_log, failure.evidence) is not None))

    def describe(self) -> str:
        return " and ".join(filter(None, [
            "the reset before it requeued requests" if self.requeued else "",
            "no request was with the driver" if self.nothing_held else "",
            f"the kernel log shows /{self.kernel_log}/" if self.kernel_log else ""]))


@dataclass(frozen=True)
class KnownFailure:
    scenarios: tuple[str, ...]  # the scenarios it makes fail
    kernels: tuple[str, ...]  # the stock kernels it was established on: "debian:6.1"
    first: str  # first affected upstream version, "4.12"
    # Upstream versions with the fix: a mainline release ("6.7") fixes it there and later, a
    # stable release ("6.6.13") from there on in its own series
    fixed_in: tuple[str, ...]
    codes: tuple[str, ...]  # the failure codes it accounts for (every failure must have one)
    mechanism: Mechanism  # what at least one failure must show of the bug's mechanism
    reference: str  # bug report, mailing-list thread or fixing commit (its hash first)
    evidence: str  # what showed it, and where the console, dmesg and timeline are kept
    # Over a driver's sources (drivers/nvme/host): True only where the fix is certainly
    # absent. Without it the record never excuses a driver built from source.
    fix_absent: Callable[[Path], bool] | None = None

    @property
    def commit(self) -> str:
        return self.reference.split()[0]

    def affects(self, version: str) -> bool:
        v = version_tuple(version)
        if v < version_tuple(self.first):
            return False
        for fix in map(version_tuple, self.fixed_in):
            mainline = len(fix) == 2 and v[:2] >= fix
            if mainline or (v[:2] == fix[:2] and v >= fix):  # or a stable release in its series
                return False
        return True

    def resembles(self, scenario: str, failures: Sequence[Failure]) -> bool:
        """Every failure of the iteration is of a kind this bug causes, in a scenario it
        makes fail, and one shows its mechanism."""
        return (scenario in self.scenarios and bool(failures)
                and all(f.code in self.codes for f in failures)
                and any(self.mechanism.shown_by(f) for f in failures))

    def not_excused(self, driver: Driver) -> str | None:
        """Why this record does not excuse a failure of ``driver``; None where it does."""
        if driver.version is None:
            return f"the kernel {driver.kernel} was built by you, not a stock kernel it was " \
                   f"established on ({', '.join(self.kernels)})"
        if driver.kernel not in self.kernels:
            return f"it was established on {', '.join(self.kernels)}, not {driver.kernel}"
        if not self.affects(driver.version):
            return f"{driver.version} has the fix ({', '.join(self.fixed_in)})"
        if driver.source is not None:
            if self.fix_absent is None:
                return f"this driver was built from {driver.source}, and the record has no " \
                       "check of a driver's source"
            try:
                absent = self.fix_absent(driver.source)
            except OSError as exc:
                return f"this driver was built from {driver.source}, which cannot be read " \
                       f"({exc.strerror})"
            if not absent:
                return f"this driver was built from {driver.source}, which has the fix or " \
                       "changes the code it is in"
        return None

    def describe(self, on: str = "") -> str:
        """The record in a line; ``on``: the kernel that showed it (else every one it names)."""
        fixed = f", fixed in {', '.join(self.fixed_in)}" if self.fixed_in else ", unfixed"
        return (f"known kernel bug on {on or ', '.join(self.kernels)} (from {self.first}{fixed}): "
                f"{self.reference} ({', '.join(self.codes)}; {self.mechanism.describe()}); "
                f"evidence: {self.evidence}")


def _function(text: str, name: str) -> str:
    """The body of C function ``name`` in ``text`` (up to its closing brace), or ''."""
    found = re.search(rf"^\S[^\n]*\b{name}\([^;{{]*\)\s*{{.*?^}}", text, re.M | re.S)
    return found.group(0) if found else ""


def _dbbuf_set_after_unquiesce(src: Path) -> bool:
    """06c59d427017 is absent: nvme_reset_work() restarts the I/O queues before it tells the
    controller where the shadow doorbells are."""
    text = (src / "pci.c").read_text(errors="replace")
    body = _function(text, "nvme_reset_work")
    start = re.search(r"nvme_(start_queues|unquiesce_io_queues)\(", body)
    if start is None or "nvme_dbbuf_set(" in body[:start.start()]:
        return False
    after = body[start.start():]
    # 5.10 tells it in nvme_dev_add(), which the reset calls once the queues run again
    return "nvme_dbbuf_set(" in after or (
        "nvme_dev_add(" in after and "nvme_dbbuf_set(" in _function(text, "nvme_dev_add"))


def _dbbuf_kept_across_resets(src: Path) -> bool:
    """58847f12fe78 is absent: nvme_dbbuf_dma_alloc() keeps the old shadow doorbell memory
    without clearing it."""
    body = _function((src / "pci.c").read_text(errors="replace"), "nvme_dbbuf_dma_alloc")
    return bool(body) and "memset(dev->dbbuf_dbs" not in body


def _no_frozen_flag(src: Path) -> bool:
    """839a40d1e730 is absent: the core does not know that a reset froze the queues, so a
    namespace the scan adds meanwhile is never frozen."""
    core = (src / "core.c").read_text(errors="replace")
    return "nvme_alloc_ns" in core and "NVME_CTRL_FROZEN" not in core


def _poll_queues_without_poll_map(src: Path) -> bool:
    """No fix: the tag set gets one map where the first reset set up neither read nor poll
    queues, and every reset takes ``poll_queues`` as it finds it, whatever maps the set has."""
    text = (src / "pci.c").read_text(errors="replace")
    setup = _function(text, "nvme_setup_io_queues")
    one_map = ("return 1;" in _function(text, "nvme_pci_nr_maps")
               or "nr_maps = 1;" in _function(text, "nvme_pci_alloc_tag_set"))
    return one_map and "dev->nr_poll_queues = poll_queues;" in setup and "nr_maps" not in setup


def _requeue_across_layout(src: Path) -> bool:
    """No fix: every reset takes ``write_queues`` and ``poll_queues`` as it finds them, and
    drains the requests entered first only when it shuts the controller down."""
    text = (src / "pci.c").read_text(errors="replace")
    drains_on_shutdown_only = r"if \(!dead && shutdown( && freeze)?\)\s*nvme_wait_freeze_timeout"
    return ("dev->nr_poll_queues = poll_queues;" in _function(text, "nvme_setup_io_queues")
            and re.search(drains_on_shutdown_only, _function(text, "nvme_dev_disable"))
            is not None)


_STALE_DOORBELLS_BUG = (
    "58847f12fe78 \"nvme-pci: clear shadow doorbell memory on resets\" (v5.16; not in "
    "5.10.y): shadow doorbell memory kept across a reset makes the driver skip the MMIO "
    "doorbell of requeued I/O")

_DOORBELL_CONFIG_BUG = (
    "06c59d427017 \"nvme: Inform controller of doorbell config before unquiescing IO "
    "queues\" (lore 20240110182855.1833512-1-wab@google.com, applied for 6.8; not in 6.1.y; "
    "6.12 has it): a reset that requeues stranded I/O submits it before the controller knows "
    "the shadow doorbells, so it times out again, and every reset after that does the same")

# The driver's I/O timeout disabling the controller: a reset waited for I/O never fetched
_DISABLED_BY_IO_TIMEOUT = r"nvme nvme\d+: I/O \d+ QID [1-9]\d* timeout, disable controller"

# Every record comes with its evidence in known-bugs/<name>/ (kernel log, the fix tested
# with --nvme-src, the commands that showed it).
KNOWN: tuple[KnownFailure, ...] = (
    KnownFailure(
        scenarios=("reset-under-load", "reset-under-load-2cpu", "reset-under-load-2ns",
                   "reset-under-load-2ctrl", "reset-storm", "flr-under-load",
                   "admin-during-reset", "poll-queues", "bus-master-off", "mmio-off",
                   "dead-during-reset", "queue-count-under-load"),
        kernels=("debian:5.10",), first="4.12", fixed_in=("5.16",),
        # the reset waits for I/O the device never saw, until its timeout disables the
        # controller in the middle of the reset: the driver cannot mark it live and removes it
        codes=("not-live", "resets-refused", "alarm-not-marked-live",
               "alarm-removed-after-probe-failure"),
        mechanism=Mechanism(kernel_log=_DISABLED_BY_IO_TIMEOUT),
        reference=_STALE_DOORBELLS_BUG + ", the reset waits 30 s for it, then removes "
                  "the controller",
        evidence="known-bugs/linux-5.10-stale-shadow-doorbells/: fails on debian:5.10 "
                 "(5.10.262), passes on 6.1 and 6.12 and on 5.10 with the fix backported "
                 "(--nvme-src; mmio-off, dead-during-reset and queue-count-under-load with "
                 "06c59d427017 too)",
        fix_absent=_dbbuf_kept_across_resets),
    # A device gone silent strands commands, so the driver's own reset requeues them.
    KnownFailure(
        scenarios=("bus-master-off", "mmio-off", "dead-during-reset", "fi-io-timeout"),
        # the requeued I/O is never fetched: writes stall after live, then time out
        kernels=("debian:5.10", "debian:6.1"), first="4.12", fixed_in=("6.8",),
        codes=("unstable", "io-stalled"), mechanism=Mechanism(requeued=True),
        reference=_DOORBELL_CONFIG_BUG,
        evidence="known-bugs/linux-6.1-doorbell-config-after-requeue/: fails on debian:6.1 "
                 "(6.1.192), passes on 6.12 and on 6.1 with the fix backported (--nvme-src); "
                 "on 5.10 once 58847f12fe78 is backported (mmio-off, dead-during-reset seed "
                 "7), which pass with this fix backported too",
        fix_absent=_dbbuf_set_after_unquiesce),
    # The same bug after a reset the guest asked for: rare (the reset must find commands the
    # device has not fetched yet).
    KnownFailure(
        scenarios=("reset-under-load", "reset-under-load-2cpu", "reset-under-load-2ns",
                   "reset-under-load-2ctrl", "admin-during-reset", "reset-storm",
                   "poll-queues"),
        kernels=("debian:6.1",), first="4.12", fixed_in=("6.8",),
        # Unstable when what the reset requeued goes out and later I/O is not fetched;
        # not live when the requeued requests themselves are not, so the reset waits for them
        # until the timeout disables the controller, which the driver then removes
        codes=("unstable", "not-live", "io-stalled", "alarm-not-marked-live",
               "alarm-removed-after-probe-failure"), mechanism=Mechanism(requeued=True),
        reference=_DOORBELL_CONFIG_BUG,
        evidence="known-bugs/linux-6.1-doorbell-config-after-requeue/ (sysfs resets): seen "
                 "in about 1 in 17 reset-under-load iterations on debian:6.1 and in CI's "
                 "admin-during-reset; made certain by a patch that widens the window "
                 "(widen-unfetched-at-reset.patch): fails on 6.1, passes on 6.12 and on 6.1 "
                 "with the fix backported",
        fix_absent=_dbbuf_set_after_unquiesce),
    # The same after the resets a suspend brings: a sysfs reset started as the guest
    # suspends, then the resume's. What a reset requeued is never fetched, and everything
    # waits behind it: the suspend's shutdown for 30 s, the load, the queue's freeze.
    KnownFailure(
        scenarios=("suspend-under-load",),
        kernels=("debian:5.10",), first="4.12", fixed_in=("5.16",),
        codes=("io-stuck", "hung-task"), mechanism=Mechanism(requeued=True),
        reference=_STALE_DOORBELLS_BUG,
        evidence="known-bugs/linux-5.10-stale-shadow-doorbells/ (suspend): seed 1 fails on "
                 "debian:5.10 (5.10.262) and on its driver built from source; passes with "
                 "58847f12fe78 alone backported, and with 06c59d427017 too (seeds 1-4); "
                 "6.12 passes seeds 1-4",
        fix_absent=_dbbuf_kept_across_resets),
    # The same on 6.1 after a suspend: the sysfs reset started with it ran once the guest had
    # resumed, just after the resume's own reset, while the thawed load submitted again; what
    # it requeued was never fetched, and the load and the namespace scan hang behind it.
    KnownFailure(
        scenarios=("suspend-under-load",),
        kernels=("debian:6.1",), first="4.12", fixed_in=("6.8",),
        codes=("io-stuck", "hung-task"), mechanism=Mechanism(requeued=True),
        reference=_DOORBELL_CONFIG_BUG,
        evidence="known-bugs/linux-6.1-doorbell-config-after-requeue/ (after a suspend): "
                 "seed 2 failed once on debian:6.1 (6.1.192, 4 requests requeued); with the "
                 "reset made to come after the resume (reset-after-resume.py) and the window "
                 "widened, 6.1 fails seeds 1-2 the same way and passes with the fix "
                 "backported, as 6.12 does",
        fix_absent=_dbbuf_set_after_unquiesce),
    # The same after the link reset of a fatal PCIe error: nothing was in flight to requeue,
    # but the I/O submitted once the controller is live again is never fetched, and times out.
    KnownFailure(
        scenarios=("aer-under-load",),
        kernels=("debian:5.10",), first="4.12", fixed_in=("5.16",),
        codes=("io-stuck",),
        mechanism=Mechanism(kernel_log=r"nvme nvme\d+: I/O \d+ QID [1-9]\d* timeout, aborting"),
        reference="58847f12fe78 \"nvme-pci: clear shadow doorbell memory on resets\" (v5.16; "
                  "not in 5.10.y): shadow doorbell memory kept across the link reset of a "
                  "fatal error makes the driver skip the MMIO doorbell of the I/O it submits "
                  "afterwards, which the controller never fetches",
        evidence="known-bugs/linux-5.10-stale-shadow-doorbells/ (fatal AER): every seed with "
                 "a fatal error fails on debian:5.10 (5.10.262) and on its driver built from "
                 "source; passes with 58847f12fe78 backported; 6.1 and 6.12 pass the same seeds",
        fix_absent=_dbbuf_kept_across_resets),
    # The same when a CPU goes offline while a sysfs reset runs, or rescans run beside the
    # resets: what the load submits after a reset is never fetched, and the CPU's hotplug,
    # the reset's scan and the load wait for it until the I/O timeout; where the next reset
    # waits for it too, the timeout disables the controller, which the driver cannot mark
    # live and removes.
    KnownFailure(
        scenarios=("cpu-offline-under-load", "cpu-offline-under-load-4cpu",
                   "rescan-during-reset"),
        kernels=("debian:5.10",), first="4.12", fixed_in=("5.16",),
        codes=("hung-task", "alarm-not-marked-live", "alarm-removed-after-probe-failure"),
        mechanism=Mechanism(kernel_log=r"nvme nvme\d+: I/O \d+ QID [1-9]\d* timeout, "
                                       r"(aborting|disable controller)"),
        reference=_STALE_DOORBELLS_BUG,
        evidence="known-bugs/linux-5.10-stale-shadow-doorbells/ (CPU offline): seeds 1, 2, "
                 "4-6 fail on debian:5.10 (5.10.262), seeds 1 and 11 on its driver built "
                 "from source; with 58847f12fe78 backported seeds 1-6 and 11 pass, and "
                 "cpu-offline-under-load-4cpu seeds 11-13; 6.1 and 6.12 pass. "
                 "rescan-during-reset: seeds 1 and 20261121 fail on debian:5.10, seed 1 "
                 "with 06c59d427017 alone backported too; with 58847f12fe78 alone seeds 1-6 "
                 "and 20261121 pass",
        fix_absent=_dbbuf_kept_across_resets),
    # The same when a poll queue is added at runtime (the short I/O timeout of that scenario
    # disables the controller within the reset): the driver removes it, failing the load.
    KnownFailure(
        scenarios=("poll-queues-added-under-load",),
        kernels=("debian:5.10",), first="4.12", fixed_in=("5.16",),
        codes=("io-error", "alarm-not-marked-live", "alarm-removed-after-probe-failure"),
        mechanism=Mechanism(kernel_log=_DISABLED_BY_IO_TIMEOUT),
        reference=_STALE_DOORBELLS_BUG + ", the reset waits for it until the timeout "
                  "disables the controller, and the driver removes it",
        evidence="known-bugs/linux-5.10-stale-shadow-doorbells/ (poll queue added): seeds 1-2 "
                 "fail on debian:5.10 (5.10.262); pass with 58847f12fe78 backported "
                 "(--nvme-src), alone or with 06c59d427017",
        fix_absent=_dbbuf_kept_across_resets),
    # A poll queue given at runtime to a driver that booted without read or poll queues:
    # the queue count is unchanged, so blk-mq keeps the CPUs' map, and a CPU's interrupt-
    # driven I/O goes to what is now a queue without an interrupt, reaped only by its timeout.
    KnownFailure(
        scenarios=("poll-queues-added-under-load",),
        kernels=("debian:6.1", "debian:6.12"), first="6.1", fixed_in=(),
        codes=("unstable", "io-stalled"),
        mechanism=Mechanism(kernel_log=r"nvme nvme\d+: I/O (tag )?\d+ (\(\w+\) )?"
                                       r"QID [1-9]\d* timeout, completion polled"),
        reference="unreported (found here 2026-12-05): nvme-pci sizes the tag set's maps by "
                  "the first reset's queue types, and a later reset takes poll_queues as it "
                  "finds it; with one map and the same number of queues "
                  "blk_mq_update_nr_hw_queues() returns without remapping, so CPU 1 keeps "
                  "sending interrupt-driven I/O to queue 2, now a poll queue",
        evidence="known-bugs/linux-6.1-poll-queue-without-poll-map/: fails on debian:6.1 "
                 "(6.1.192) and 6.12 (6.12.118), seeds 1-2 each; passes with "
                 "fix-no-poll-queue-without-map.patch (--nvme-src); 5.10 always gives the "
                 "tag set a read map, remaps, and passes",
        fix_absent=_poll_queues_without_poll_map),
    # A reset that changes the queue counts while it requeues: the requeued requests keep
    # their hardware contexts and go out before blk-mq remaps, to the queues now in those
    # slots: gone (I/O error) or a poll queue (nothing reaps them until their timeout, which
    # the reset waits for). In that scenario every reset changes the layout, and its
    # verdict checks the driver's account of it.
    KnownFailure(
        scenarios=("queue-count-under-load",),
        kernels=("debian:6.12",), first="5.10", fixed_in=(),
        # the reset waits for the requests sent to a poll queue: slow, or not live in time
        codes=("io-error", "slow-reset", "not-live"), mechanism=Mechanism(requeued=True),
        reference="unreported (found here 2026-12-05): nvme_reset_work() unquiesces the "
                  "queues, so the requests its disable requeued go out, before "
                  "blk_mq_update_nr_hw_queues() remaps them to the new queue counts; each "
                  "goes to the queue now in its old hardware context's slot",
        evidence="known-bugs/linux-6.12-requeue-across-queue-layout/: with the window "
                 "widened (every reset requeues), 6.12 fails seeds 1, 2, 5 and passes with "
                 "fix-drain-before-new-queue-counts.patch (--nvme-src); the resets of "
                 "poll-queues, which keep the layout, requeue as many and pass; stock 6.12 "
                 "passed seeds 1-8",
        fix_absent=_requeue_across_layout),
    KnownFailure(
        scenarios=("ns-churn-during-reset",),
        kernels=("debian:5.10", "debian:6.1"), first="5.10", fixed_in=("6.6.13", "6.7"),
        codes=("hung-task",),
        # Where the reset waits, and nothing stranded with the driver: 5.10 and 6.1 also
        # strand requeued I/O behind their doorbell bugs, which makes a reset wait there too
        mechanism=Mechanism(kernel_log=r"nvme_wait_freeze\+\S+ \[nvme_core\]\s+"
                                       r"nvme_reset_work", nothing_held=True),
        reference="839a40d1e730 \"nvme: fix deadlock between reset and scan\" (v6.7, "
                  "6.6.13; not in 5.10.y or 6.1.y): a namespace the scan adds after the reset "
                  "froze the queues is never frozen, and the reset waits for it to freeze "
                  "forever",
        evidence="known-bugs/linux-6.1-scan-reset-deadlock/: hangs on debian:6.1 (6.1.192) "
                 "with seed 20261121, every time when a reset is started inside a widened "
                 "scan (directed-repro.sh); passes on 6.12 and on 6.1 with the fix backported "
                 "(--nvme-src). On 5.10.262 with its doorbell bugs fixed (so nothing is "
                 "stranded), the same: the directed reproduction hangs and passes with the "
                 "fix, and the scenario's hangs have nothing with the driver",
        fix_absent=_no_frozen_flag),
)


def problems(record: KnownFailure, scenarios: Collection[str]) -> list[str]:
    """What makes a record unfit to excuse anything: scenarios (of those named) or kernels
    that do not exist, no codes, versions that do not parse, evidence that is not kept."""
    found = [f"no scenario {s!r}" for s in record.scenarios if s not in scenarios]
    found += [f"no kernel {k!r}" for k in record.kernels if k not in kernels.known_kernels()]
    if not record.kernels:
        found.append("established on no kernel")
    if not record.codes:
        found.append("accounts for no failure code")
    for version in (record.first, *record.fixed_in):
        try:
            version_tuple(version)
        except ValueError as exc:
            found.append(str(exc))
    kept = re.match(r"known-bugs/[^/ ]+/", record.evidence)
    if kept is None or not (paths.PROJECT / kept.group(0)).is_dir():
        found.append("its evidence names no folder of known-bugs/ that exists")
    return found


@dataclass(frozen=True)
class Verdict:
    """An iteration's status in a report, and the record behind it."""

    status: Status  # PASS, KNOWN or FAIL
    bug: KnownFailure | None = None  # KNOWN: the record that excuses every failure
    resembles: KnownFailure | None = None  # FAIL: a record it looks like that may not excuse it
    why: str = ""  # why ``resembles`` does not excuse it
    kernel: str = ""  # KNOWN: the kernel that showed it

    def describe(self) -> str:
        """What a report or the console says beside the failures; '' for a plain one."""
        if self.bug is not None:
            return self.bug.describe(on=self.kernel)
        if self.resembles is not None:
            return f"resembles {self.resembles.commit} (known kernel bug); not excused: {self.why}"
        return ""


def verdict(scenario: str, driver: Driver, failures: Sequence[Failure],
            known: Sequence[KnownFailure] = KNOWN) -> Verdict:
    """PASS; KNOWN where a record established on this driver accounts for every failure;
    else FAIL, naming a record the failures resemble and why it does not excuse them."""
    if not failures:
        return Verdict(Status.PASS)
    alike = [k for k in known if k.resembles(scenario, failures)]
    for record in alike:
        if record.not_excused(driver) is None:
            return Verdict(Status.KNOWN, bug=record, kernel=driver.kernel)
    if alike:
        return Verdict(Status.FAIL, resembles=alike[0], why=alike[0].not_excused(driver) or "")
    return Verdict(Status.FAIL)
