"""The guest's serial console, drained from QEMU's first byte into a log and scanned live.

Draining continuously matters twice: a full pipe would stall the guest's printk, and a panic
must be noticed within seconds, not when some timeout expires.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path

from harness.reading.kmsg import Oops, OopsDetector

READY_MARKER = "nvmeh-init: ready"
FATAL_MARKER = "nvmeh-init: FATAL"


class Console:
    """Reads QEMU's stdout (the serial console) on a thread until EOF; without ``fd``, is
    fed what another reader got (:meth:`feed`, then :meth:`end`): a real machine's kernel
    log, followed over SSH."""

    def __init__(self, fd: int | None, log_path: Path) -> None:
        self._fd = fd
        self.log_path = log_path
        self._log = open(log_path, "ab", buffering=0)  # a power-cycled VM appends
        self._tail: collections.deque[str] = collections.deque(maxlen=60)
        self._partial = ""
        self._detector = OopsDetector()
        self._cond = threading.Condition()
        self.oopses: list[Oops] = []
        self.ready_count = 0  # how many times the ready marker was printed (one per boot)
        self.ready_line = ""  # the last one, with what the guest reports after the marker
        self.fatal_line: str | None = None
        self.eof = False
        self._thread: threading.Thread | None = None
        if fd is not None:
            self._thread = threading.Thread(target=self._drain, args=(fd,), name="console",
                                            daemon=True)
            self._thread.start()

    def _drain(self, fd: int) -> None:
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.feed(chunk)
        except OSError:
            pass
        finally:
            self.end()

    def feed(self, chunk: bytes) -> None:
        """What the console printed next."""
        self._log.write(chunk)
        self._consume(chunk.decode("utf-8", "replace"))

    def end(self) -> None:
        """The console is closed: nothing more will come."""
        with self._cond:
            if self.eof:
                return
            self.oopses.extend(self._detector.flush())
            self.eof = True
            self._cond.notify_all()
        self._log.close()

    def _consume(self, text: str) -> None:
        lines = (self._partial + text).replace("\r", "").split("\n")
        self._partial = lines.pop()
        found = self._detector.feed(text)
        with self._cond:
            for line in lines:
                self._tail.append(line)
                if READY_MARKER in line:
                    self.ready_count += 1
                    self.ready_line = line.strip()
                elif FATAL_MARKER in line:
                    self.fatal_line = line.strip()
            self.oopses.extend(found)
            self._cond.notify_all()

    def wait_for(self, predicate: object, timeout: float) -> bool:
        """Wait until ``predicate()`` is true, the console closes, or ``timeout`` passes."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate() and not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return bool(predicate())

    @property
    def panic(self) -> Oops | None:
        return next((o for o in self.oopses if o.fatal), None)

    def hung_tasks(self) -> list[Oops]:
        """The hung-task reports so far (the kernel's hung-task detector), oldest first."""
        with self._cond:
            return [o for o in self.oopses if o.kind == "hung_task"]

    def tail(self, lines: int = 25) -> str:
        with self._cond:
            return "\n".join(list(self._tail)[-lines:] + ([self._partial] if self._partial else []))

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self.end()
