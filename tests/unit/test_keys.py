"""Per-VM SSH keys: the OpenSSH file paramiko loads, and dropbear's format for the guest."""

from __future__ import annotations

import stat
from pathlib import Path

import paramiko

from harness.machine.keys import KeyPair


def test_a_key_logs_in_as_the_key_it_says_it_is(tmp_path: Path) -> None:
    key = KeyPair.generate()
    assert key.openssh.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    line = key.authorized_line()
    kind, blob, comment = line.split()
    assert (kind, comment) == ("ssh-ed25519", "nvmeh") and line.endswith("\n")
    assert blob == key.pkey.get_base64()
    signature = paramiko.Message(key.pkey.sign_ssh_data(b"challenge").asbytes())
    public = paramiko.Ed25519Key(data=key.pkey.asbytes())  # what the server knows of it
    assert public.verify_ssh_sig(b"challenge", signature)
    path = tmp_path / "client_key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyPair.load(path) == key


def test_dropbear_gets_the_key_type_then_private_and_public_halves() -> None:
    key = KeyPair.generate()
    msg = paramiko.Message(key.dropbear())
    assert msg.get_text() == "ssh-ed25519"
    raw = msg.get_binary()
    assert len(raw) == 64 and msg.get_remainder() == b""
    public = paramiko.Message(key.pkey.asbytes())
    assert public.get_text() == "ssh-ed25519" and public.get_binary() == raw[32:]
    assert KeyPair.generate().dropbear() != key.dropbear()


def test_the_dropbear_file_is_private_too(tmp_path: Path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "ssh_host_key"
    key.save_dropbear(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key.dropbear()
