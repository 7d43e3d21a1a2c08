"""Host-side faults injected through QMP: the device under test misbehaves, not the guest.

A physical target has no QMP; scenarios that need these faults take them from here and do
not run elsewhere. Every fault is a context manager that undoes itself, even on failure.
"""

from __future__ import annotations

from types import TracebackType

from harness.qemu import NamespaceNames
from harness.qmp import Qmp

_THROTTLE_FIELDS = ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")


class Throttle:
    """Limit a namespace's backend (``block_set_io_throttle``): a slow or stalled device.

    Safe where a blkdebug breakpoint is not: QEMU drains throttled requests when the guest
    resets the controller, instead of deadlocking.
    """

    def __init__(self, qmp: Qmp, ns: NamespaceNames, **limits: int) -> None:
        unknown = set(limits) - set(_THROTTLE_FIELDS)
        if unknown:
            raise ValueError(f"unknown throttle fields {sorted(unknown)}")
        self.qmp, self.ns, self.limits = qmp, ns, limits

    def _set(self, **limits: int) -> None:
        values = dict.fromkeys(_THROTTLE_FIELDS, 0) | limits
        self.qmp.cmd("block_set_io_throttle", id=self.ns.qdev, **values)

    def __enter__(self) -> Throttle:
        self._set(**self.limits)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._set()


class InjectErrors:
    """Make the backend fail I/O (blkdebug ``inject-error``): media errors.

    blkdebug sees events only as the file child of the format node, and its rules cannot be
    changed in place in QEMU 7.2; so a blkdebug node is added over the namespace's file node
    and the raw node is reopened onto it, and reopened back onto the file node on exit.
    ``iotype`` (``read`` or ``write``) is the I/O that fails, from the first blkdebug event of
    that kind on (flushes keep working, or the switch back could not flush); ``sector``
    limits the errors to I/O touching that 512-byte sector; ``once`` fails only the first.
    """

    def __init__(self, qmp: Qmp, ns: NamespaceNames, iotype: str, errno: int = 5,
                 sector: int | None = None, once: bool = False) -> None:
        if iotype not in ("read", "write"):
            raise ValueError(f"iotype must be read or write, not {iotype!r}")
        self.qmp, self.ns = qmp, ns
        rule: dict[str, object] = {"event": f"{iotype}_aio", "iotype": iotype, "errno": errno,
                                   "once": once}
        if sector is not None:
            rule["sector"] = sector
        self.rule = rule
        self.node = f"{ns.file_node}-blkdebug"

    def _reopen(self, file_node: str) -> None:
        self.qmp.cmd("blockdev-reopen", options=[
            {"driver": "raw", "node-name": self.ns.disk_node, "file": file_node}])

    def __enter__(self) -> InjectErrors:
        self.qmp.cmd("blockdev-add", driver="blkdebug", **{"node-name": self.node},
                     image=self.ns.file_node, **{"inject-error": [self.rule]})
        try:
            self._reopen(self.node)
        except BaseException:
            self.qmp.cmd("blockdev-del", **{"node-name": self.node})
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._reopen(self.ns.file_node)
        self.qmp.cmd("blockdev-del", **{"node-name": self.node})
