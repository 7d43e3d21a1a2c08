"""The host end of the SSH relay port: what a snapshot keeps of the server's greeting, and
how a restored VM's client gets it back."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from harness.machine.relay import RelaySocket

GREETING = b"SSH-2.0-dropbear_2022.83\r\n" + (12).to_bytes(4, "big") + b"K" * 12


def _serve(path: Path, payload: bytes) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        conn.sendall(payload)
        conn.close()
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _relay(path: Path) -> RelaySocket:
    relay = RelaySocket()
    relay.connect(str(path))
    return relay


def test_greeting_is_the_banner_and_the_first_packet_only(tmp_path: Path) -> None:
    path = tmp_path / "relay.sock"
    _serve(path, GREETING + b"next")
    relay = _relay(path)
    assert relay.read_greeting(5) == GREETING
    assert relay.recv(100) == b"next", "read past the server's first packet"
    relay.close()


def test_a_closed_port_before_the_greeting_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "relay.sock"
    _serve(path, b"SSH-2.0-dropbear\r\n\x00\x00")
    relay = _relay(path)
    with pytest.raises(OSError, match="closed"):
        relay.read_greeting(5)
    relay.close()


def test_the_replayed_greeting_comes_first_then_the_live_stream(tmp_path: Path) -> None:
    path = tmp_path / "relay.sock"
    _serve(path, b"live")
    relay = _relay(path)
    relay.replay = GREETING
    got = b""
    while len(got) < len(GREETING):
        got += relay.recv(7)  # paramiko reads in pieces: the replay is cut to fit
    assert got == GREETING
    assert relay.recv(100) == b"live"
    relay.close()


def test_something_else_than_an_ssh_server_is_named(tmp_path: Path) -> None:
    path = tmp_path / "relay.sock"
    _serve(path, b"hello\n" + b"\xff\xff\xff\xff" + b"x" * 16)
    relay = _relay(path)
    with pytest.raises(OSError, match="not an SSH packet after the banner b'hello\\\\n'"):
        relay.read_greeting(5)
    relay.close()
