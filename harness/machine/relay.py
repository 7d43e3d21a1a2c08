"""The host end of the SSH session's virtio-serial port, and a free TCP port for the other way
in. The guest's SSH server talks through a Unix socket QEMU exposes (see ``SSH_RELAY_PORT``
in :mod:`harness.machine.qemu`), so no TCP port is listened on for it."""

from __future__ import annotations

import socket


class RelaySocket(socket.socket):
    """The host end of the guest's SSH relay port (see ``SSH_RELAY_PORT``).

    ``replay``: bytes the guest sent before a snapshot was saved, which the harness read then
    (the server's greeting); a restored VM's SSH client reads them first, as if sent now.
    """

    def __init__(self) -> None:
        super().__init__(socket.AF_UNIX, socket.SOCK_STREAM)
        self.replay = b""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.replay:
            data, self.replay = self.replay[:bufsize], self.replay[bufsize:]
            return data
        return super().recv(bufsize, flags)

    def read_greeting(self, timeout: float) -> bytes:
        """What an SSH server sends unasked, consumed: its banner line and its first packet
        (KEXINIT; dropbear sends it without waiting for the client's)."""
        self.settimeout(timeout)
        greeting = b""
        while not greeting.endswith(b"\n"):
            greeting += self._read(1)
        header = self._read(4)
        size = int.from_bytes(header, "big")
        if size > 35000:  # RFC 4253's largest packet: this is not an SSH server talking
            raise OSError(f"not an SSH packet after the banner {greeting!r} (length {size})")
        greeting += header + self._read(size)
        self.settimeout(None)
        return greeting

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = super().recv(n - len(data))
            if not chunk:
                raise OSError("the relay port closed")
            data += chunk
        return data


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
