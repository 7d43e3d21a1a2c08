"""``python -m harness``: doctor, images, kernel, run, shell, repro, matrix, report, bench.

A thin layer over the library."""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

from harness.build import driver, images, kernels, qemus
from harness.campaigns import bench as bench_mod
from harness.campaigns import options as opt
from harness.campaigns.options import seconds
from harness.errors import (
    EXIT_HARNESS,
    EXIT_OK,
    BadInput,
    GuestUnreachable,
    HarnessError,
)
from harness.machine import doctor as doctor_mod
from harness.machine.lab import Lab
from harness.machine.topology import Topology
from harness.machine.vm import VM
from harness.progress import Progress
from harness.recovery import scenarios
from harness.recovery.registry import Scenario
from harness.recovery.runner import MAX_SEED
from harness.report import ReportDir, artifacts_root
from harness.target.machine import TargetConfig, TargetLab


def _add_vm_options(p: argparse.ArgumentParser) -> None:
    opt.add_to_argparse(p, opt.KERNEL, opt.NVME_SRC, opt.QEMU, opt.ACCEL, opt.TOPOLOGY,
                        opt.BOOT_TIMEOUT)
    p.add_argument("--artifacts", type=Path, default=None, metavar="DIR",
                   help="keep console, QMP and command logs in DIR")
    opt.add_to_argparse(p, opt.NO_SNAPSHOT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check the host; print (or run) the commands that fix it")
    p.add_argument("--install", action="store_true", help="run the fixes (apt-get, sudo if needed)")
    opt.add_to_argparse(p, opt.QEMU)
    p.add_argument("--kernel-build", action="store_true",
                   help="also check the tools `kernel build` needs (gcc, flex, bison, ...)")
    p.add_argument("--browser", action="store_true",
                   help="also check for the headless Chromium the report's test renders with")

    p = sub.add_parser("images", help="build or reuse the guest kernel and root filesystem")
    opt.add_to_argparse(p, opt.KERNEL, opt.NVME_SRC)

    p = sub.add_parser("kernel", help="guest kernels: list them, get driver sources, build one")
    ksub = p.add_subparsers(dest="kernel_command", required=True, metavar="ACTION")
    k = ksub.add_parser("list", help="the Debian kernels --kernel accepts, and their releases")
    k = ksub.add_parser("nvme-src", help="write the kernel's own drivers/nvme/host sources to "
                        "DIR, to patch and pass as --nvme-src")
    k.add_argument("--kernel", default=images.DEFAULT_KERNEL)
    k.add_argument("dest", type=Path, metavar="DIR")
    k = ksub.add_parser("source", help="write the kernel's whole Debian source tree to DIR "
                        "(to build a test kernel from)")
    k.add_argument("--kernel", default=images.DEFAULT_KERNEL)
    k.add_argument("dest", type=Path, metavar="DIR")
    k = ksub.add_parser("build", help="configure (images/debug-kernel.config) and build a test "
                        "kernel in a source tree; boot it with --kernel SRC")
    k.add_argument("src", type=Path, metavar="SRC", help="a Linux source tree")
    k.add_argument("--base", default="x86_64_defconfig",
                   help="make target of the base config (default: %(default)s; tinyconfig "
                   "for the smallest build)")
    k.add_argument("--kasan", action="store_true", help="also merge images/kasan.config")
    k.add_argument("-j", "--jobs", type=int, default=None)

    p = sub.add_parser("run", help="boot a VM, run CMD in the guest, exit with its exit code",
                       epilog="exit codes: CMD's own; 124 CMD timed out; 125 the harness could "
                       "not start the VM; 254 guest kernel panic; 255 the VM died")
    _add_vm_options(p)
    p.add_argument("--timeout", type=seconds, default=3600.0, help="CMD timeout in seconds")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")

    p = sub.add_parser("shell", help="boot a VM and open an interactive SSH shell in it")
    _add_vm_options(p)

    p = sub.add_parser("repro", help="run a recovery scenario for N seeded iterations",
                       epilog="exit codes (git bisect run): 0 every iteration passed; 1 the "
                       "driver failed; 125 the harness could not test")
    _add_vm_options(p)
    p.add_argument("scenario", metavar="SCENARIO", help="a scenario name (see --list)",
                   nargs="?")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    opt.add_to_argparse(p, opt.ITERATIONS.defaulting(None, "1; with --until-fail, at most N"),
                        opt.SEED.defaulting(None, "random"))
    p.add_argument("--until-fail", action="store_true",
                   help="repeat with fresh seeds until an iteration fails or the budget ends")
    p.add_argument("--budget", type=seconds, default=None, metavar="SECONDS",
                   help="time budget of --until-fail (default: 3600)")
    opt.add_to_argparse(p, opt.SOAK, opt.SOAK_FAULTS, opt.SOAK_CHECKPOINT, opt.REPORT_DIR,
                        *opt.TARGET_OPTIONS)
    p.add_argument("--nvme-srcs", default=None, metavar="LIST",
                   help="compare drivers on the same seeds, the base first: [NAME=]DIR or stock, "
                   "as matrix --nvme-srcs (give --iterations 2 or more for the noise)")

    p = sub.add_parser("matrix", help="run scenarios on several kernels and print a table",
                       epilog="exit codes: 0 no unexpected failure; 1 a driver failure that is "
                       "not a known bug; 125 some cell could not be tested")
    p.add_argument("--kernels", default=",".join(sorted(kernels.known_kernels())),
                   help="comma-separated --kernel values, each running the same seeds "
                   "(default: %(default)s)")
    p.add_argument("--qemus", default=None, metavar="LIST",
                   help="comma-separated --qemu values (binaries or debian:SUITE), each "
                   "running every kernel on the same seeds: the table gets a column per "
                   "kernel and QEMU (default: --qemu)")
    p.add_argument("--nvme-srcs", default=None, metavar="LIST",
                   help="comma-separated drivers to compare, the base first: [NAME=]DIR (as "
                   "--nvme-src) or stock (the kernel's own); each runs every kernel on the "
                   "same seeds, and each is set side by side with the base: verdicts, times "
                   "back to live, to writes and to throughput, flagged beyond the base's own "
                   "noise over its seeds (give --iterations 2 or more)")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="scenarios to run (default: every scenario)")
    opt.add_to_argparse(p, opt.ITERATIONS, opt.SEED.defaulting(None, "random"), opt.NVME_SRC,
                        opt.QEMU, opt.ACCEL, opt.BOOT_TIMEOUT, opt.NO_SNAPSHOT)
    p.add_argument("--artifacts", type=Path, default=None, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the cells as JSON")
    opt.add_to_argparse(p, opt.SOAK, opt.SOAK_FAULTS, opt.SOAK_CHECKPOINT, opt.REPORT_DIR,
                        *opt.TARGET_OPTIONS)

    p = sub.add_parser("report", help="merge report dirs (shards); durations for shards",
                       epilog="merge exits as matrix: 0 no unexpected failure; 1 a driver "
                       "failure that is not a known bug; 125 some test could not run")
    p.add_argument("action", choices=("merge", "durations"),
                   help="merge: one report of several; durations: pytest-split's "
                   ".test_durations (JSON, stdout) from pytest report dirs")
    p.add_argument("sources", nargs="+", type=Path, metavar="DIR",
                   help="report dirs written with --report-dir")
    p.add_argument("--into", type=Path, default=None, metavar="DIR",
                   help="the merged report dir (merge), the shards' artifacts copied into it")
    p.add_argument("--title", default=None)

    p = sub.add_parser("bench", help="measure boot-to-ready, SSH round trip, IOPS, resets, "
                       "whole reset-under-load iterations and a soak")
    _add_vm_options(p)
    p.add_argument("--runs", type=int, default=3,
                   help="runs of each measurement: boots, IOPS, iterations (median)")
    p.add_argument("--soak", type=seconds, default=bench_mod.SOAK_S, metavar="SECONDS",
                   help="faults of the soak measured beside the iterations (default: "
                   "%(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(opt.lab_config(vars(args)))


def _lab_or_target(args: argparse.Namespace) -> Lab | TargetLab:
    """The VMs of a run, or the real machine --target names."""
    target = getattr(args, "target", None)
    if target is None:
        if getattr(args, "device", None) or getattr(args, "destroy_data_on", None):
            raise BadInput("--device and --destroy-data-on go with --target")
        return _lab(args)
    return TargetLab(TargetConfig.parse(target, args.device, args.destroy_data_on,
                                        args.power_cmd, args.boot_timeout, args.nvme_src))


def _print_checks(found: list[doctor_mod.Check]) -> None:
    for c in found:
        mark = "ok " if c.ok else "MISSING"
        print(f"{mark:8}{c.name:26}{c.detail}")


def cmd_doctor(args: argparse.Namespace) -> int:
    found = doctor_mod.checks(args.qemu, args.kernel_build, args.browser)
    _print_checks(found)
    commands = doctor_mod.fixes(found)
    if args.install and commands:
        code = doctor_mod.install(commands)
        if code != 0:
            print(f"a fix failed with exit code {code}", file=sys.stderr)
            return EXIT_HARNESS
        found = doctor_mod.checks(args.qemu, args.kernel_build, args.browser)
        print("after the install:")
        _print_checks(found)
        commands = doctor_mod.fixes(found)
    if doctor_mod.ready(found):
        print("ready")
        return EXIT_OK
    if commands:
        print("\nto fix, run:")
        for command in commands:
            print(f"  {command}")
        if not args.install:
            print("or: python -m harness doctor --install")
    for line in doctor_mod.advice(found):
        print(f"to fix by hand: {line}")
    return EXIT_HARNESS


def cmd_images(args: argparse.Namespace) -> int:
    image = images.prepare(args.kernel, nvme_src=args.nvme_src)
    print(f"kernel   {image.kernel.release} ({image.kernel.spec}): {image.kernel.boot_image}")
    print(f"modules  {image.kernel.modules_image}")
    if image.driver is not None:
        built = (f"built in {image.driver.seconds:.1f}s" if image.driver.seconds
                 else "from the cache")
        print(f"driver   {image.driver.source} ({built}, hash {image.driver.hash}): "
              + " ".join(str(m) for m in image.driver.modules))
    print(f"initrd   {image.initrd}")
    print(f"rootfs   {image.rootfs}")
    return EXIT_OK


def cmd_kernel(args: argparse.Namespace) -> int:
    if args.kernel_command == "list":
        for spec, meta in sorted(kernels.known_kernels().items()):
            release = kernels.debian_release(spec)
            print(f"{spec:14} Debian {meta['suite']:10} {release}")
        return EXIT_OK
    if args.kernel_command == "build":
        from harness.build import kbuild

        built = kbuild.build(args.src, args.base, args.kasan, args.jobs)
        how = "configured and built" if built.configured else "built (config unchanged)"
        print(f"{built.tree}: {built.release}, {how} in {built.seconds:.0f}s; boot it with "
              f"--kernel {built.tree}")
        for option in built.unmet:
            print(f"warning: {option}: not granted by Kconfig on this base", file=sys.stderr)
        return EXIT_OK
    kimage = kernels.get(args.kernel, Progress())
    if args.kernel_command == "source":
        dest = driver.full_sources(kimage, args.dest, Progress())
        print(f"{dest}: the source tree of {kimage.release}; build a test kernel with: "
              f"python -m harness kernel build {dest}")
        return EXIT_OK
    dest = driver.stock_sources(kimage, args.dest, Progress())
    print(f"{dest}: drivers/nvme/host of {kimage.release}; patch it, then "
          f"--kernel {args.kernel} --nvme-src {dest}")
    return EXIT_OK


def _topology(args: argparse.Namespace) -> Topology:
    return Topology.parse(args.topology) if args.topology else Topology()


def cmd_run(args: argparse.Namespace) -> int:
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise HarnessError("run needs a command: python -m harness run -- CMD...")
    topology = _topology(args)
    lab = _lab(args)
    with lab.running(topology, args.artifacts) as vm:
        text = command[0] if len(command) == 1 else shlex.join(command)
        try:
            res = vm.guest.run(text, timeout=args.timeout)
        except GuestUnreachable:
            vm.explain_lost_connection()  # a panic or a dead QEMU explains it best
            raise
        sys.stdout.write(res.stdout)
        sys.stderr.write(res.stderr)
        _warn_oopses(vm)
        return res.exit_code


def _warn_oopses(vm: VM) -> None:
    for oops in vm.oopses:
        print(f"nvmeh: guest kernel reported: {oops.title}", file=sys.stderr)


def cmd_shell(args: argparse.Namespace) -> int:
    topology = _topology(args)
    lab = _lab(args)
    with lab.running(topology, args.artifacts) as vm:
        key = vm.scratch / "id_ed25519"
        vm.client_key.save(key)
        known = vm.scratch / "known_hosts"
        host = vm.host_key.pkey
        known.write_text(f"[127.0.0.1]:{vm.ssh_port} {host.get_name()} {host.get_base64()}\n")
        ssh = ["ssh", "-i", str(key), "-p", str(vm.ssh_port), "-o", "IdentitiesOnly=yes",
               "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
               "root@127.0.0.1"]
        print(f"nvmeh: {vm.accel}, boot took {vm.boot_seconds:.1f}s; exit the shell to stop "
              f"the VM.\nnvmeh: from another terminal: {shlex.join(ssh)}", file=sys.stderr)
        try:
            code = subprocess.call(ssh)
        except FileNotFoundError:
            raise HarnessError("ssh client missing: apt-get install openssh-client") from None
        vm.check_alive()
        _warn_oopses(vm)
        return code


def cmd_bench(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise HarnessError("--runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="nvmeh-bench-") as tmp:
        result = bench_mod.run(_lab(args), _topology(args), runs=args.runs,
                               artifacts=args.artifacts or Path(tmp), soak_s=args.soak)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.table())
    return EXIT_OK


def cmd_repro(args: argparse.Namespace) -> int:
    from harness.campaigns import repro

    if args.list:
        for name in scenarios.names():
            scn = scenarios.get(name)
            print(f"{name:24} {scn.summary}" + (" [soak]" if scn.soak else ""))
        return EXIT_OK
    if not args.scenario:
        raise HarnessError("repro needs a scenario name; valid: "
                           + ", ".join(scenarios.names()))
    scn = scenarios.get(args.scenario)
    if args.nvme_srcs:  # a patch against its base: the matrix of one scenario on one kernel
        if args.target:
            raise BadInput("--nvme-srcs compares drivers in VMs; not with --target")
        if args.until_fail:
            raise BadInput("--nvme-srcs compares drivers on the same seeds; not with "
                           "--until-fail")
        if args.topology:
            raise BadInput("repro runs each scenario on its own topology; --topology is not "
                           "accepted here")
        return _matrix(args, [args.kernel], [args.qemu], [scn],
                       args.iterations if args.iterations is not None else 1)
    return repro.run(_lab_or_target, args, scn)


def cmd_report(args: argparse.Namespace) -> int:
    from harness import report

    if args.action == "durations":
        print(json.dumps(report.durations(args.sources), indent=1))
        return EXIT_OK
    if args.into is None:
        raise BadInput("report merge needs --into DIR")
    merged = report.merge(args.into, args.sources, args.title)
    counts = ", ".join(f"{n} {s.name}" for s in report.Status
                       if (n := sum(r.status is s for r in merged.runs)))
    print(f"nvmeh: {len(merged.runs)} test(s) from {len(args.sources)} report dir(s) "
          f"({counts or 'none'}): {args.into / 'index.html'}")
    return report.exit_status(r.status for r in merged.runs)


def cmd_matrix(args: argparse.Namespace) -> int:
    scns = [scenarios.get(n) for n in (args.scenarios or scenarios.names())]
    if args.target is not None:  # one column: the machine and its own kernel
        if args.nvme_srcs or args.qemus:
            raise BadInput("--target runs the machine's own kernel: not with --nvme-srcs or "
                           "--qemus")
        return _matrix(args, [], [], scns, args.iterations)
    wanted = [k.strip() for k in args.kernels.split(",") if k.strip()]
    if not wanted:
        raise HarnessError("--kernels is empty")
    for spec in wanted:
        kernels.validate(spec)
    emulators = [q.strip() for q in (args.qemus or args.qemu).split(",") if q.strip()]
    if not emulators:
        raise HarnessError("--qemus is empty")
    for qemu in emulators:
        qemus.validate(qemu)
    scns = [scenarios.get(n) for n in (args.scenarios or scenarios.names())]
    return _matrix(args, wanted, emulators, scns, args.iterations)


def _matrix(args: argparse.Namespace, wanted: list[str], emulators: list[str],
            scns: list[Scenario], iterations: int) -> int:
    """Each scenario on each kernel, QEMU and driver (``--nvme-srcs``), on the same seeds;
    the table, and each driver set beside the first."""
    from harness.campaigns import matrix, repro

    drivers = matrix.drivers(args.nvme_srcs) if args.nvme_srcs else [(None, args.nvme_src)]
    if args.nvme_srcs and args.nvme_src:
        raise HarnessError("give --nvme-src or --nvme-srcs, not both")
    if not 1 <= iterations <= 1000:
        raise HarnessError("--iterations must be between 1 and 1000")
    soaks = repro.soak_plans(args)
    seed = args.seed if args.seed is not None else random.randint(0, MAX_SEED - 1000)
    seeds = [seed + i for i in range(iterations)]
    root = artifacts_root(args.artifacts, args.report_dir) or Path(
        tempfile.mkdtemp(prefix="nvmeh-matrix-"))
    print(f"nvmeh: matrix of {len(scns)} scenario(s) on {', '.join(wanted) or args.target}"
          + (f" under {', '.join(emulators)}" if len(emulators) > 1 else "")
          + (f" with drivers {', '.join(str(n) for n, _ in drivers)}" if len(drivers) > 1
             else "") + ", seeds "
          f"{seeds[0]}..{seeds[-1]}; artifacts in {root}"
          + (f"; report in {args.report_dir}/index.html" if args.report_dir else ""),
          file=sys.stderr, flush=True)
    title = f"matrix {','.join(wanted) or args.target}" + (f" under {','.join(emulators)}"
                                              if len(emulators) > 1 else "")
    report_dir = ReportDir(args.report_dir, title) if args.report_dir else None
    cells = []
    # (column, driver, lab), each lab made when its turn comes
    labs: Iterable[tuple[str, str | None, Lab | TargetLab]] = (
        # the QEMU names the column only when the matrix has several
        (matrix.column(spec, qemu if len(emulators) > 1 else None, name), name,
         Lab(opt.lab_config({**vars(args), "kernel": spec, "qemu": qemu, "nvme_src": src})))
        for qemu in emulators for spec in wanted for name, src in drivers)
    if getattr(args, "target", None) is not None:
        labs = [("target", None, _lab_or_target(args))]
    for column, name, lab in labs:
        for scn in scns:
            cells.append(matrix.run_cell(
                lab, scn, seeds, root / column.replace("/", "_").replace(" ", "_"),
                lambda line: print(line, file=sys.stderr, flush=True), report_dir,
                column, name, soaks))
    as_json = getattr(args, "json", False)  # repro has no --json
    out = sys.stderr if as_json else sys.stdout  # --json: the text for the human watching
    if as_json:
        print(json.dumps([c.as_dict() for c in cells], indent=2))
    print(matrix.table(cells), file=out)
    if len(drivers) > 1:
        text, found = matrix.comparisons(cells, [str(n) for n, _ in drivers])
        print(f"\n{text}\n\n{found} figure(s) differ beyond the noise", file=out)
    return matrix.exit_status(cells)


COMMANDS = {"doctor": cmd_doctor, "images": cmd_images, "kernel": cmd_kernel, "run": cmd_run,
            "shell": cmd_shell, "repro": cmd_repro, "matrix": cmd_matrix, "report": cmd_report,
            "bench": cmd_bench}


# The options naming a directory a command writes to: tried before the command starts, so that
# an unwritable one is a line at once, not a traceback after a boot.
_OUTPUT_DIRS = ("artifacts", "report_dir", "into")


def _check_writable(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise BadInput(f"{option} {path} is not a directory the harness can write to "
                       f"({exc.strerror or exc})") from None


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGINT too: a process started in the background by a shell inherits SIGINT ignored,
    # and Python then leaves it ignored; the harness must stop its VMs on SIGINT regardless.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        code = _run(args)
        sys.stdout.flush()  # in the try: the reader may have left by now too
    except BrokenPipeError:
        # stdout's reader left (`repro --list | head`): stop as a process SIGPIPE killed
        # does, without a traceback; stdout goes to /dev/null, where the interpreter's flush
        # at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        for name in _OUTPUT_DIRS:
            if (path := getattr(args, name, None)) is not None:
                _check_writable(path, "--" + name.replace("_", "-"))
        if isinstance(kernel := getattr(args, "kernel", None), str):
            kernels.validate(kernel)  # before any image, snapshot or VM work
        if isinstance(qemu := getattr(args, "qemu", None), str):
            qemus.validate(qemu)
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"nvmeh: error: {exc}", file=sys.stderr)
        if exc.detail:
            print(exc.detail.rstrip(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nvmeh: interrupted; VMs stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
