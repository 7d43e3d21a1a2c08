"""A QEMU virtual machine as a context manager, from first console byte to last cleanup.

Start: private scratch dir, per-VM SSH keys, QEMU with its console on a pipe and QMP on a
socket we listen on, wait for the guest's ready marker, log in over SSH. Stop: QMP ``quit``,
then SIGKILL if QEMU does not exit, then the scratch dir goes. QEMU is also bound to our own
lifetime (PR_SET_PDEATHSIG), so not even a SIGKILLed harness leaves a QEMU behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import shlex
import shutil
import signal
import subprocess
import threading
import time
import weakref
from pathlib import Path

from harness import paths
from harness.build.images import GuestImage, check_image
from harness.errors import (
    CommandTimeout,
    GuestPanic,
    GuestUnreachable,
    HarnessError,
    QemuError,
    VMDied,
)
from harness.guest.nvme import block_device_of, ns_device_script
from harness.guest.ssh import Guest, SSHTarget
from harness.machine import bootcrash
from harness.machine import snapshot as snapshot_mod
from harness.machine.accel import Accel
from harness.machine.console import Console
from harness.machine.hostcpu import process_cpu_seconds
from harness.machine.keys import KeyPair
from harness.machine.qemu import (
    LaunchSpec,
    NamespaceNames,
    command_line,
    controller_device,
    namespace_names,
)
from harness.machine.qmp import Qmp
from harness.machine.relay import RelaySocket, free_port
from harness.machine.snapshot import Snapshot
from harness.machine.system import HungTasks, Lifecycle
from harness.machine.topology import Topology
from harness.reading.kmsg import Oops

_PR_SET_PDEATHSIG = 1
_PORT_RETRIES = 5
_LIVE: weakref.WeakSet[VM] = weakref.WeakSet()

# Where the guest's SSH server (dropbear) looks for root's login keys; guests/stage2 fills it.
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


@atexit.register
def _stop_all() -> None:
    """Last line of defence (e.g. pytest interrupted before its fixtures' teardown)."""
    for vm in list(_LIVE):
        vm.stop(graceful_timeout=1.0)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def require_qemu(qemu: str) -> None:
    if shutil.which(qemu) is None:
        raise QemuError(f"QEMU binary {qemu!r} not found "
                        "(run `python -m harness doctor --install` or pass --qemu PATH)")


class VM(Lifecycle, HungTasks):
    """One QEMU process with the guest image and an NVMe topology, booted cold.

    Its start is a sequence of steps that subclasses replace: :meth:`_launch_spec` (what
    QEMU is told), :meth:`_post_launch` (until the guest is logged into), and
    :meth:`_make_ready` (the guest made ready for a test: every controller live with its
    namespaces, the driver under test checked). :class:`RestoredVM` starts from a snapshot
    instead, :class:`BaseVM` is the guest a snapshot is made of.
    """

    has_host_side = True
    boot_mode = "cold"
    console_name = "console"

    def __init__(self, image: GuestImage, topology: Topology, accel: Accel,
                 qemu: str = "qemu-system-x86_64", artifacts: Path | None = None,
                 name: str = "vm", boot_timeout: float = 120.0) -> None:
        self.image, self.topology, self.accel, self.name = image, topology, accel, name
        self.qemu = qemu
        self.boot_timeout = boot_timeout
        self.scratch = paths.make_scratch(name)
        self.artifacts = artifacts or self.scratch / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self._hangs_reported = 0
        self.console: Console | None = None
        self._qmp: Qmp | None = None
        self._guest: Guest | None = None
        self._relay: RelaySocket | None = None
        self._relay_path = Path()
        # The SSH server's greeting, read off the relay port by a base VM (its snapshot keeps it)
        self.relay_greeting: bytes | None = None
        self.login_via = ""  # "relay" (the virtio-serial port) or "tcp"
        self._commands_log = open(self.artifacts / "commands.log", "w")
        self.snapshot: Snapshot | None = None  # the state it was restored from
        self.client_key = KeyPair.generate()
        self.host_key = KeyPair.generate()
        # (phase, seconds since start) in order: where a start's time went (see bench).
        self.boot_phases: list[tuple[str, float]] = []
        self._t0 = 0.0
        self.ssh_port = 0
        self._port_again = 0  # the port to try first: a power-cycled VM's earlier one
        self.boot_seconds = 0.0
        self._oopses_taken = 0
        self._earlier_oopses: list[Oops] = []  # from lives before a power_cycle()
        self.boot_notes: list[str] = []  # a boot started again, and why (bootcrash)
        self.tainted = False  # set by tests that leave the VM in a state not worth reusing
        self._stopped = threading.Event()
        _LIVE.add(self)

    # --- start -------------------------------------------------------------------------------

    def _write_secrets(self, spec: LaunchSpec) -> None:
        spec.authorized_keys.write_text(self._login_key().authorized_line())
        self.host_key.save_dropbear(spec.host_key)

    def _login_key(self) -> KeyPair:
        """The key the guest lets in at first."""
        return self.client_key

    def _launch_spec(self, port: int) -> LaunchSpec:
        return LaunchSpec(self.qemu, self.accel.name, self.image, self.topology, self.scratch,
                          port)

    def _create_backing_files(self) -> None:
        for i, ctrl in enumerate(self.topology.controllers):
            for nsid, ns in enumerate(ctrl.namespaces, start=1):
                backing = namespace_names(self.scratch, self.topology, i, nsid).backing
                if not backing.exists():
                    with open(backing, "wb") as fh:
                        fh.truncate(ns.size)

    def start(self) -> None:
        for path, what in ((self.image.kernel.boot_image, "kernel image"),
                           (self.image.initrd, "initramfs"), (self.image.rootfs, "root image"),
                           (self.image.kernel.modules_image, "modules image")):
            check_image(path, what)
        require_qemu(self.qemu)
        self._create_backing_files()
        t0 = self._t0 = time.monotonic()
        restarted = False
        while True:
            for attempt in range(_PORT_RETRIES):
                self.ssh_port = self._port_again if attempt == 0 and self._port_again \
                    else free_port()
                spec = self._launch_spec(self.ssh_port)
                self._write_secrets(spec)
                if self._launch(spec, last_attempt=attempt == _PORT_RETRIES - 1):
                    break
            deadline = time.monotonic() + self.boot_timeout
            try:
                self._post_launch(deadline)
                break
            except GuestPanic:
                why = self._restartable_crash()
                if why is None or restarted:
                    raise
                restarted = True
                self.boot_notes.append(f"{why}; booted again (console.log keeps both boots)")
                self._end_life()
        self._make_ready(deadline)
        self.boot_seconds = time.monotonic() - t0
        self._phase("ready")

    def _post_launch(self, deadline: float) -> None:
        """From QEMU running to the guest logged into."""
        self._wait_ready(deadline)
        self._connect(self.client_key, deadline, "guest printed ready but")

    def _make_ready(self, deadline: float) -> None:
        """Every controller live with its namespaces; the driver under test the one loaded."""
        for i in range(len(self.topology.controllers)):
            self._bring_up_controller(i, deadline)
        if self.image.driver is not None:
            self._check_driver()

    def _bring_up_controller(self, i: int, deadline: float) -> None:
        self._await_controller(i, deadline)

    def _phase(self, name: str) -> None:
        self.boot_phases.append((name, time.monotonic() - self._t0))

    def _launch(self, spec: LaunchSpec, last_attempt: bool) -> bool:
        """Start QEMU; False if the SSH port was taken meanwhile (the caller retries)."""
        qmp = Qmp(spec.qmp_socket, self.artifacts / "qmp.log")
        cmd = command_line(spec)
        (self.artifacts / "qemu-cmdline.txt").write_text(" ".join(cmd) + "\n")
        stderr_path = self.artifacts / "qemu-stderr.log"
        stderr = open(stderr_path, "ab")  # appended: a power cycle keeps one log
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=stderr, preexec_fn=_die_with_parent)
        stderr.close()
        assert self.proc.stdout is not None
        self.console = Console(self.proc.stdout.fileno(), self.artifacts / "console.log")
        try:
            qmp.connect(timeout=30, alive=lambda: self.proc is not None
                        and self.proc.poll() is None)
        except QemuError:
            qmp.close()
            self._reap()
            err = stderr_path.read_text(errors="replace").strip()
            if ("hostfwd" in err or "host forwarding" in err) and not last_attempt:
                return False
            status = self.proc.returncode
            last = err.splitlines()[-1] if err else "(it printed nothing)"
            raise QemuError(f"QEMU ({self.qemu}) exited at start with status {status}: {last}",
                            err) from None
        self._qmp = qmp
        self._phase("qmp_connected")
        self._relay_path = spec.ssh_relay_socket
        if not spec.incoming:  # a restore opens the relay port once the saved state is in
            if self.topology.ssh_relay:
                self._relay = self._open_relay(self._relay_path)
            qmp.cmd("cont")
        return True

    def _open_relay(self, path: Path) -> RelaySocket:
        """Hold the host side of the SSH relay port before the guest runs (QEMU creates the
        socket just after it takes the QMP connection)."""
        relay = RelaySocket()
        deadline = time.monotonic() + 10
        while True:
            try:
                relay.connect(str(path))
                return relay
            except OSError as exc:
                self.check_alive()
                if time.monotonic() > deadline:
                    relay.close()
                    raise QemuError(f"QEMU did not open the SSH relay socket {path}: {exc}") \
                        from None
                time.sleep(0.005)

    def _wait_ready(self, deadline: float) -> None:
        console = self.console
        assert console is not None and self.proc is not None
        console.wait_for(lambda: console.ready_count > 0 or console.fatal_line is not None
                         or console.panic is not None or self.proc is None
                         or self.proc.poll() is not None,
                         max(0.0, deadline - time.monotonic()))
        self.check_alive()
        if console.fatal_line:
            raise GuestUnreachable(f"guest init failed: {console.fatal_line}", console.tail())
        if console.ready_count == 0:
            raise GuestUnreachable(
                f"guest not ready after {self.boot_timeout:g}s (console tail below; full log "
                f"{console.log_path})", console.tail() or "(the console printed nothing)")
        self._phase("guest_printed_ready")
        if not console.ready_line.endswith("ssh-relay"):
            self._close_relay()  # the guest has no relay port: log in over TCP

    def _connect(self, key: KeyPair, deadline: float, context: str, replay: bytes = b"") -> None:
        """Log in: over the relay port if the guest has one (``replay``: what of it was read
        before a snapshot), else over TCP."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.replay = replay
        guest = Guest(SSHTarget("127.0.0.1", self.ssh_port, "root", key.pkey,
                                self.host_key.pkey, sock=relay),
                      log=self._commands_log)
        if relay is not None:
            try:
                guest.connect(timeout=max(10.0, deadline - time.monotonic()))
            except GuestUnreachable as exc:
                self.check_alive()
                tail = self.console.tail() if self.console else ""
                raise GuestUnreachable(f"{context} the login over the relay port failed: "
                                       f"{exc}; console tail below", tail) from None
        while not guest.connected:
            try:
                guest.connect(timeout=10)
            except GuestUnreachable as exc:
                self.check_alive()
                if time.monotonic() > deadline:
                    tail = self.console.tail() if self.console else ""
                    raise GuestUnreachable(f"{context} {exc}; console tail below",
                                           tail) from None
                time.sleep(0.05)
        guest.interrupt = self.hang_report
        self._guest = guest
        self.login_via = "relay" if relay is not None else "tcp"
        self._phase("ssh_connected")

    def _await_controller(self, i: int, deadline: float, before: str = "true") -> None:
        """Run ``before``, then wait until ``nvme{i}`` is live with its namespaces present."""
        # Builtins only: after a restore every program's first start costs tens of ms.
        conditions = [f"{{ read -r s < /sys/class/nvme/nvme{i}/state; }} 2>/dev/null",
                      '[ "$s" = live ]']
        if not self.topology.subsystem:
            conditions += [f"[ -b /dev/{dev} ]" for dev in self.topology.block_devices(i)]
        elif i == 0:  # the subsystem's namespaces, whatever the guest names them
            conditions += [f'[ -n "$({ns_device_script(nsid)})" ]'
                           for nsid in self.topology.attached_nsids()]
        try:
            self.guest.run(f"{before} && until {' && '.join(conditions)}; do sleep 0.02; done",
                           timeout=max(1.0, deadline - time.monotonic()), check=True)
        except CommandTimeout:
            raise GuestUnreachable(f"controller nvme{i} did not come up live within the boot "
                                   "timeout", self.console.tail() if self.console else "") \
                from None
        self._phase(f"nvme{i}_live")

    def _check_driver(self) -> None:
        """Prove that the guest runs the driver built from --nvme-src, not the stock one."""
        drv = self.image.driver
        assert drv is not None
        names = list(drv.srcversions)
        out = self.guest.run(" ; ".join(f"cat /sys/module/{n}/srcversion 2>/dev/null || "
                                        "echo not-loaded" for n in names)).stdout.split()
        loaded = dict(zip(names, out, strict=False))
        wrong = [f"{n} {loaded.get(n)} (built: {drv.srcversions[n]})" for n in names
                 if drv.srcversions[n] and loaded.get(n) != drv.srcversions[n]]
        if wrong:
            raise HarnessError(f"the guest is not running the driver built from {drv.source}: "
                               + ", ".join(wrong), self.console.tail() if self.console else "")
        self._phase("driver_checked")

    # --- health ------------------------------------------------------------------------------

    @property
    def oopses(self) -> list[Oops]:
        return self._earlier_oopses + (list(self.console.oopses) if self.console else [])

    def take_oopses(self) -> list[Oops]:
        """Reports not yet taken: a test that provokes an oops on purpose claims it here, so
        the plugin does not fail the test for it (the VM is still retired afterwards)."""
        new = self.oopses[self._oopses_taken:]
        self._oopses_taken += len(new)
        return new

    def untaken_oopses(self, since: int = 0) -> list[Oops]:
        return self.oopses[max(since, self._oopses_taken):]

    def check_alive(self) -> None:
        """Raise if the guest panicked or QEMU is gone (a panic is reported first)."""
        console = self.console
        if console and console.panic:
            if self.proc and self.proc.poll() is None:
                console.wait_for(lambda: False, 0.5)  # let the rest of the report arrive
            raise GuestPanic(f"guest {console.panic.title}", console.tail(40))
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
            if console:
                console.wait_for(lambda: console.eof, 2)
                if console.panic:
                    self.check_alive()
            raise VMDied(f"QEMU exited unexpectedly (status {code}); console tail below",
                         console.tail() if console else "")

    def explain_lost_connection(self, grace: float = 5.0) -> None:
        """After SSH broke: raise the panic or QEMU death behind it, if there is one.

        A dying QEMU closes its sockets before it can be reaped, so give it ``grace`` seconds
        to be seen as dead before concluding that only the connection broke.
        """
        if self.proc is not None and self.console is not None:
            proc = self.proc
            console = self.console
            deadline = time.monotonic() + grace
            console.wait_for(lambda: console.panic is not None or proc.poll() is not None, grace)
            if console.eof and console.panic is None:
                # The console closes as QEMU dies, a moment before QEMU can be reaped (and
                # wait_for returns at the console's end): wait for the process itself.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
        self.check_alive()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def connected(self) -> bool:
        """Running, and logged in over SSH."""
        return self.alive and self._guest is not None and self._guest.connected

    @property
    def guest(self) -> Guest:
        if self._guest is None:
            raise GuestUnreachable("the VM is not running")
        return self._guest

    @property
    def qmp(self) -> Qmp:
        if self._qmp is None:
            raise QemuError("the VM is not running")
        return self._qmp

    def controller_names(self) -> list[str]:
        """The guest's names of the controllers under test, in topology order."""
        return [f"nvme{i}" for i in range(len(self.topology.controllers))]

    def block_devices(self) -> list[str]:
        """The block devices (``/dev/nvme0n1``) of the namespaces attached at start; a
        subsystem's are looked up in the guest (see :func:`harness.guest.nvme.block_device_of`)."""
        topo = self.topology
        if not topo.subsystem:
            return [f"/dev/{dev}" for i in range(len(topo.controllers))
                    for dev in topo.block_devices(i)]
        found = [(nsid, block_device_of(self.guest, nsid)) for nsid in topo.attached_nsids()]
        if missing := [nsid for nsid, dev in found if dev is None]:
            raise HarnessError(f"the guest shows no block device for namespace(s) {missing} "
                               "of the subsystem")
        return [dev for _, dev in found if dev is not None]

    def watched_namespace(self, controller: str) -> str:
        """The namespace whose writes tell that ``controller``'s I/O resumed ("": its first)."""
        return ""

    def check_namespace(self, device: str) -> None:
        """A namespace back after a detach is one of the VM's own: nothing to check."""

    def silence_note(self) -> str:
        """What shows that a guest that stopped answering is the system's hang, not the
        machinery's: said with the failure."""
        return "its QEMU running and no panic on its console"

    def namespace(self, ctrl: int = 0, nsid: int = 1) -> NamespaceNames:
        """QEMU's names for namespace ``nsid`` of controller ``ctrl`` (for QMP faults)."""
        return namespace_names(self.scratch, self.topology, ctrl, nsid)

    def cpu_seconds(self) -> float | None:
        """Host CPU seconds the running QEMU has used (None if none runs)."""
        proc = self.proc
        return process_cpu_seconds(proc.pid) if proc is not None and proc.poll() is None \
            else None

    def kill(self) -> None:
        """SIGKILL QEMU now (a power cut, or a test of the harness's own cleanup)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def power_cycle(self) -> None:
        """Cut the power under whatever runs, then start again on the same NVMe backing files.

        QEMU dies by SIGKILL, so the guest gets no warning and commands in flight die with it;
        the namespaces keep what QEMU had written to them. The new life starts the way the
        first did (from the snapshot, or cold) and appends to the same logs; oopses of the
        earlier life are kept. It answers on the same SSH port where that is still free, as a
        machine keeps its address.
        """
        self._earlier_oopses += self.oopses
        self._end_life()
        self.boot_phases = []
        self._port_again = self.ssh_port
        self.start()

    def _end_life(self) -> None:
        """Kill QEMU and close what talked to it; the scratch dir and the logs stay."""
        self._close_guest()
        self._close_relay()
        self.kill()
        self._reap()
        self._close_qmp()

    def _restartable_crash(self) -> str | None:
        """Why the boot that just crashed may be started again (see bootcrash), or None.
        A restored guest does not boot: its crash is reported as it is."""
        if self.boot_mode == "restore" or self.console is None:
            return None
        return bootcrash.restartable(self.console.oopses, self.accel.name)

    # --- logs --------------------------------------------------------------------------------

    LOGS = ("console.log", "qmp.log", "commands.log")

    def log_marks(self) -> dict[str, int]:
        """Current sizes of the VM's logs: pass to :meth:`export_logs` to get what follows."""
        self._commands_log.flush()
        return {n: (self.artifacts / n).stat().st_size if (self.artifacts / n).exists() else 0
                for n in self.LOGS}

    def export_logs(self, since: dict[str, int], dest: Path) -> None:
        """Copy what each log gained since ``since`` into ``dest`` (one test's share)."""
        self._commands_log.flush()
        dest.mkdir(parents=True, exist_ok=True)
        for name in self.LOGS:
            src = self.artifacts / name
            if src.exists():
                with open(src, "rb") as fh:
                    fh.seek(since.get(name, 0))
                    (dest / name).write_bytes(fh.read())

    # --- stop --------------------------------------------------------------------------------

    def stop(self, graceful_timeout: float = 5.0) -> None:
        """Quit QEMU (hard kill if it does not), close everything, remove the scratch dir."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._close_guest()
        self._close_relay()
        if self.proc and self.proc.poll() is None and self._qmp:
            with contextlib.suppress(Exception):
                self._qmp.timeout = graceful_timeout
                self._qmp.cmd("quit")
        self._reap(graceful_timeout)
        self._close_qmp()
        self._commands_log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _close_qmp(self) -> None:
        qmp, self._qmp = self._qmp, None
        if qmp is not None:
            with contextlib.suppress(Exception):
                qmp.close()

    def _close_relay(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()

    def _close_guest(self, timeout: float = 5.0) -> None:
        """Close the SSH session, but never wait for it longer than ``timeout``.

        A Ctrl-C lands wherever the main thread is, possibly inside paramiko while it holds
        one of its locks; closing the session would then wait forever for that lock. The
        close runs on a daemon thread instead, and is abandoned if it does not finish (QEMU,
        killed next, takes the connection with it).
        """
        guest, self._guest = self._guest, None
        if guest is None:
            return

        def close() -> None:
            with contextlib.suppress(Exception):
                guest.close()

        closer = threading.Thread(target=close, name="ssh-close", daemon=True)
        closer.start()
        closer.join(timeout)

    def _reap(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self.console:
            self.console.close()
        if proc.stdout:
            proc.stdout.close()


class RestoredVM(VM):
    """A VM started from a snapshot instead of booting: the saved guest is loaded, then its
    controllers are hot-added one at a time, each once the previous one is up, so that the
    guest numbers them as a cold boot does (nvme0 on rp0, ...)."""

    boot_mode = "restore"

    def __init__(self, image: GuestImage, topology: Topology, accel: Accel,
                 snapshot: Snapshot, qemu: str = "qemu-system-x86_64",
                 artifacts: Path | None = None, name: str = "vm",
                 boot_timeout: float = 120.0) -> None:
        super().__init__(image, topology, accel, qemu, artifacts, name, boot_timeout)
        self.snapshot = self.saved = snapshot
        # The restored guest keeps the SSH host key it was saved with (it is pinned all the
        # same); its authorized key is replaced by this VM's own right after the restore.
        self.host_key = snapshot.host_key

    def _login_key(self) -> KeyPair:
        return self.saved.client_key

    def _launch_spec(self, port: int) -> LaunchSpec:
        return dataclasses.replace(super()._launch_spec(port), without_controllers=True,
                                   incoming=True)

    def _post_launch(self, deadline: float) -> None:
        self._restore(self.saved, deadline)

    def _bring_up_controller(self, i: int, deadline: float) -> None:
        if i == 0:
            return  # awaited by _restore
        self.qmp.cmd("device_add", **controller_device(self.topology, i))
        self._await_controller(i, deadline)

    def _restore(self, snap: Snapshot, deadline: float) -> None:
        """Load the saved VM, add controller 0, run on, take over the guest."""
        qmp = self.qmp
        qmp.cmd("migrate-incoming", uri=f"exec:cat {shlex.quote(str(snap.state))}")
        status = qmp.wait_migration(deadline, self.check_alive).get("status")
        if status != "completed":
            snapshot_mod.discard(snap)  # the next VM makes a fresh one
            raise QemuError(f"restoring snapshot {snap.path} failed ({status}); it was "
                            "discarded and will be made again")
        self._phase("state_loaded")
        if snap.relay_greeting is not None:
            # Connected after the load, so QEMU sees a guest ready to take input at once, and
            # before the guest runs, so the guest never sees the port closed.
            self._relay = self._open_relay(self._relay_path)
        qmp.cmd("device_add", **controller_device(self.topology, 0))
        qmp.cmd("cont")
        self._phase("resumed")
        try:
            self._connect(snap.client_key, deadline, "restored guest unreachable:",
                          replay=snap.relay_greeting or b"")
        except GuestUnreachable as exc:
            snapshot_mod.discard(snap)  # whatever broke its session, the next VM makes another
            raise GuestUnreachable(f"{exc.args[0]} (snapshot {snap.path} discarded: it will be "
                                   "made again)", exc.detail) from None
        # The guest's wall clock stopped when the snapshot was saved; the snapshot's key is
        # retired in favour of this VM's own. (Controller 0 is awaited in the same command.)
        self._await_controller(0, deadline, f"date -s @{time.time():.3f} >/dev/null && "
                               f"printf %s {shlex.quote(self.client_key.authorized_line())}"
                               f" > {AUTHORIZED_KEYS}")


class BaseVM(VM):
    """The guest a snapshot is made of: booted without NVMe controllers (their root ports
    and backing nodes stay, for a restore to hot-add them), stopped at the guest's ready
    marker and not logged into, its SSH server's greeting read off the relay port (the
    greeting is replayed to each restored VM's client)."""

    def _launch_spec(self, port: int) -> LaunchSpec:
        return dataclasses.replace(super()._launch_spec(port), without_controllers=True)

    def _post_launch(self, deadline: float) -> None:
        self._wait_ready(deadline)
        if self._relay is not None:
            try:
                self.relay_greeting = self._relay.read_greeting(
                    max(1.0, deadline - time.monotonic()))
            except OSError as exc:
                raise GuestUnreachable(f"no SSH greeting on the relay port: {exc}",
                                       self.console.tail() if self.console else "") from None

    def _make_ready(self, deadline: float) -> None:
        pass  # no controllers, no login: a restore does that

    def save(self, state: Path) -> None:
        """Save the whole VM to ``state`` (QMP migrate to a file), then check that the guest
        can be logged into: after the save, so the saved state holds no logged-in session
        (only the relay's, waiting for a client)."""
        qmp = self.qmp
        qmp.cmd("stop")
        qmp.cmd("migrate", uri=f"exec:cat > {shlex.quote(str(state))}")
        status = qmp.wait_migration(time.monotonic() + 300)
        if status.get("status") != "completed":
            raise QemuError(f"saving the snapshot failed: "
                            f"{status.get('error-desc', status.get('status'))}")
        qmp.cmd("cont")
        self._connect(self.client_key, time.monotonic() + self.boot_timeout,
                      "guest printed ready but", replay=self.relay_greeting or b"")
