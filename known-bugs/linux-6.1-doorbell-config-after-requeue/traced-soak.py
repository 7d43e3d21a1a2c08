"""A soak of reset-under-load-2cpu with the driver's submission and completion tracepoints
(and block_rq_requeue) kept in a tracefs instance of their own, stopped the moment the soak
ends or fails; the trace saved. From the repository's root:

    python known-bugs/linux-6.1-doorbell-config-after-requeue/traced-soak.py \
        debian:6.1 - SEED SECONDS /tmp/t/trace.txt      # "-": the stock driver, else --nvme-src
"""
import sys
from pathlib import Path

from harness.machine.lab import Lab, LabConfig
from harness.recovery import scenarios, soak
from harness.recovery.runner import run_iteration
from harness.recovery.soak import SoakPlan

kernel, src, seed, seconds, out = (sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                                   Path(sys.argv[5]))
lab = Lab(LabConfig(kernel=kernel, nvme_src=Path(src) if src != "-" else None))
scn = scenarios.get("reset-under-load-2cpu")
plan = SoakPlan(seconds=seconds)
inner = soak.procedure(scn, plan)
T = "/sys/kernel/tracing/instances/nvmeh_exp"

def traced(ctx):
    ctx.guest.run(f"mkdir -p {T} && echo 20000 > {T}/buffer_size_kb && "
                  f"echo 1 > {T}/events/nvme/nvme_setup_cmd/enable && "
                  f"echo 1 > {T}/events/nvme/nvme_complete_rq/enable && "
                  f"echo 1 > {T}/events/block/block_rq_requeue/enable && echo 1 > {T}/tracing_on",
                  check=True)
    try:
        inner(ctx)
    finally:
        ctx.guest.run(f"echo 0 > {T}/tracing_on", timeout=30)
        ctx.guest.run(f"tail -c 30000000 {T}/trace > /run/nvmeh/trace.txt", timeout=120)
        ctx.guest.get("/run/nvmeh/trace.txt", out)

result = run_iteration(lab, scn, seed, out.parent / f"art-{out.stem}", procedure=traced)
print("passed" if result.passed else "FAIL: " + "; ".join(map(str, result.failures))[:600])
print(f"faults {plan.done} at {plan.elapsed:.0f}s; failed_at {plan.failed_at}")
