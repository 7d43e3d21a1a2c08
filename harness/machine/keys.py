"""SSH keys made per VM: the client's login key and the guest server's host key.

Ed25519 both: the guest's SSH server (dropbear) signs and verifies with it in a fraction of
what ECDSA costs it, which counts under TCG, where every login after a snapshot restore runs
cold code. Kept as OpenSSH private key files (what paramiko loads, what a snapshot stores);
the host key also goes to the guest in dropbear's own format.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_TYPE = "ssh-ed25519"


@dataclass(frozen=True)
class KeyPair:
    openssh: bytes  # the private key as an OpenSSH key file

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()))

    @classmethod
    def load(cls, path: Path) -> KeyPair:
        return cls(path.read_bytes())

    def save(self, path: Path) -> None:
        _write_private(path, self.openssh)

    def save_dropbear(self, path: Path) -> None:
        _write_private(path, self.dropbear())

    @property
    def pkey(self) -> paramiko.PKey:
        """For logging in with, or pinning as the server's key."""
        return paramiko.Ed25519Key(file_obj=io.StringIO(self.openssh.decode()))

    def authorized_line(self) -> str:
        key = self.pkey
        return f"{key.get_name()} {key.get_base64()} nvmeh\n"

    def dropbear(self) -> bytes:
        """dropbear's key file: the key type, then the 32-byte private and public keys, as
        SSH strings."""
        private = serialization.load_ssh_private_key(self.openssh, None)
        assert isinstance(private, Ed25519PrivateKey)
        raw = private.private_bytes_raw() + private.public_key().public_bytes_raw()
        msg = paramiko.Message()
        msg.add_string(KEY_TYPE)
        msg.add_string(raw)
        return msg.asbytes()


def _write_private(path: Path, data: bytes) -> None:
    """A key file only its owner can read, from its first byte on."""
    path.touch(mode=0o600)
    path.write_bytes(data)
