"""The box's SSH daemon: a real paramiko server.

Persistent Ed25519 host key from the state folder, public-key login only (the lab key), ``exec``
and interactive ``shell`` running the box's shell (exit status set), and SFTP on the writable
folders. While the box is off, booting, crashed or its sshd died, connections are reset at once
(as a closed port would be).

Example::

    sshd = SshServer(sock, box, host_key, authorized=["ssh-ed25519 AAAA..."])
    sshd.start()
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paramiko

from lab.emulator.service import Service
from lab.emulator.sftp import BoxSftp
from lab.emulator.shell import Cancelled, SessionExit, Shell

if TYPE_CHECKING:
    from lab.emulator.box import Box

log = logging.getLogger("stblab.emulator.sshd")
BANNER = "OpenSSH_9.2p1 stblab"


def _reset(sock: socket.socket) -> None:
    """Close with RST, so the client sees 'connection reset/refused', not a hang."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Server(paramiko.ServerInterface):
    def __init__(self, box: Box, authorized: set[str], transport: paramiko.Transport) -> None:
        self.box = box
        self.authorized = authorized
        self.transport = transport
        self.ptys: set[int] = set()
        self.pending: dict[int, threading.Thread] = {}  # remote channel id -> work started after the reply
        self._lock = threading.Lock()

    def _after_reply(self, channel: paramiko.Channel, thread: threading.Thread) -> None:
        """Start ``thread`` once the SSH_MSG_CHANNEL_SUCCESS for this request has been sent.

        paramiko replies only after ``check_channel_*_request`` returns; a command that finishes
        at once would otherwise close the channel before the client heard "request ok".
        """
        with self._lock:
            self.pending[channel.remote_chanid] = thread
        timer = threading.Timer(2.0, self.reply_sent, (channel.remote_chanid,))  # client sent want_reply=False
        timer.daemon = True
        timer.start()

    def reply_sent(self, chanid: int) -> None:
        with self._lock:
            thread = self.pending.pop(chanid, None)
        if thread is not None:
            thread.start()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_none(self, username: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == "root" and f"{key.get_name()} {key.get_base64()}" in self.authorized:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(
        self, channel: Any, term: Any, width: Any, height: Any, pw: Any, ph: Any, modes: Any
    ) -> bool:
        self.ptys.add(channel.get_id())
        return True

    def check_channel_env_request(self, channel: Any, name: Any, value: Any) -> bool:
        return True

    def check_channel_window_change_request(self, *args: Any) -> bool:
        return True

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "replace")
        self._after_reply(
            channel, threading.Thread(target=self._exec, args=(channel, text), name="ssh-exec", daemon=True)
        )
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        self._after_reply(channel, threading.Thread(target=self._shell, args=(channel,), name="ssh-shell", daemon=True))
        return True

    def _exec(self, channel: paramiko.Channel, command: str) -> None:
        shell = Shell(self.box, transport="ssh")
        pty = channel.get_id() in self.ptys

        def out(text: str) -> None:
            if pty:
                text = text.replace("\n", "\r\n")
            channel.sendall(text.encode("utf-8", "replace"))

        try:
            status = shell.run(command, out=out, cancelled=lambda: channel.closed)
        except SessionExit:
            status = 0
        except OSError:
            return
        except Exception:  # never let a command kill the daemon
            log.exception("ssh exec failed")
            status = 1
        with contextlib.suppress(Exception):
            channel.send_exit_status(status)
            channel.shutdown_write()
            channel.close()

    def _shell(self, channel: paramiko.Channel) -> None:
        shell = Shell(self.box, transport="ssh")
        host = self.box.hostname

        def out(text: str) -> None:
            channel.sendall(text.replace("\n", "\r\n").encode("utf-8", "replace"))

        buf = bytearray()
        try:
            out(f"\nstblab STB firmware {self.box.fw_info()['version']}\n\n")
            while True:
                out(f"root@{host}:~# ")
                text = _read_line(channel, buf, out)
                if text is None:
                    return
                if text.strip():
                    with contextlib.suppress(Cancelled):
                        shell.run(text, out=out, cancelled=lambda: channel.closed)
        except SessionExit:
            with contextlib.suppress(Exception):
                out("logout\n")
                channel.send_exit_status(shell.status)
        except (OSError, EOFError):
            pass
        finally:
            with contextlib.suppress(Exception):
                channel.close()


def _read_line(channel: paramiko.Channel, buf: bytearray, out: Callable[[str], None]) -> str | None:
    """One command line typed into the session, echoed as a terminal would; None when the client
    closed the channel. Ctrl-C abandons the line (``""``); Ctrl-D on an empty line ends the session."""
    line: list[str] = []
    while True:
        if not buf:
            data = channel.recv(1024)
            if not data:
                return None
            buf += data
        b = buf[0]
        del buf[0]
        if b in (0x0D, 0x0A):
            if b == 0x0D and buf[:1] == b"\n":
                del buf[0]
            out("\n")
            return "".join(line)
        if b == 0x03:
            out("^C\n")
            return ""
        if b == 0x04 and not line:
            raise SessionExit
        if b in (0x08, 0x7F):
            if line:
                line.pop()
                out("\b \b")
        elif 0x20 <= b < 0x7F:
            line.append(chr(b))
            out(chr(b))


class SshServer(Service):
    """Accepts SSH connections on a bound socket for one box (the caller binds it, see process.py)."""

    thread_name = "sshd"

    def __init__(self, sock: socket.socket, box: Box, host_key: paramiko.PKey, authorized: list[str]) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(host, port)
        self.sock = sock
        self.box = box
        self.host_key = host_key
        self.authorized = set(authorized)
        self.bind()

    # -- lifecycle (see lab.emulator.service) ----------------------------------------------
    def _bind(self) -> None:
        pass  # bound by the caller

    def _run(self) -> None:
        self._accept_loop()

    def _release(self) -> None:
        """Stop accepting (sessions are dropped by the box)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"ssh://{self.host}:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.box.ssh_allowed():
                _reset(conn)
                continue
            threading.Thread(target=self._serve, args=(conn,), name="sshd-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.local_version = "SSH-2.0-" + BANNER
        transport.banner_timeout = 10
        transport.auth_timeout = 15
        transport.add_server_key(self.host_key)
        server = _Server(self.box, self.authorized, transport)
        transport.set_subsystem_handler("sftp", paramiko.SFTPServer, BoxSftp)
        server.box = self.box  # BoxSftp reads server.box
        send_user_message = transport._send_user_message

        def send_and_release(m: paramiko.Message) -> None:
            send_user_message(m)
            data = m.asbytes()
            if data[:1] in (b"\x63", b"\x64") and len(data) >= 5:  # CHANNEL_SUCCESS / CHANNEL_FAILURE
                server.reply_sent(struct.unpack(">I", data[1:5])[0])

        transport._send_user_message = send_and_release
        unregister = self.box.register_ssh(transport.close)
        if not self.box.ssh_allowed():  # lost power (or sshd) since the accept: nobody answers
            unregister()
            _reset(conn)
            return
        try:
            transport.start_server(server=server)
        except (paramiko.SSHException, EOFError, OSError):
            unregister()
            with contextlib.suppress(Exception):
                transport.close()
            return

        # start_server returns after the handshake; the transport thread serves the session.
        def reap() -> None:
            transport.join()
            unregister()

        threading.Thread(target=reap, daemon=True).start()


__all__ = ["SshServer"]
