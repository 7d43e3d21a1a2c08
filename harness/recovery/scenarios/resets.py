"""Controller resets issued by the guest itself while the verifying load runs."""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import HarnessError
from harness.guest.fio import VerifyLoad
from harness.guest.nvme import Controller
from harness.guest.ssh import Background, call_line
from harness.machine.topology import Topology
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.registry import Soak, scenario

ADMIN_KILL_S = 20  # an admin command still running after this long has hung


def _reset_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(3, 5))]
    warmup = ctx.rng.uniform(1.0, 2.0)
    loads = ctx.start_loads(runtime=warmup + sum(gaps) + 4)
    ctx.sleep(warmup)
    ctx.resets(gaps)
    ctx.finish_loads(loads)


RESETS = Soak(Context.reset_any)
SUMMARY = ("echo 1 > reset_controller at seeded random intervals under a verifying write load; "
           "each reset must come back live, with no I/O error and every completed write intact")
scenario("reset-under-load", SUMMARY, soak=RESETS)(_reset_under_load)
scenario("reset-under-load-2cpu", SUMMARY + " (2 CPUs: two I/O queues)",
         Topology.build(cpus=2), ci=False, soak=RESETS)(_reset_under_load)
scenario("reset-under-load-2ns", SUMMARY + " (two namespaces, a load on each)",
         Topology.build(namespaces=["512M", "512M:4096"]), ci=False,
         soak=RESETS)(_reset_under_load)
scenario("reset-under-load-2ctrl", SUMMARY + " (two controllers, resets on either)",
         Topology.build(controllers=2, namespaces=["512M"]), ci=False,
         soak=RESETS)(_reset_under_load)


def _storm(ctx: Context) -> None:
    """A burst of concurrent resets of nvme0; returns once it is live again."""
    ctrl = ctx.controller()
    width = ctx.rng.randint(2, 4)
    codes = ctx.act(call_line("_nvme_reset_concurrently", ctrl.name, width),
                    f"{width} concurrent resets of {ctrl.name}").split()
    if not codes or set(codes) - {"0", "1"} or "0" not in codes:
        ctx.fail(FailureKind.NOT_RECOVERED,
                 f"concurrent resets returned {codes}: none was accepted",
                 code="resets-refused")
    ctx.wait_live(ctrl)


@scenario("reset-storm",
          "bursts of concurrent resets, back to back, under load: a reset issued while one is "
          "in progress is refused (EBUSY) or coalesced, never a crash; then live, data intact",
          soak=Soak(_storm))
def reset_storm(ctx: Context) -> None:
    bursts = ctx.rng.randint(3, 5)
    loads = ctx.start_loads(runtime=bursts * 2 + 6)
    ctx.sleep(1.5)
    for _ in range(bursts):
        _storm(ctx)
        ctx.sleep(ctx.rng.uniform(0.2, 1.0))
    ctx.finish_loads(loads)


def _repeat_under_load(ctx: Context, disturb: Callable[[Context], None],
                       gaps: list[float]) -> None:
    """Disturb nvme0 after each gap, under load."""
    loads = ctx.start_loads(runtime=sum(gaps) + 8)
    ctx.sleep(1.5)
    for gap in gaps:
        disturb(ctx)
        ctx.sleep(gap)
    ctx.finish_loads(loads)


def _rescan(ctx: Context) -> None:
    ctrl = ctx.controller()
    ctx.act(f"echo 1 > {ctrl.sysfs}/rescan_controller", f"rescan_controller {ctrl.name}")
    ctx.wait_live(ctrl)


def _flr(ctx: Context) -> None:
    ctrl = ctx.controller()
    address = ctrl.pci_address
    ctx.act(f"echo 1 > /sys/bus/pci/devices/{address}/reset", f"FLR of {address}")
    ctx.wait_live(ctrl)


@scenario("rescan-under-load",
          "echo 1 > rescan_controller at seeded intervals under load: no error, data intact",
          soak=Soak(_rescan))
def rescan_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.3, 1.5) for _ in range(ctx.rng.randint(4, 8))]
    _repeat_under_load(ctx, _rescan, gaps)


@scenario("flr-under-load",
          "PCI function-level reset through the function's sysfs 'reset' attribute under load: "
          "the driver quiesces, the device resets, the controller is live again, data intact",
          soak=Soak(_flr))
def flr_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(2, 4))]
    _repeat_under_load(ctx, _flr, gaps)


def _admin_loop(ctx: Context, ctrl: Controller) -> Background:
    return ctx.guest.call_background("_nvme_loop_admin", ctrl.name, 12, ADMIN_KILL_S)


def _resets_under_admin(ctx: Context, ctrl: Controller, admin: Background) -> None:
    """Seeded resets while the ``admin`` loop runs; then no command of it may have hung."""
    for _ in range(ctx.rng.randint(4, 7)):
        ctx.sleep(ctx.rng.uniform(0.3, 1.5))
        ctx.reset(ctrl)
    res = admin.wait(timeout=60)
    ctx.event("admin", res.stdout.strip())
    if res.exit_code != 0:
        ctx.fail(FailureKind.HANG, f"an admin command hung past its {ADMIN_KILL_S}s timeout: "
                 f"{res.stdout.strip()}")


def _admin_against_resets(ctx: Context) -> None:
    ctrl = ctx.controller()
    _resets_under_admin(ctx, ctrl, _admin_loop(ctx, ctrl))


@scenario("admin-during-reset",
          "nvme-cli admin commands (id-ctrl, smart-log, get-feature) in a loop while resets run: "
          "none may hang past its timeout, and the controller ends live",
          soak=Soak(_admin_against_resets))
def admin_during_reset(ctx: Context) -> None:
    ctrl = ctx.controller()
    admin = _admin_loop(ctx, ctrl)
    loads = ctx.start_loads(runtime=14)
    _resets_under_admin(ctx, ctrl, admin)
    ctx.finish_loads(loads)


def _polled_and_interrupt_loads(ctx: Context, runtime: float, data_seed: int | None = None,
                                region: int = 0) -> list[VerifyLoad]:
    """``region`` 1: the other half of the space of each (a soak's alternate segments)."""
    name = ctx.namespace_name()
    if ctx.guest.run(f"cat /sys/block/{name}/queue/io_poll", check=True).stdout.strip() != "1":
        raise HarnessError(f"{name} has no poll queue (io_poll is 0): nvme.poll_queues did not "
                           "take effect, and the scenario would test nothing")
    loads = [ctx.start_load(runtime, offset=f"{region * 256}M", size="256M", polled=True,
                            warm_up=False, data_seed=data_seed),
             ctx.start_load(runtime, offset=f"{512 + region * 128}M", size="128M",
                            warm_up=False, data_seed=data_seed)]
    ctx.warm_up(loads)
    return loads


@scenario("poll-queues",
          "the driver with a poll queue (nvme.poll_queues=1, 2 CPUs): a polled io_uring load "
          "(HIPRI) and an interrupt-driven libaio load run while resets tear the queues down, "
          "so completions reaped by polling and by interrupts race with the reset; live each "
          "time, no error, every completed write of both loads intact",
          Topology.build(cpus=2, kernel_args="nvme.poll_queues=1"),
          soak=Soak(Context.reset_any, loads=_polled_and_interrupt_loads))
def poll_queues(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(3, 5))]
    loads = _polled_and_interrupt_loads(ctx, sum(gaps) + 6)
    ctx.sleep(ctx.rng.uniform(1.0, 2.0))
    ctx.resets(gaps)
    ctx.finish_loads(loads)

