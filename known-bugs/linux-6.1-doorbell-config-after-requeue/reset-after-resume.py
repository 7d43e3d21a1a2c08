"""suspend-under-load with its racing reset made certain to come after the resume: before
each suspend a guest shell waits (frozen with the other tasks) until the suspend has ended
and the controller is live again, then writes reset_controller at once, as the failing
seed-2 round's reset did (38 ms after the resume's reset). From the repository's root:

    python known-bugs/linux-6.1-doorbell-config-after-requeue/reset-after-resume.py \
        debian:6.1 - SEED ARTIFACTS      # "-": the stock driver, else an --nvme-src directory
"""
import sys
from pathlib import Path

from harness.faults.host import SuspendToIdle
from harness.machine.lab import Lab, LabConfig
from harness.recovery import scenarios
from harness.recovery.context import Context
from harness.recovery.runner import run_iteration

kernel, src, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
lab = Lab(LabConfig(kernel=kernel, nvme_src=Path(src) if src != "-" else None))
scn = scenarios.get("suspend-under-load")


def reset_after_resume(ctx: Context) -> None:
    ctx.detect_hangs(10)
    ctrl = ctx.controller()
    rounds = [(ctx.rng.uniform(1.0, 2.5), ctx.rng.uniform(1.0, 3.0)) for _ in range(3)]
    loads = ctx.start_loads(runtime=sum(gap + held + 10 for gap, held in rounds) + 6)
    stats = "/sys/power/suspend_stats/success"
    for gap, held in rounds:
        ctx.sleep(gap)
        ctx.act(f"s=$(cat {stats}); ( while [ \"$(cat {stats})\" = \"$s\" ] || "
                f"[ \"$(cat {ctrl.sysfs}/state)\" != live ]; do sleep 0.001; done; "
                f"echo 1 > {ctrl.sysfs}/reset_controller ) >/dev/null 2>&1 &",
                f"reset_controller {ctrl.name} armed for the moment it is live after the resume")
        with ctx.inject(SuspendToIdle(ctx.qemu_vm(), ctrl.pci_address, ctx.live_bound)):
            ctx.sleep(held)
        ctx.sleep(1.0)  # the armed reset has run
        ctx.wait_live(ctrl)
        ctx.writes_resume(loads)
    ctx.finish_loads(loads)


result = run_iteration(lab, scn, seed, out, procedure=reset_after_resume)
print("PASS" if result.passed else "FAIL: " + "; ".join(map(str, result.failures))[:700])
