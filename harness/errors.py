"""Exceptions that carry what a user needs to act, and the exit codes they map to.

Every error a user can cause or meet (bad input, missing tools, a guest that never comes up)
is a :class:`HarnessError`: the CLI prints its one-line message, never a traceback.
"""

from __future__ import annotations

# Exit codes shared by every command (README, "Recovery scenarios").
EXIT_OK = 0
EXIT_TIMEOUT = 124  # a guest command ran past its timeout (as timeout(1))
EXIT_HARNESS = 125  # the harness could not test (git bisect run: "skip")
EXIT_GUEST_PANIC = 254  # the guest kernel panicked
EXIT_VM_DIED = 255  # QEMU died or the guest became unreachable mid-command (as ssh(1))


class HarnessError(Exception):
    """A failure the user can act on; ``str()`` is one line naming the culprit."""

    exit_code = EXIT_HARNESS

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail  # extra lines (e.g. a console tail) shown below the message


class EmulatorCrash(HarnessError):
    """QEMU itself crashed the guest (under TCG, a stale translation of kernel code the
    kernel had patched): the iteration tested nothing, and may be run again."""


class BadInput(HarnessError):
    """A path, option or topology given by the user is wrong."""


class HostNotReady(HarnessError):
    """A tool the harness needs is missing on the host; the message says how to fix it."""


class ImageBuildError(HarnessError):
    """Building a guest kernel, root filesystem or initramfs failed."""


class QemuError(HarnessError):
    """QEMU refused to start or exited unexpectedly."""


class VMDied(HarnessError):
    """QEMU exited (or was killed) while the harness still needed the VM."""

    exit_code = EXIT_VM_DIED


class GuestPanic(HarnessError):
    """The guest kernel panicked; ``detail`` holds the report."""

    exit_code = EXIT_GUEST_PANIC


class GuestUnreachable(HarnessError):
    """The guest never answered on SSH; ``detail`` holds the console tail."""


class CommandTimeout(HarnessError):
    """A guest command did not finish within its timeout."""

    exit_code = EXIT_TIMEOUT


class GuestHang(HarnessError):
    """The guest kernel reported a task hung (hung-task detector) while a command ran;
    ``detail`` holds the report with its stack trace."""

    exit_code = EXIT_TIMEOUT  # the command would never have finished: the kernel is bad
