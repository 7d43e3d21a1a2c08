"""The scenarios by name: what each checks, the machine it needs, and its bounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.build.kernels import KernelImage
from harness.errors import HarnessError
from harness.guest.fio import VerifyLoad
from harness.machine.topology import DEFAULT, Topology
from harness.reading.throughput import Criterion
from harness.recovery.context import RESET_BOUND_S, RESUME_BOUND_S, THROUGHPUT, Context

SOAK_REGION = 128  # MiB a soak's load writes, in one of two regions by turns


def _loads(ctx: Context, runtime: float, data_seed: int, region: int) -> list[VerifyLoad]:
    return ctx.start_loads(runtime, offset=f"{region * SOAK_REGION}M", size=f"{SOAK_REGION}M",
                           data_seed=data_seed)


@dataclass(frozen=True)
class Soak:
    """How a scenario runs as a soak (:mod:`harness.recovery.soak`): the scenario's fault,
    applied again and again under loads that keep running. A soak holds the whole kernel log
    to no timeout, abort or reset, unless ``logs_trouble``."""

    fault: Callable[[Context], None]  # one fault; returns once recovered (recorded)
    # The fault makes the driver log timeouts, aborts or resets of its own (a silent device):
    # the log is then held to none from each recovery until the next fault, as an iteration
    # holds it after its last recovery, instead of across the whole segment
    logs_trouble: bool = False
    # seconds after the writes resumed (seeded, uniform): the writes' own resumption already
    # keeps faults apart by the time the device takes to complete a write again
    gap: tuple[float, float] = (0.05, 0.5)
    # (ctx, runtime, data seed, region 0 or 1): the verifying loads, warmed up; a segment
    # writes the other region than the one before, which is verified meanwhile
    loads: Callable[[Context, float, int, int], list[VerifyLoad]] = _loads
    # once, before the first fault (what the scenario sets up before its loads)
    setup: Callable[[Context], None] | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    procedure: Callable[[Context], None]
    topology: Topology = DEFAULT
    live_bound: float = 60.0  # seconds a controller may take to be live again
    # In the CI subset (the default tox run); False for variants whose mechanism another
    # scenario already covers (they run in the whole suite, tox -e nvme).
    ci: bool = True
    kernel_config: tuple[str, ...] = ()  # options the guest kernel must have (=y), or skip
    # What "throughput comes back" means here; None where the scenario itself competes with
    # the load for the guest's CPU for the whole time (the IOPS then measure that, not the
    # driver), and says so.
    throughput: Criterion | None = THROUGHPUT
    # How long a controller may be out of live, and how long after live the writes of a
    # load may wait; None where the scenario itself holds the device away or stalled
    reset_bound: float | None = RESET_BOUND_S
    resume_bound: float | None = RESUME_BOUND_S
    soak: Soak | None = None  # None: it runs as iterations only
    # What of the machine's host side the scenario needs (QMP, a power cut), said when it
    # is skipped on a real machine; "" for a scenario done from inside the system alone
    host_side: str = ""
    power_cut: bool = False  # cuts the machine's power (a target needs a power command)

    def skip_reason(self, kernel: KernelImage) -> str | None:
        """Why this scenario cannot run on ``kernel``, or None; decided before any boot."""
        if not self.kernel_config:
            return None
        config = kernel.config
        if config is None:
            return None  # unknown: the procedure finds out in the guest
        have = set(config.read_text().splitlines())
        missing = [opt for opt in self.kernel_config if f"{opt}=y" not in have]
        if not missing:
            return None
        return (f"{self.name} needs {', '.join(missing)}, which {kernel.release} lacks (a test "
                "kernel has it: python -m harness kernel build)")


class ScenarioSkipped(HarnessError):
    """The scenario cannot run on this kernel; the message says what it lacks."""


REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, summary: str, topology: Topology = DEFAULT,
             live_bound: float = 60.0, ci: bool = True,
             kernel_config: tuple[str, ...] = (),
             throughput: Criterion | None = THROUGHPUT,
             reset_bound: float | None = RESET_BOUND_S,
             resume_bound: float | None = RESUME_BOUND_S,
             soak: Soak | None = None, host_side: str = "",
             power_cut: bool = False) -> Callable[
                 [Callable[[Context], None]], Callable[[Context], None]]:
    def register(procedure: Callable[[Context], None]) -> Callable[[Context], None]:
        REGISTRY[name] = Scenario(name, summary, procedure, topology, live_bound, ci,
                                  kernel_config, throughput, reset_bound, resume_bound, soak,
                                  host_side, power_cut)
        return procedure
    return register
