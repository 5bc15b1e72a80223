"""SSH driver (paramiko): host keys checked, commands with exit codes, verified SFTP transfers.

* Host keys are verified against the rig's ``known_hosts`` (OpenSSH format, hashed entries
  too). An unknown host is refused unless ``trust_new_key=True``, which appends exactly that
  host's key to ``known_hosts``. A key that differs from the one on file is an ``InfraError``
  naming both fingerprints (``SHA256:...``, as ``ssh-keygen -lf`` prints them): the lab cannot
  be sure it is talking to the box, so nothing runs.
* Public-key login only, with the lab key (``key``, optional ``passphrase``); no agent, no
  other keys from ``~/.ssh``. The key file's content and passphrase never reach a log.
* ``run`` returns :class:`CommandResult` (stdout, stderr separately, exit code); ``put``/``get``
  use SFTP and compare sha256 on both sides (the box's ``sha256sum``, or a read-back when it has
  none). ``wait_for_reconnect`` waits (bounded) for the box to come back after a reboot.

Outcomes: a connection that is refused, times out, drops, or fails authentication is an
``InfraError(instrument="ssh")``. A remote path that does not exist (or cannot be written) is a
``TestError``: the scenario named it. A command that does not finish while the connection is alive is
a :class:`CommandTimeout` (a ``DeviceFault``: the box hung). A file whose sha256 on the box differs
from what was sent is a ``DeviceFault`` (SSH's transport is integrity-protected, so the box
stored something else).

Example::

    ssh = SshClient("127.0.0.1", 17022, "root", "keys/lab_ed25519", "known_hosts", rig_name="stb-a")
    ssh.connect(timeout=10)
    assert ssh.run("fw version").output.startswith("version=")
    ssh.put("fw.img", "/tmp/fw.img")
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from lab.drivers.result import CommandResult
from lab.drivers.ssh_files import FilesMixin
from lab.drivers.ssh_keys import INSTRUMENT, HostKeyError, HostKeysMixin, _why, fingerprint
from lab.errors import DeviceFault, InfraError
from lab.steps import step

if TYPE_CHECKING:
    from lab.rig import Rig


def _pgid(err: bytes | bytearray, tag: str | None) -> int | None:
    """The process group the wrapped command reported on its first stderr line (None: not seen)."""
    if tag is None:
        return None
    m = re.match(rb"\s*" + re.escape(tag.encode()) + rb"(\d+)\r?\n", bytes(err))
    return int(m.group(1)) if m else None


def _strip_pgid(err: bytes, tag: str | None) -> bytes:
    """stderr without the process-group line the wrapper printed."""
    if tag is None:
        return err
    return re.sub(rb"\A\s*" + re.escape(tag.encode()) + rb"\d+\r?\n", b"", err, count=1)


class CommandTimeout(DeviceFault):
    """A command over SSH did not finish in time although the connection was alive."""


class SshClient(HostKeysMixin, FilesMixin):
    """An SSH connection to one box (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str],
        *,
        rig_name: str | None = None,
        trust_new_key: bool = False,
        keepalive: int = 10,
        passphrase: str | None = None,
        io_timeout: float = 30.0,
    ) -> None:
        if io_timeout <= 0:
            raise ValueError("io_timeout must be > 0")
        self.host = host
        self.port = port
        self.user = user
        self.key_path = Path(key)
        self.known_hosts = Path(known_hosts)
        self.rig_name = rig_name
        self.trust_new_key = trust_new_key
        self.keepalive = keepalive
        #: seconds one SFTP request may wait for the box's answer before the transfer is an InfraError
        self.io_timeout = io_timeout
        self._passphrase = passphrase
        self._pkey: paramiko.PKey | None = None
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._has_sha256sum: bool | None = None
        #: how a timed-out command is ended: ``signal`` (SSH signal requests; OpenSSH honours them
        #: only for non-root users) or ``process-group`` (the command reports its process group
        #: and is killed with ``kill -- -PGID`` over a second channel; needs a POSIX shell)
        self.kill_mode: str = "signal"

    @classmethod
    def from_rig(cls, rig: Rig, *, trust_new_key: bool = False, keepalive: int = 10) -> SshClient:
        """The SSH connection of ``rig`` (its ``ssh:`` section; passphrase from ``passphrase_env``)."""
        cfg = rig.ssh
        if cfg is None:
            raise InfraError("rig has no ssh section", rig=rig.name, instrument=INSTRUMENT)
        passphrase = os.environ.get(cfg.passphrase_env) if cfg.passphrase_env else None
        return cls(
            cfg.host,
            cfg.port,
            cfg.user,
            cfg.key,
            cfg.known_hosts,
            rig_name=rig.name,
            trust_new_key=trust_new_key,
            keepalive=keepalive,
            passphrase=passphrase,
        )

    def __repr__(self) -> str:  # never the key or passphrase
        return f"SshClient({self.user}@{self.host}:{self.port}, rig={self.rig_name!r})"

    # -- connection ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def _open(self, timeout: float) -> None:
        pkey = self._load_key()
        known = self._known_keys()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise self._infra(f"cannot connect: {exc.strerror or exc}") from None
        with contextlib.suppress(OSError, AttributeError):  # a silently dead link shows up as closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 3)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        try:
            transport = paramiko.Transport(sock)
        except Exception:
            sock.close()
            raise
        try:
            if known:  # ask for the key type we know, so a box with several keys offers that one
                opts = transport.get_security_options()
                first = next(iter(known))
                with contextlib.suppress(ValueError):  # a type paramiko does not speak: keep its order
                    opts.key_types = [first, *[k for k in opts.key_types if k != first]]
            transport.banner_timeout = timeout
            transport.handshake_timeout = timeout
            transport.auth_timeout = timeout
            transport.start_client(timeout=timeout)
            self._verify_host_key(transport.get_remote_server_key())
            transport.auth_publickey(self.user, pkey)
        except BaseException as exc:
            transport.close()  # whatever failed (a host key, known_hosts, the login), never leak the connection
            if isinstance(exc, paramiko.AuthenticationException):
                raise self._infra(f"public-key login as {self.user!r} refused: {exc}") from None
            if isinstance(exc, paramiko.SSHException | OSError | EOFError):
                raise self._infra(f"SSH handshake failed: {_why(exc)}") from None
            raise
        if self.keepalive:
            transport.set_keepalive(self.keepalive)
        self._transport = transport
        self._sftp = None

    @step(INSTRUMENT)
    def connect(self, timeout: float = 10.0) -> SshClient:
        """Connect, verify the host key, log in with the lab key. Returns self."""
        if not self.connected:
            self._drop()
            self._open(timeout)
        return self

    def _drop(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.close()
        self._sftp = None
        self._transport = None

    @step(INSTRUMENT)
    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        self._drop()

    def __enter__(self) -> SshClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> paramiko.Transport:
        if self._transport is None:
            self.connect()
        assert self._transport is not None
        if not self._transport.is_active():
            self._drop()
            raise self._infra("connection is down (box rebooted or network lost?); call wait_for_reconnect()")
        return self._transport

    @step(INSTRUMENT)
    def wait_for_reconnect(
        self, timeout: float = 60.0, *, attempt_timeout: float = 5.0, wait_drop: bool = False
    ) -> SshClient:
        """After a reboot: drop the old connection and retry until the box answers again (bounded).

        ``wait_drop=True`` first waits (within ``timeout``) for the box to drop the current
        connection, for callers that ask for a reboot and must not reconnect to the box before it
        went down. A host key mismatch is raised at once (waiting will not fix it).

        Example::

            ssh.run("reboot")   # may also raise InfraError when the box drops the session first
            ssh.wait_for_reconnect(timeout=90, wait_drop=True)
        """
        deadline = time.monotonic() + timeout
        if wait_drop and self._transport is not None:
            while self._transport.is_active():
                if time.monotonic() >= deadline:
                    raise self._infra(f"the box kept the connection for {timeout:.0f} s (did it reboot?)")
                with contextlib.suppress(Exception):
                    self._transport.send_ignore()  # makes a dead peer show up as a closed transport
                time.sleep(0.1)
        self._drop()
        delay = 0.2
        last = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._infra(f"box not reachable over SSH again within {timeout:.0f} s (last: {last})")
            try:
                self._open(min(attempt_timeout, max(left, 0.1)))
                return self
            except HostKeyError:
                raise
            except InfraError as exc:
                last = exc.message
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 2.0)

    # -- commands ------------------------------------------------------------------------------

    def _exec(self, cmd: str, timeout: float) -> tuple[bytes, bytes, int]:
        pgid_tag = None
        if self.kill_mode == "process-group":
            # sshd starts each session with setsid(): the shell's pid is its process group, and
            # exec keeps that pid for the command, so `kill -- -PGID` ends it and its children.
            pgid_tag = f"STBLAB-PGID-{secrets.token_hex(4)}="
            cmd_sent = f"echo {pgid_tag}$$ >&2; exec sh -c {shlex.quote(cmd)}"
        else:
            cmd_sent = cmd
        out, err, code = self._exec_raw(cmd_sent, timeout, shown=cmd, pgid_tag=pgid_tag)
        return out, err, code

    def _exec_raw(
        self, cmd_sent: str, timeout: float, *, shown: str, pgid_tag: str | None = None
    ) -> tuple[bytes, bytes, int]:
        cmd = shown
        transport = self._live()
        try:
            chan = transport.open_session(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop()
            raise self._infra(f"cannot start a command: {_why(exc)}") from None
        try:
            chan.exec_command(cmd_sent)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            # A fast server may finish the command and close the channel before paramiko has seen
            # the exec reply; the output and exit status have arrived all the same.
            if not (chan.closed and chan.exit_status_ready()):
                chan.close()
                if not transport.is_active():
                    self._drop()
                raise self._infra(f"cannot start a command: {_why(exc)}") from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                drained = not chan.recv_ready() and not chan.recv_stderr_ready()
                if chan.exit_status_ready() and drained and (chan.eof_received or chan.closed):
                    break
                if chan.closed and not chan.exit_status_ready():
                    self._drop()
                    raise self._infra(f"connection lost while `{cmd}` ran")
                left = deadline - time.monotonic()
                if left <= 0:
                    if not transport.is_active() or not self._responsive(transport):
                        self._drop()
                        raise self._infra(f"connection lost or unresponsive while `{cmd}` ran")
                    ended = self._kill_remote(chan, _pgid(err, pgid_tag))
                    raise CommandTimeout(
                        f"`{cmd}` did not finish within {timeout:.1f} s over SSH; {ended}",
                        rig=self.rig_name,
                        symptom="command-timeout",
                        excerpt=(out + _strip_pgid(bytes(err), pgid_tag)).decode("utf-8", "replace")[-2000:] or None,
                    )
                if not transport.is_active():
                    self._drop()
                    raise self._infra(f"connection lost while `{cmd}` ran")
                select.select([chan], [], [], min(left, 0.2))
            code = chan.recv_exit_status()
            if code == -1:  # paramiko's value when the channel closed without an exit-status message
                if not transport.is_active():
                    self._drop()
                raise self._infra(f"`{cmd}`: session closed without an exit status (box rebooting? sshd died?)")
            return bytes(out), _strip_pgid(bytes(err), pgid_tag), code
        finally:
            chan.close()

    @staticmethod
    def _signal(chan: paramiko.Channel, name: str) -> None:
        """Send an RFC 4254 ``signal`` request (OpenSSH's sshd delivers it to the session's process group)."""
        m = paramiko.Message()
        m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
        m.add_int(chan.remote_chanid)
        m.add_string("signal")
        m.add_boolean(False)
        m.add_string(name)
        chan.transport._send_user_message(m)  # paramiko has no public call for this request

    def _kill_remote(self, chan: paramiko.Channel, pgid: int | None, grace: float = 1.0) -> str:
        """End a timed-out command on the box: SIGTERM, then SIGKILL after ``grace`` s; what happened.

        Closing the channel alone leaves a command without a pty running on the box (OpenSSH
        does not signal it). A server that ignores signal requests (old dropbear, some vendor
        daemons) leaves it running: the message says so.
        """
        if pgid is not None:
            return self._kill_group(chan, pgid, grace)
        for sig in ("TERM", "KILL"):
            try:
                self._signal(chan, sig)
            except Exception as exc:  # transport gone: nothing more to do from here
                return f"could not signal the remote command ({_why(exc)})"
            end = time.monotonic() + grace
            while time.monotonic() < end and not chan.exit_status_ready():
                select.select([chan], [], [], 0.05)
                while chan.recv_ready():
                    chan.recv(65536)
                while chan.recv_stderr_ready():
                    chan.recv_stderr(65536)
            if chan.exit_status_ready():
                return f"the remote command was ended with SIG{sig}"
        return "the server ignored SIGTERM/SIGKILL requests: the remote command may still run"

    def _kill_group(self, chan: paramiko.Channel, pgid: int, grace: float) -> str:
        """``kill -TERM -- -PGID`` (then ``-KILL``) over a second channel; what happened."""
        for sig in ("TERM", "KILL"):
            try:
                self._exec_raw(f"kill -{sig} -- -{pgid} 2>/dev/null; true", 10.0, shown=f"kill -{sig} -- -{pgid}")
            except (InfraError, CommandTimeout) as exc:
                return f"could not kill the remote command's process group {pgid} ({exc})"
            end = time.monotonic() + grace
            while time.monotonic() < end and not chan.exit_status_ready():
                select.select([chan], [], [], 0.05)
                while chan.recv_ready():
                    chan.recv(65536)
                while chan.recv_stderr_ready():
                    chan.recv_stderr(65536)
            if chan.exit_status_ready():
                return f"the remote command (process group {pgid}) was ended with SIG{sig}"
        return f"the remote command (process group {pgid}) survived SIGTERM and SIGKILL"

    @staticmethod
    def _responsive(transport: paramiko.Transport, timeout: float = 2.0) -> bool:
        """Does the SSH server still answer at all? (A global request; any reply counts.)

        Tells a hung command on a live box (a device fault) from a dead link or server (the lab's).
        """
        answered = threading.Event()

        def ask() -> None:
            with contextlib.suppress(Exception):
                transport.global_request("keepalive@openssh.com", wait=True)
                if transport.is_active():
                    answered.set()

        threading.Thread(target=ask, name="ssh-probe", daemon=True).start()
        return answered.wait(timeout)

    @step(INSTRUMENT)
    def run(self, cmd: str, timeout: float = 30.0) -> CommandResult:
        """Run ``cmd`` on the box; stdout, stderr and exit code (-1 if the box sent none).

        Example::

            r = ssh.run("cat /proc/uptime")
            if r: print(r.output)
        """
        t0 = time.monotonic()
        out, err, code = self._exec(cmd, timeout)
        return CommandResult(
            cmd, out.decode("utf-8", "replace"), code, time.monotonic() - t0, stderr=err.decode("utf-8", "replace")
        )


__all__ = ["CommandTimeout", "HostKeyError", "SshClient", "fingerprint"]
