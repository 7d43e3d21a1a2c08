"""The system under test as a scenario sees it: a QEMU VM (:class:`harness.machine.vm.VM`) or
a real machine reached over SSH (:class:`harness.target.machine.Target`). A scenario that
asks for what only a VM has (QMP, the namespace's backing file, a power cut) is refused on a
machine that lacks it, with the reason."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from harness.guest.ssh import Guest
from harness.machine.console import Console
from harness.machine.qemu import NamespaceNames
from harness.machine.qmp import Qmp
from harness.machine.topology import Topology
from harness.reading.kmsg import Oops


class System(Protocol):
    topology: Topology
    console: Console | None  # the kernel log as it comes: a VM's serial console
    console_name: str  # what the console is called in evidence
    tainted: bool  # left in a state not worth reusing
    artifacts: Path
    boot_notes: list[str]  # how its start went, where it is worth saying
    has_host_side: bool  # QMP and the backing files: a scenario may use them where there

    @property
    def guest(self) -> Guest: ...
    @property
    def connected(self) -> bool: ...
    @property
    def alive(self) -> bool: ...
    @property
    def qmp(self) -> Qmp: ...

    def controller_names(self) -> list[str]: ...
    def block_devices(self) -> list[str]: ...
    def watched_namespace(self, controller: str) -> str: ...
    def silence_note(self) -> str: ...
    def check_alive(self) -> None: ...
    def explain_lost_connection(self, grace: float = 5.0) -> None: ...
    def hang_pending(self) -> bool: ...
    def hang_report(self) -> tuple[str, str] | None: ...
    def take_oopses(self) -> list[Oops]: ...
    def cpu_seconds(self) -> float | None: ...
    def namespace(self, ctrl: int = 0, nsid: int = 1) -> NamespaceNames: ...
    def check_namespace(self, device: str) -> None: ...
    def power_cycle(self) -> None: ...


class Lifecycle:
    """A machine as a context manager: started on entering (and stopped if that fails
    half-way), stopped on leaving, whatever happened."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class HungTasks:
    """The hung-task reports a machine's console shows, each handed out once, whole (as
    ``Guest.interrupt``): each report interrupts one wait, and the commands after it run."""

    console: Console | None
    _hangs_reported: int
    kernel_said = "the guest kernel"  # who reported it, as the failure says

    def hang_pending(self) -> bool:
        """Is there a report :meth:`hang_report` did not return yet?"""
        console = self.console
        return console is not None and len(console.hung_tasks()) > self._hangs_reported

    def hang_report(self) -> tuple[str, str] | None:
        """The next report not returned before, as (message, report)."""
        if not self.hang_pending():
            return None
        assert self.console is not None
        oops = self.console.hung_tasks()[self._hangs_reported]
        self._hangs_reported += 1
        return f"{self.kernel_said} reported a hung task: {oops.title}", "\n".join(oops.lines)
