"""Guest access over SSH: commands with timeouts, background commands, file transfer.

Nothing here knows about QEMU: the same :class:`Guest` drives a physical test machine,
through any SSH server (commands are shell source, files go by SFTP; no environment
requests, which dropbear ignores). Each command runs with a unique ``NVMEH_TAG`` in its
environment, so a command that overruns its timeout is killed with everything it started
(even daemonised children). The guest's shell is bash (root's login shell on Debian).

Guest-side steps longer than a line are shell functions in ``guests/lib/*.sh``
(:class:`GuestLibrary`), called by name (:meth:`Guest.call`) and sent with each call.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import paramiko

from harness import paths
from harness.errors import CommandTimeout, GuestHang, GuestUnreachable, HarnessError

KILL_WAIT_S = 10.0  # how long the killer of a timed-out command may take
STOP_AFTER_S = 1.0  # a running command is interrupted (Guest.interrupt) only after this long
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"

_tags = itertools.count(1)


def brief(command: str, limit: int = 160) -> str:
    """A command as a failure message quotes it: its start (the whole is in the commands log)."""
    flat = " ".join(command.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + " ...")


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> CommandResult:
        if self.exit_code != 0:
            raise CommandFailed(self)
        return self


class CommandFailed(HarnessError):
    """A guest command that had to succeed exited non-zero."""

    def __init__(self, result: CommandResult) -> None:
        err = result.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        super().__init__(f"guest command {result.command!r} exited {result.exit_code}: {err[0]}",
                         result.stderr)
        self.result = result


@dataclass(frozen=True)
class SSHTarget:
    """Where and how to log in, never trusting a server on first use: ``host_key`` pins the
    server's key and ``key`` is the login key (a VM's, made for it); without them (a real
    machine) the user's own keys and agent log in, and the server's key must be in the user's
    known_hosts.

    ``sock``: a stream already connected to the SSH server (a VM's relay port); ``host`` and
    ``port`` then only name the server in messages and in the host key check.
    """

    host: str
    port: int
    user: str
    key: paramiko.PKey | None = None
    host_key: paramiko.PKey | None = None
    sock: socket.socket | None = None

    @property
    def known_as(self) -> str:
        """The server's name in a known_hosts file."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _kill_script(tag: str, parent: int | None = None) -> str:
    """Kill every process of the command tagged ``tag``: bash builtins only, because a process
    start per /proc entry costs seconds under TCG when the guest is busy. The processes it
    started carry the tag in their environment; its own shell, which exported the tag only
    after it started, carries it in its command line (``export NVMEH_TAG=TAG; ...``), and so
    do its subshells: a loop of builtins starts no process, and is found there. A command of
    the long-lived shell is its subshell: the child of ``parent``."""
    child = ("" if parent is None else
             f'read -r _ _ _ pp _ 2>/dev/null < $p/stat; [ "$pp" = {parent} ] && h=1; ')
    return ("for p in /proc/[0-9]*; do h=; " + child + "while IFS= read -r -d '' v; do "
            f'if [ "$v" = NVMEH_TAG={tag} ]; then h=1; break; fi; done 2>/dev/null < $p/environ; '
            "[ -z \"$h\" ] && while IFS= read -r -d '' v; do "
            f'case $v in "export NVMEH_TAG={tag};"*) h=1; break;; esac; '
            "done 2>/dev/null < $p/cmdline; "
            "[ -n \"$h\" ] && kill -KILL ${p#/proc/} 2>/dev/null; done; true")


# A function definition in guests/lib: its name and "() {" alone on a line, at its start; the
# body ends at a "}" alone at the start of a line.
_DEFINITION = re.compile(r"(_[a-z][a-z0-9_]*)\(\) \{")
_NAME = re.compile(r"(?<![\w$])_[a-z][a-z0-9_]*")  # a word that may name a function


def parse_library(text: str, source: str) -> dict[str, str]:
    """The functions of one library file, each as sent: without comments, blank lines or
    indentation (dropbear takes a command of at most 9000 bytes). Outside the functions, a
    file holds comments only: sending a function must be all it takes to run it."""
    found: dict[str, str] = {}
    name = ""  # of the function being read
    body: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not name:
            if line and not line.startswith("#"):
                if (m := _DEFINITION.fullmatch(raw)) is None:
                    raise HarnessError(f"{source}:{number}: outside a function definition "
                                       f"(NAME() {{ ... }}): {line}")
                name, body = m.group(1), [raw]
        elif raw == "}":
            found[name] = "\n".join([*body, "}"])
            name = ""
        elif line and not line.startswith("#"):
            body.append(line)
    if name:
        raise HarnessError(f"{source}: {name} has no closing '}}' at the start of a line")
    return found


class GuestLibrary:
    """The shell functions of a directory of ``*.sh`` topic files (``guests/lib``).

    Nothing is installed in the guest: a command calling a function carries the definitions
    it needs (the function's, and those of the functions it calls), so the root image stays
    as built, and a guest restored from a snapshot or powered up again runs the current text.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._functions: dict[str, str] | None = None

    @property
    def functions(self) -> dict[str, str]:
        """Each function's definition as sent, in library order (by file, then line)."""
        if self._functions is None:
            functions: dict[str, str] = {}
            for path in sorted(self.directory.glob("*.sh")):
                for name, text in parse_library(path.read_text(), path.name).items():
                    if name in functions:
                        raise HarnessError(f"{name} is defined twice in {self.directory}")
                    functions[name] = text
            self._functions = functions
        return self._functions

    def needed(self, text: str) -> list[str]:
        """The functions ``text`` names, and those they call, in library order."""
        wanted: set[str] = set()
        todo = [text]
        while todo:
            for name in _NAME.findall(todo.pop()):
                if name in self.functions and name not in wanted:
                    wanted.add(name)
                    todo.append(self.functions[name])
        return [name for name in self.functions if name in wanted]

    def definitions(self, names: list[str]) -> str:
        """The definitions of the functions ``names``, as shell text."""
        return "".join(self.functions[name] + "\n" for name in names)

    def script(self, text: str) -> str:
        """``text`` preceded by the definitions it needs: what the guest's shell runs."""
        return self.definitions(self.needed(text)) + text

    def call_line(self, function: str, *args: object) -> str:
        """The shell line calling ``function`` with ``args``, each one word."""
        if function not in self.functions:
            raise HarnessError(f"no function {function} in {self.directory}")
        return shell_quote([function, *(str(a) for a in args)])


LIBRARY = GuestLibrary(paths.GUESTS_LIB)


def call_line(function: str, *args: object) -> str:
    """A call of a guest library function, as shell text (for a command that runs it among
    others, e.g. a stamped fault command: :meth:`Guest.call` sends what it names)."""
    return LIBRARY.call_line(function, *args)


class Guest:
    """An SSH session to the system under test."""

    def __init__(self, target: SSHTarget, log: TextIO | None = None) -> None:
        self.target = target
        self._log = log
        self._log_lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._agent: _Agent | None = None
        self._agent_lock = threading.Lock()
        # Asked about once a second while a command runs: a (message, detail) pair ends the
        # command at once with GuestHang (the VM sets it to "the kernel reported a hung task",
        # each report once).
        self.interrupt: Callable[[], tuple[str, str] | None] | None = None
        self._interrupted: tuple[str, str] | None = None

    def _should_stop(self) -> bool:
        if self.interrupt is not None and self._interrupted is None:
            self._interrupted = self.interrupt()
        return self._interrupted is not None

    @contextlib.contextmanager
    def uninterrupted(self) -> Iterator[None]:
        """Commands that run to their end whatever hung task the guest reports meanwhile:
        what a caller runs once it reports one, to gather its evidence."""
        saved, self.interrupt = self.interrupt, None
        try:
            yield
        finally:
            self.interrupt = saved

    def take_interrupt(self) -> tuple[str, str] | None:
        """The pending interruption (see ``interrupt``), which the caller now reports."""
        self._should_stop()
        got, self._interrupted = self._interrupted, None
        return got

    # --- connection --------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        client = paramiko.SSHClient()
        target = self.target
        own_keys = target.key is None  # a real machine: the user's keys, agent, known_hosts
        if target.host_key is not None:
            client.get_host_keys().add(target.known_as, target.host_key.get_name(),
                                       target.host_key)
        if own_keys:
            try:
                client.load_system_host_keys()  # ~/.ssh/known_hosts
                if Path(SYSTEM_KNOWN_HOSTS).exists():
                    client.load_system_host_keys(SYSTEM_KNOWN_HOSTS)
            except (OSError, paramiko.SSHException) as exc:
                raise GuestUnreachable(f"reading known_hosts for {target.known_as} failed: "
                                       f"{exc}") from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(target.host, target.port, username=target.user,
                           pkey=target.key, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout, look_for_keys=own_keys, allow_agent=own_keys,
                           sock=target.sock)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise GuestUnreachable(f"SSH to {target.known_as}: its host key is not the one "
                                   f"known_hosts holds ({exc.key.get_name()}): refusing to "
                                   "log in") from None
        except paramiko.SSHException as exc:
            client.close()
            if own_keys and "not found in known_hosts" in str(exc):
                raise GuestUnreachable(
                    f"SSH to {target.known_as}: its host key is not in known_hosts (log in "
                    "once with ssh(1) and check the key it shows, or add it with "
                    "ssh-keyscan)") from None
            raise GuestUnreachable(f"SSH to {target.host}:{target.port} failed: "
                                   f"{exc or 'the server closed the connection'}") from None
        except (OSError, EOFError) as exc:
            client.close()
            raise GuestUnreachable(f"SSH to {self.target.host}:{self.target.port} failed: "
                                   f"{exc or 'the server closed the connection'}") from None
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(5)
        self._client = client

    @property
    def connected(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return bool(t and t.is_active())

    def close(self) -> None:
        with self._agent_lock:
            if self._agent is not None:
                self._agent.close()
                self._agent = None
        if self._sftp:
            self._sftp.close()
            self._sftp = None
        if self._client:
            self._client.close()
            self._client = None

    def _channel(self, command: str, tag: str) -> paramiko.Channel:
        if self._client is None:
            raise GuestUnreachable("not connected to the guest")
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise GuestUnreachable(f"SSH connection to {self.target.host}:{self.target.port} "
                                   "is closed")
        try:
            chan = transport.open_session(timeout=10)
            chan.exec_command(f"export NVMEH_TAG={tag}; {command}")
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise GuestUnreachable(f"SSH session to the guest failed: {exc}") from None
        return chan

    # --- commands ----------------------------------------------------------------------------

    def run(self, command: str, timeout: float = 60.0, check: bool = False,
            stdin: str | None = None) -> CommandResult:
        """Run ``command`` in the guest's shell; raises :class:`CommandTimeout` past ``timeout``.

        On timeout the command and everything it started is killed, and the exception carries
        the output so far. Commands run in a fresh subshell of a long-lived guest shell when
        that shell is free (no process start on the guest's side, which costs tens of
        milliseconds under TCG), else on a channel of their own; either way nothing a command
        does to its shell (cd, exit, set) outlives it. A command that leaves a process running
        must use :meth:`background`.
        """
        return self._run(command, command, timeout, check, stdin)

    def call(self, function: str, *args: object, timeout: float = 60.0,
             check: bool = False) -> CommandResult:
        """Run ``function`` of the guest library (``guests/lib``) with ``args`` (each one
        word), as :meth:`run` runs a command; the commands log shows the call, not the
        definitions sent with it."""
        line = call_line(function, *args)
        return self._run(line, line, timeout, check, None, LIBRARY.needed(line))

    def _run(self, command: str, shown: str, timeout: float, check: bool,
             stdin: str | None, needs: list[str] | None = None) -> CommandResult:
        """Run ``command`` after defining the library functions it ``needs``; results,
        messages and the log name it ``shown``."""
        tag = f"{next(_tags)}-{time.monotonic_ns()}"
        t0 = time.monotonic()
        deadline = t0 + timeout
        needs = needs or []
        agent = self._free_agent() if stdin is None else None
        try:
            if agent is not None:
                code, out, err = agent.run(command, tag, deadline,
                                           lambda: self._kill(tag, agent.pid),
                                           self._should_stop, shown, needs)
            else:
                code, out, err = self._run_channel(LIBRARY.definitions(needs) + command, tag,
                                                   stdin, deadline, shown)
        except _TimedOut as exc:
            res = CommandResult(shown, -1, exc.out, exc.err, time.monotonic() - t0)
            if self._interrupted is not None:
                self._record(res, "INTERRUPTED")
                message, detail = self._interrupted
                self._interrupted = None
                raise GuestHang(f"{message} (while running {brief(shown)})", detail) from None
            self._record(res, "TIMEOUT")
            raise CommandTimeout(f"guest command {shown!r} timed out after {timeout:g}s",
                                 res.stdout[-2000:] + res.stderr[-2000:]) from None
        finally:
            if agent is not None:
                self._agent_lock.release()
        result = CommandResult(shown, code, out, err, time.monotonic() - t0)
        self._record(result)
        return result.check() if check else result

    def _free_agent(self) -> _Agent | None:
        """The long-lived shell, locked for the caller; None when another thread has it."""
        if not self._agent_lock.acquire(blocking=False):
            return None
        try:
            if self._agent is None or not self._agent.usable:
                transport = self._client.get_transport() if self._client else None
                if transport is None or not transport.is_active():
                    raise GuestUnreachable(f"SSH connection to {self.target.host}:"
                                           f"{self.target.port} is closed")
                try:
                    self._agent = _Agent(transport)
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    raise GuestUnreachable(f"SSH session to the guest failed: {exc}") from None
        except BaseException:
            self._agent_lock.release()
            raise
        return self._agent

    def _run_channel(self, command: str, tag: str, stdin: str | None,
                     deadline: float, shown: str) -> tuple[int, str, str]:
        started = time.monotonic()
        chan = self._channel(command, tag)
        if stdin is not None:
            chan.sendall(stdin.encode())
            chan.shutdown_write()
        out, err = bytearray(), bytearray()
        try:
            while not (chan.exit_status_ready() and not chan.recv_ready()
                       and not chan.recv_stderr_ready()):
                left = deadline - time.monotonic()
                if left <= 0 or (time.monotonic() - started > STOP_AFTER_S
                                 and self._should_stop()):
                    self._kill(tag)
                    raise _TimedOut(out, err)
                _read_ready(chan, out, err, min(left, 1.0))
                if chan.closed and not chan.exit_status_ready():
                    raise GuestUnreachable(f"SSH connection lost while running {brief(shown)}")
            code = chan.recv_exit_status()
            if code == -1:
                raise GuestUnreachable(f"SSH connection lost while running {brief(shown)}")
        finally:
            chan.close()
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    def background(self, command: str, log_path: Path | None = None,
                   sink: Callable[[bytes], None] | None = None) -> Background:
        """Start ``command`` and return at once; its output is drained on a thread (and
        handed to ``sink`` as it comes, then b"" once it ends)."""
        return self._background(command, command, log_path, sink)

    def call_background(self, function: str, *args: object,
                        log_path: Path | None = None) -> Background:
        """:meth:`call` in the background, as :meth:`background` runs a command."""
        line = call_line(function, *args)
        return self._background(LIBRARY.script(line), line, log_path)

    def _background(self, command: str, shown: str, log_path: Path | None,
                    sink: Callable[[bytes], None] | None = None) -> Background:
        tag = f"bg{next(_tags)}-{time.monotonic_ns()}"
        chan = self._channel(command, tag)
        self._record_line(f"started in background [{tag}]: {shown}")
        return Background(self, shown, tag, chan, log_path, sink)

    def _kill(self, tag: str, parent: int | None = None) -> None:
        """Kill what the command tagged ``tag`` started, waiting a bounded time: in a wedged
        guest the killer itself may block (reading a stuck task's /proc files), and the
        caller must still get to report the hang."""
        try:
            chan = self._channel(_kill_script(tag, parent), "killer")
            deadline = time.monotonic() + KILL_WAIT_S
            while not chan.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            chan.close()
        except GuestUnreachable:
            pass

    # --- files -------------------------------------------------------------------------------

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            if self._client is None:
                raise GuestUnreachable("not connected to the guest")
            self._sftp = self._client.open_sftp()
        return self._sftp

    def put(self, local: Path, remote: str) -> None:
        self.sftp().put(str(local), remote)
        self._record_line(f"put {local} -> {remote}")

    def get(self, remote: str, local: Path) -> None:
        self.sftp().get(remote, str(local))
        self._record_line(f"get {remote} -> {local}")

    def read_text(self, remote: str) -> str:
        with self.sftp().open(remote, "r") as fh:
            return bytes(fh.read()).decode(errors="replace")

    def write_text(self, remote: str, text: str) -> None:
        with self.sftp().open(remote, "w") as fh:
            fh.write(text.encode())

    # --- log ---------------------------------------------------------------------------------

    def _record(self, res: CommandResult, status: str | None = None) -> None:
        status = status or f"exit={res.exit_code}"
        body = ""
        for name, text in (("stdout", res.stdout), ("stderr", res.stderr)):
            if text.strip():
                snippet = text if len(text) < 4000 else text[:2000] + "\n[...]\n" + text[-2000:]
                body += f"  {name}:\n" + "".join(f"    {ln}\n" for ln in snippet.splitlines())
        self._record_line(f"$ {res.command}\n  {status} in {res.duration:.3f}s\n{body}".rstrip())

    def _record_line(self, text: str) -> None:
        if self._log is not None:
            with self._log_lock:
                self._log.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
                self._log.flush()


def _read_ready(chan: paramiko.Channel, out: bytearray, err: bytearray,
                wait: float) -> bytes:
    """Wait up to ``wait`` seconds for the channel, then append what it has to ``out`` and
    ``err``; returns the bytes read (both streams, in arrival order per stream)."""
    select.select([chan], [], [], wait)
    got = bytearray()
    while chan.recv_ready():
        data = chan.recv(65536)
        out += data
        got += data
    while chan.recv_stderr_ready():
        data = chan.recv_stderr(65536)
        err += data
        got += data
    return bytes(got)


class _TimedOut(Exception):
    def __init__(self, out: bytes | bytearray, err: bytes | bytearray) -> None:
        super().__init__("timed out")
        self.out = bytes(out).decode(errors="replace")
        self.err = bytes(err).decode(errors="replace")


class _Agent:
    """One long-lived ``bash`` on its own SSH channel, running each command in a subshell.

    Each command is sent as shell source; its end is a marker line carrying the exit status,
    written to stdout and stderr after the subshell exits. The marker holds a random token,
    so no command output can forge it. Library functions are defined in the long-lived shell
    itself, each the first time a command needs it: bash reads a pipe a byte per system call,
    and the definitions a watcher needs took 45 ms to read under TCG, every call.
    """

    # The shell the SSH server starts runs this loop itself: no further process start. Each
    # request is a line "DEFS LENGTH TAG MARKER" followed by DEFS bytes of function
    # definitions, evaluated in the loop's shell, and LENGTH bytes of shell source, run in a
    # subshell. The loop's variables are unset before the command runs, so it sees a clean
    # shell. It first prints its PID: a command is the subshell whose parent that is.
    LOOP = ("printf '%s\\n' $$; "
            "while read -r _nv_d _nv_n _nv_t _nv_m; do "
            "if [ \"$_nv_d\" -gt 0 ]; then LC_ALL=C read -r -N \"$_nv_d\" _nv_c || break; "
            "eval \"$_nv_c\"; fi; "
            "LC_ALL=C read -r -N \"$_nv_n\" _nv_c || break; "
            "( export NVMEH_TAG=$_nv_t; eval \"unset _nv_d _nv_n _nv_t _nv_m _nv_c; $_nv_c\" ) "
            "</dev/null; printf '%s %d\\n' \"$_nv_m\" $?; printf '%s\\n' \"$_nv_m\" >&2; "
            "done")

    def __init__(self, transport: paramiko.Transport) -> None:
        self.token = secrets.token_hex(8)
        self._seq = itertools.count(1)
        self.chan = transport.open_session(timeout=10)
        self.chan.exec_command(self.LOOP)
        self.pid = self._read_pid()  # the killer of a timed-out command kills its children
        self.usable = True
        self.defined: set[str] = set()  # library functions this shell has

    @staticmethod
    def request(definitions: str, command: str, tag: str, marker: bytes) -> bytes:
        """What LOOP reads to define ``definitions`` and run ``command``."""
        defs, body = definitions.encode(), command.encode()
        return b"%d %d %s %s\n%s%s" % (len(defs), len(body), tag.encode(), marker, defs, body)

    def _read_pid(self, timeout: float = 30.0) -> int:
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while b"\n" not in out:
            if time.monotonic() > deadline or self.chan.closed:
                raise EOFError("the guest's shell did not start")
            _read_ready(self.chan, out, err, 0.5)
        return int(out.decode().split()[0])

    def run(self, command: str, tag: str, deadline: float, kill: Callable[[], None],
            stop: Callable[[], bool] = lambda: False, shown: str = "",
            needs: list[str] | None = None) -> tuple[int, str, str]:
        """``stop()`` true ends the command as a timeout would (asked once it has run for
        STOP_AFTER_S: a quick command, such as one cleaning up after a hang, just runs);
        ``shown``: the command as messages name it (default: itself); ``needs``: the library
        functions it calls."""
        marker = f"__nvmeh_{self.token}_{next(self._seq)}__".encode()
        new = [name for name in needs or [] if name not in self.defined]
        script = self.request(LIBRARY.definitions(new), command, tag, marker)
        self.defined.update(new)
        out, err = bytearray(), bytearray()
        started = time.monotonic()
        try:
            self.chan.sendall(script)
            killed = False
            while marker not in out or marker not in err or not out.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or (not killed and time.monotonic() - started > STOP_AFTER_S
                                 and stop()):
                    if killed:
                        self.usable = False  # the shell did not come back: start a new one
                        raise _TimedOut(out, err)
                    kill()
                    killed = True
                    deadline = time.monotonic() + 10
                    continue
                _read_ready(self.chan, out, err, min(left, 1.0))
                if self.chan.closed or self.chan.exit_status_ready():
                    self.usable = False
                    raise GuestUnreachable("SSH connection lost while running "
                                           f"{brief(shown or command)}")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.usable = False
            raise GuestUnreachable(f"SSH session to the guest failed: {exc}") from None
        if killed:
            raise _TimedOut(out[:out.index(marker)], err[:err.index(marker)])
        o = out.index(marker)
        code = int(out[o + len(marker):].split()[0])
        return (code, bytes(out[:o]).decode(errors="replace"),
                bytes(err[:err.index(marker)]).decode(errors="replace"))

    def close(self) -> None:
        self.usable = False
        self.chan.close()


class Background:
    """A command running in the guest; ``wait()`` gives its :class:`CommandResult`."""

    def __init__(self, guest: Guest, command: str, tag: str, chan: paramiko.Channel,
                 log_path: Path | None, sink: Callable[[bytes], None] | None = None) -> None:
        self.guest, self.command, self.tag = guest, command, tag
        self._chan = chan
        self._sink = sink
        self._t0 = time.monotonic()
        self._out, self._err = bytearray(), bytearray()
        self._log = open(log_path, "ab") if log_path else None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True, name=f"bg-{tag}")
        self._thread.start()

    def _drain(self) -> None:
        chan = self._chan
        try:
            while True:
                got = _read_ready(chan, self._out, self._err, 1.0)
                if self._log and got:
                    self._log.write(got)
                if self._sink and got:
                    self._sink(got)
                if chan.exit_status_ready() and not got:
                    break
                if chan.closed:
                    break
        except (TimeoutError, OSError, EOFError):
            pass
        finally:
            if self._log:
                self._log.close()
            if self._sink:
                self._sink(b"")
            self._done.set()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def output(self) -> str:
        """What the command has written to its stdout so far."""
        return bytes(self._out).decode(errors="replace")

    def wait(self, timeout: float | None = None, interruptible: bool = True) -> CommandResult:
        """Wait for the command to end. As in :meth:`Guest.run`, once the command has run for
        STOP_AFTER_S a hung task the guest reports (``Guest.interrupt``) ends the wait at once
        with :class:`GuestHang`: a wait for a load or a verify pass would otherwise hold the
        report back until they end (and report it as an oops after the fact). The command
        itself runs on."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if end is None else max(0.0, min(1.0, end - time.monotonic()))
            if self._done.wait(left):
                break
            if interruptible and time.monotonic() - self._t0 > STOP_AFTER_S and \
                    (hang := self.guest.take_interrupt()) is not None:
                message, detail = hang
                raise GuestHang(f"{message} (while waiting for {brief(self.command)})", detail)
            if end is not None and time.monotonic() >= end:
                raise CommandTimeout(f"background command {self.command!r} still running "
                                     f"after {timeout:g}s")
        code = self._chan.recv_exit_status() if self._chan.exit_status_ready() else -1
        self._chan.close()
        res = CommandResult(self.command, code, self._out.decode(errors="replace"),
                            self._err.decode(errors="replace"), time.monotonic() - self._t0)
        self.guest._record(res)
        return res

    def kill(self) -> CommandResult:
        self.guest._kill(self.tag)
        try:
            return self.wait(10, interruptible=False)
        except CommandTimeout:
            self._chan.close()
            return self.wait(5, interruptible=False)


def shell_quote(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)
