"""The VM's QMP client: commands and events, all of them logged.

This is the host-side control channel. A physical target has none, so nothing guest-side
depends on it: host-side faults are to be built on this class alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError
from qemu.qmp.legacy import QEMUMonitorProtocol

from harness.errors import QemuError


class QMPError(QemuError):
    """QEMU answered a QMP command with an error."""


class Qmp:
    """A thread-safe wrapper around qemu.qmp's synchronous client."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self._path = socket_path
        self._mon = QEMUMonitorProtocol(str(socket_path))
        self._lock = threading.Lock()
        self._log = open(log_path, "a", buffering=1)
        self.events: list[dict[str, Any]] = []
        self.timeout = 60.0

    def connect(self, timeout: float, alive: Callable[[], bool]) -> None:
        """Connect to QEMU's QMP socket (QEMU waits for us before it starts the guest).

        Retries until ``timeout`` while ``alive()`` says QEMU still runs, so a QEMU that
        exits at start is reported at once instead of after the timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not alive():
                raise QemuError("QEMU exited before its QMP socket accepted a connection")
            if self._path.exists():
                try:
                    self._mon.connect(negotiate=True)
                    break
                except (OSError, ConnectError):
                    self._mon = QEMUMonitorProtocol(str(self._path))
            if time.monotonic() > deadline:
                raise QemuError(f"QEMU's QMP socket did not answer within {timeout:g}s")
            time.sleep(0.02)
        self._mon.settimeout(self.timeout)
        self._write("connected", {})

    def cmd(self, name: str, **args: Any) -> Any:
        """Run ``name``; returns its ``return`` value, raises :class:`QMPError` on error."""
        with self._lock:
            self._write("->", {"execute": name, "arguments": args})
            try:
                reply = self._mon.cmd_raw(name, args or None)
            except TimeoutError:
                raise QemuError(f"QMP {name} got no answer in {self.timeout:.0f}s: QEMU hangs")\
                    from None
            self._write("<-", reply)
            self._collect()
        if "error" in reply:
            err = reply["error"]
            raise QMPError(f"QMP {name} failed: {err.get('desc', err)}")
        return reply.get("return")

    def wait_migration(self, deadline: float,
                       while_waiting: Callable[[], None] | None = None) -> dict[str, Any]:
        """Poll ``query-migrate`` until the migration completes or fails, or ``deadline``
        (time.monotonic) passes; returns the last status. ``while_waiting`` runs between
        polls (e.g. to notice a dead QEMU).

        A completed outgoing migration is reported before QEMU leaves its finish-migrate run
        state, and ``cont`` is refused until it has ("Migration is not finalized yet"): the
        wait lasts until the run state has moved on too."""
        while True:
            status: dict[str, Any] = self.cmd("query-migrate")
            done = status.get("status") in ("completed", "failed")
            if done and self.cmd("query-status").get("status") != "finish-migrate":
                return status
            if time.monotonic() > deadline:
                return status
            if while_waiting is not None:
                while_waiting()
            time.sleep(0.01)

    def hmp(self, command: str) -> str:
        """A human-monitor command (for what QMP lacks, e.g. ``qemu-io``)."""
        out = self.cmd("human-monitor-command", **{"command-line": command})
        return str(out)

    def wait_event(self, name: str, timeout: float) -> dict[str, Any] | None:
        """The first event ``name`` seen since the last call (or arriving within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._collect()
                for i, ev in enumerate(self.events):
                    if ev.get("event") == name and not ev.get("_consumed"):
                        self.events[i]["_consumed"] = True
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    pulled = self._mon.pull_event(wait=min(left, 0.2))
                except TimeoutError:
                    pulled = None
                if pulled:
                    self._record(pulled)

    def _collect(self) -> None:
        for ev in self._mon.get_events(wait=False):
            self._record(ev)

    def _record(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)
        self._write("event", ev)

    def _write(self, kind: str, obj: Any) -> None:
        self._log.write(f"{time.time():.6f} {kind} {json.dumps(obj, default=str)}\n")

    def close(self) -> None:
        try:
            with self._lock:
                self._collect()
        except Exception:  # noqa: BLE001 - QEMU may already be gone
            pass
        try:
            self._mon.close()
        except Exception:  # noqa: BLE001 - an interrupt inside a QMP call breaks its loop
            pass
        finally:
            # qemu.qmp closes once more when collected, and prints that failure at exit
            self._mon.close = lambda: None  # type: ignore[method-assign]
            self._log.close()
