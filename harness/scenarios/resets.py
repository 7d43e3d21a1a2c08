"""Controller resets issued by the guest itself while the verifying load runs."""

from __future__ import annotations

from harness.scenario import Context, scenario


@scenario("reset-under-load",
          "echo 1 > reset_controller at seeded random intervals under a verifying write load; "
          "each reset must come back live, with no I/O error and every completed write intact")
def reset_under_load(ctx: Context) -> None:
    gaps = [ctx.rng.uniform(0.5, 2.0) for _ in range(ctx.rng.randint(3, 5))]
    warmup = ctx.rng.uniform(1.0, 2.0)
    load = ctx.start_load(runtime=warmup + sum(gaps) + 4)
    ctx.sleep(warmup)
    ctrl = ctx.controller("nvme0")
    for gap in gaps:
        ctx.reset(ctrl)
        ctx.sleep(gap)
    ctx.finish_load(load)
