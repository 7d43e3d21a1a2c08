"""Where a real machine is and which disk on it the harness may use, as the user wrote them.

Parsed strictly and never completed by guesses (no default user, no path, no password): a
target is a machine whose data is at stake, so a typo must stop the run, not aim it elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from harness.errors import BadInput

_SCHEME = "ssh://"
_FORM = "expected ssh://USER@HOST[:PORT]"
# Neither may start with '-': ssh(1) would take it for an option.
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_DEVICE = re.compile(r"/dev/nvme[0-9]+n[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Address:
    """A machine reached over SSH; ``host`` holds an IPv6 address without its brackets."""

    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == 22 else f":{self.port}"
        return f"{_SCHEME}{self.user}@{host}{port}"


def parse(text: str) -> Address:
    """``ssh://USER@HOST[:PORT]``, HOST a DNS name, an IPv4 address or ``[IPv6]``."""

    def bad(why: str) -> BadInput:
        return BadInput(f"bad --target {text!r}: {_FORM} ({why})")

    if not text.startswith(_SCHEME):
        raise bad("not an ssh:// address")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise bad("spaces or control characters")
    rest = text.removeprefix(_SCHEME)
    if "@" not in rest:
        raise bad("no user given")
    user, _, hostport = rest.rpartition("@")
    if ":" in user:
        raise bad("a password is not accepted: use a key")
    if not user:
        raise bad("no user given")
    if not _USER.fullmatch(user):
        raise bad(f"bad user {user!r}")
    if any(c in hostport for c in "/?#"):
        raise bad("a path, query or fragment is not accepted")
    if hostport.startswith("["):
        inner, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise bad("unclosed '['")
        try:
            host = str(ipaddress.IPv6Address(inner))
        except ValueError:
            raise bad(f"bad IPv6 address {inner!r}") from None
        port_text = after
    else:
        host, colon, port = hostport.partition(":")
        port_text = colon + port
        if not host:
            raise bad("empty host")
        if "[" in host or "]" in host or not all(_LABEL.fullmatch(x) for x in host.split(".")):
            raise bad(f"bad host {host!r}")
        if all(x.isdigit() for x in host.split(".")):  # all-digit: must be an IPv4 address
            try:
                host = str(ipaddress.IPv4Address(host))
            except ValueError:
                raise bad(f"bad IPv4 address {host!r}") from None
    if not port_text:
        return Address(user, host)
    port = port_text.removeprefix(":")
    if not port_text.startswith(":") or not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise bad(f"bad port {port_text!r}, not 1..65535")
    return Address(user, host, int(port))


def parse_device(text: str) -> str:
    """A whole NVMe namespace, ``/dev/nvmeXnY``: never a partition or a multipath path node."""
    if not _DEVICE.fullmatch(text):
        raise BadInput(f"bad --device {text!r}: expected a whole NVMe namespace, /dev/nvmeXnY")
    return text
