"""Controller resets issued by the guest itself while the verifying load runs."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.guest.ssh import call_line
from harness.machine.topology import Topology
from harness.reading.verdict import FailureKind
from harness.recovery.context import Context
from harness.recovery.registry import scenario

ADMIN_KILL_S = 20  # an admin command still running after this long has hung


def _reset_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(3, 5))]
    warmup = ctx.rng.uniform(1.0, 2.0)
    loads = ctx.start_loads(runtime=warmup + sum(gaps) + 4)
    ctx.sleep(warmup)
    ctx.resets(gaps)
    ctx.finish_loads(loads)


SUMMARY = ("echo 1 > reset_controller at seeded random intervals under a verifying write load; "
           "each reset must come back live, with no I/O error and every completed write intact")
scenario("reset-under-load", SUMMARY)(_reset_under_load)
scenario("reset-under-load-2cpu", SUMMARY + " (2 CPUs: two I/O queues)",
         Topology.build(cpus=2), ci=False)(_reset_under_load)
scenario("reset-under-load-2ns", SUMMARY + " (two namespaces, a load on each)",
         Topology.build(namespaces=["512M", "512M:4096"]), ci=False)(_reset_under_load)
scenario("reset-under-load-2ctrl", SUMMARY + " (two controllers, resets on either)",
         Topology.build(controllers=2, namespaces=["512M"]), ci=False)(_reset_under_load)


@scenario("reset-storm",
          "bursts of concurrent resets, back to back, under load: a reset issued while one is "
          "in progress is refused (EBUSY) or coalesced, never a crash; then live, data intact")
def reset_storm(ctx: Context) -> None:
    bursts = ctx.rng.randint(3, 5)
    loads = ctx.start_loads(runtime=bursts * 2 + 6)
    ctx.sleep(1.5)
    ctrl = ctx.controller("nvme0")
    for _ in range(bursts):
        width = ctx.rng.randint(2, 4)
        codes = ctx.act(call_line("_nvme_reset_concurrently", ctrl.name, width),
                        f"{width} concurrent resets of {ctrl.name}").split()
        if not codes or set(codes) - {"0", "1"} or "0" not in codes:
            ctx.fail(FailureKind.NOT_RECOVERED,
                     f"concurrent resets returned {codes}: none was accepted",
                     code="resets-refused")
        ctx.wait_live(ctrl)
        ctx.sleep(ctx.rng.uniform(0.2, 1.0))
    ctx.finish_loads(loads)


def _repeat_under_load(ctx: Context, command: str, what: str, gaps: list[float]) -> None:
    """Run a guest command that disturbs nvme0 after each gap, under load; live each time."""
    loads = ctx.start_loads(runtime=sum(gaps) + 8)
    ctx.sleep(1.5)
    ctrl = ctx.controller("nvme0")
    for gap in gaps:
        ctx.act(command, what)
        ctx.wait_live(ctrl)
        ctx.sleep(gap)
    ctx.finish_loads(loads)


@scenario("rescan-under-load",
          "echo 1 > rescan_controller at seeded intervals under load: no error, data intact")
def rescan_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.3, 1.5) for _ in range(ctx.rng.randint(4, 8))]
    _repeat_under_load(ctx, "echo 1 > /sys/class/nvme/nvme0/rescan_controller",
                       "rescan_controller nvme0", gaps)


@scenario("flr-under-load",
          "PCI function-level reset through the function's sysfs 'reset' attribute under load: "
          "the driver quiesces, the device resets, the controller is live again, data intact")
def flr_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(2, 4))]
    address = ctx.controller("nvme0").pci_address
    _repeat_under_load(ctx, f"echo 1 > /sys/bus/pci/devices/{address}/reset",
                       f"FLR of {address}", gaps)


@scenario("admin-during-reset",
          "nvme-cli admin commands (id-ctrl, smart-log, get-feature) in a loop while resets run: "
          "none may hang past its timeout, and the controller ends live")
def admin_during_reset(ctx: Context) -> None:
    ctrl = ctx.controller("nvme0")
    admin = ctx.guest.call_background("_nvme_loop_admin", ctrl.name, 12, ADMIN_KILL_S)
    loads = ctx.start_loads(runtime=14)
    for _ in range(ctx.rng.randint(4, 7)):
        ctx.sleep(ctx.rng.uniform(0.3, 1.5))
        ctx.reset(ctrl)
    res = admin.wait(timeout=60)
    ctx.event("admin", res.stdout.strip())
    if res.exit_code != 0:
        ctx.fail(FailureKind.HANG, f"an admin command hung past its {ADMIN_KILL_S}s timeout: "
                 f"{res.stdout.strip()}")
    ctx.finish_loads(loads)


@scenario("poll-queues",
          "the driver with a poll queue (nvme.poll_queues=1, 2 CPUs): a polled io_uring load "
          "(HIPRI) and an interrupt-driven libaio load run while resets tear the queues down, "
          "so completions reaped by polling and by interrupts race with the reset; live each "
          "time, no error, every completed write of both loads intact",
          Topology.build(cpus=2, kernel_args="nvme.poll_queues=1"))
def poll_queues(ctx: Context) -> None:
    if ctx.guest.run("cat /sys/block/nvme0n1/queue/io_poll", check=True).stdout.strip() != "1":
        raise HarnessError("nvme0n1 has no poll queue (io_poll is 0): nvme.poll_queues did not "
                           "take effect, and the scenario would test nothing")
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(3, 5))]
    runtime = sum(gaps) + 6
    loads = [ctx.start_load(runtime, size="256M", polled=True, warm_up=False),
             ctx.start_load(runtime, offset="512M", size="128M", warm_up=False)]
    ctx.warm_up(loads)
    ctx.sleep(ctx.rng.uniform(1.0, 2.0))
    ctx.resets(gaps)
    ctx.finish_loads(loads)
