"""A target's address and device are taken exactly as written, or refused in one line."""

from __future__ import annotations

import pytest

from harness.errors import BadInput
from harness.target.address import Address, parse, parse_device


@pytest.mark.parametrize(("text", "address", "again"), [
    ("ssh://root@lab1", Address("root", "lab1"), "ssh://root@lab1"),
    ("ssh://root@lab1:22", Address("root", "lab1"), "ssh://root@lab1"),
    ("ssh://ci.bot@lab-7.example.org:2222", Address("ci.bot", "lab-7.example.org", 2222),
     "ssh://ci.bot@lab-7.example.org:2222"),
    ("ssh://u@192.168.1.20:65535", Address("u", "192.168.1.20", 65535),
     "ssh://u@192.168.1.20:65535"),
    ("ssh://u@[fe80::1]", Address("u", "fe80::1"), "ssh://u@[fe80::1]"),
    ("ssh://u@[2001:DB8::7]:1", Address("u", "2001:db8::7", 1), "ssh://u@[2001:db8::7]:1"),
])
def test_an_address_parses_and_prints_back(text: str, address: Address, again: str) -> None:
    assert parse(text) == address
    assert str(parse(text)) == again
    assert parse(again) == address


@pytest.mark.parametrize(("text", "why"), [
    ("ssh://host", "no user given"),
    ("ssh://@host", "no user given"),
    ("root@host", "not an ssh:// address"),
    ("SSH://root@host", "not an ssh:// address"),
    ("sftp://root@host", "not an ssh:// address"),
    ("ssh://root:pw@host", "a password is not accepted"),
    ("ssh://root@host/dev/nvme0n1", "a path, query or fragment"),
    ("ssh://root@host?x=1", "a path, query or fragment"),
    ("ssh://root@host:22/", "a path, query or fragment"),
    ("ssh://root@", "empty host"),
    ("ssh://root@:22", "empty host"),
    ("ssh://root@ host", "spaces"),
    ("ssh://root@host\n", "spaces"),
    ("ssh://-oProxyCommand=x@host", "bad user"),
    ("ssh://root@-host", "bad host"),
    ("ssh://root@ho_st", "bad host"),
    ("ssh://root@host.", "bad host"),
    ("ssh://a@b@host", "bad user"),
    ("ssh://root@999.1.1.1", "bad IPv4 address"),
    ("ssh://root@fe80::1", "bad port"),
    ("ssh://root@[fe80::1", "unclosed"),
    ("ssh://root@[lab1]", "bad IPv6 address"),
    ("ssh://root@[::1]22", "bad port"),
    ("ssh://root@host:", "bad port"),
    ("ssh://root@host:0", "bad port"),
    ("ssh://root@host:65536", "bad port"),
    ("ssh://root@host:-1", "bad port"),
    ("ssh://root@host:٢٢", "bad port"),  # Arabic-Indic digits: str.isdigit() says yes
])
def test_anything_else_is_refused_naming_it(text: str, why: str) -> None:
    with pytest.raises(BadInput) as e:
        parse(text)
    message = str(e.value)
    assert message.startswith(f"bad --target {text!r}: expected ssh://USER@HOST[:PORT] (")
    assert why in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["/dev/nvme0n1", "/dev/nvme12n3"])
def test_a_whole_namespace_is_a_device(text: str) -> None:
    assert parse_device(text) == text


@pytest.mark.parametrize("text", [
    "/dev/nvme0n1p1", "/dev/nvme0c1n1", "/dev/nvme0", "nvme0n1", "/dev/sda", "/dev/nvme0n1 ",
    "/dev/nvme0n1\n", "/dev/nvme٠n1", "/dev/../dev/nvme0n1", "",
])
def test_anything_else_is_not_a_device(text: str) -> None:
    with pytest.raises(BadInput, match=r"^bad --device .*: expected a whole NVMe namespace, "
                                       r"/dev/nvmeXnY$") as e:
        parse_device(text)
    assert str(e.value) == (f"bad --device {text!r}: expected a whole NVMe namespace, "
                            "/dev/nvmeXnY")
