"""Real-socket peers for the driver tests: a ser2net-like console server, a NETIO-style PDU.

These play the box's side of the wire over real TCP (nothing mocked): the tests use them for
cases that need precise control of the byte stream (a death string split across chunks, a drop
at a chosen moment); the emulator tests cover the same drivers against the emulated STB.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paramiko
import pytest
from support import FAST_BOOT  # the suite's one fast boot


class ConsolePeer:
    """A TCP server standing in for ser2net: one client at a time, bytes both ways.

    ``on_line`` (optional) is called with each line the client typed and returns bytes to send
    back; without it the test drives the stream with :meth:`send`.
    """

    def __init__(self, on_line: Callable[[str], bytes] | None = None, *, echo: bool = True) -> None:
        self.on_line = on_line
        self.echo = echo
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self.received = bytearray()
        self.arrivals: list[float] = []
        self.connections = 0
        self._conn: socket.socket | None = None
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            with self._cond:
                self._conn = conn
                self.connections += 1
                self._cond.notify_all()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        line = bytearray()
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            with self._cond:
                self.received += data
                self.arrivals.extend([now] * len(data))
                self._cond.notify_all()
            if self.on_line is None:
                continue
            for b in data:
                if b in (10, 13):
                    if self.echo:
                        self._send_to(conn, bytes(line) + b"\r\n")
                    reply = self.on_line(line.decode("utf-8", "replace"))
                    line.clear()
                    if reply:
                        self._send_to(conn, reply)
                else:
                    line.append(b)

    @staticmethod
    def _send_to(conn: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)

    def wait_connected(self, n: int = 1, timeout: float = 5.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections >= n, timeout):
                raise AssertionError(f"no console client connected (wanted {n}, have {self.connections})")

    def send(self, data: bytes | str) -> None:
        """Send bytes to the connected client, as the box's UART would."""
        self.wait_connected()
        assert self._conn is not None
        self._conn.sendall(data.encode() if isinstance(data, str) else data)

    def wait_input(self, pattern: bytes, timeout: float = 5.0) -> bytes:
        """Wait until the client has typed something matching ``pattern``; returns all input so far."""
        rx = re.compile(pattern)
        with self._cond:
            if not self._cond.wait_for(lambda: rx.search(bytes(self.received)), timeout):
                raise AssertionError(f"client never sent {pattern!r}; got {bytes(self.received)!r}")
            return bytes(self.received)

    def drop(self) -> None:
        """Close the current client connection (ser2net restarted, cable pulled); keep listening."""
        with self._cond:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def stop(self) -> None:
        """The instrument is gone: stop listening and drop the client."""
        self._closed = True
        with contextlib.suppress(OSError):  # shutdown wakes the blocked accept(); close alone does not
            self._srv.shutdown(socket.SHUT_RDWR)
        self._srv.close()
        self.drop()


class MiniShell:
    """Answers the lines a console driver types the way a busybox shell on a serial console does.

    Knows ``echo``, ``true``, ``false``, ``cat <name>`` (from ``files``), ``printf``, ``$?`` and
    ``;``. Optional ``kernel_noise`` is printed in the middle of a command's output, as kernel
    messages interrupt output on real consoles.
    """

    def __init__(self, prompt: str = "root@stb:~# ", files: dict[str, str] | None = None) -> None:
        self.prompt = prompt
        self.files = files or {}
        self.status = 0
        self.kernel_noise: bytes = b""

    def __call__(self, line: str) -> bytes:
        out = b""
        for part in line.split(";"):
            part = part.strip()
            if not part:
                continue
            words = part.split()
            cmd, args = words[0], words[1:]
            if cmd == "echo":
                text = " ".join(args).replace("$?", str(self.status))
                out += text.encode() + b"\r\n"
                self.status = 0
            elif cmd == "printf":
                out += " ".join(args).encode()
                self.status = 0
            elif cmd == "true":
                self.status = 0
            elif cmd == "false":
                self.status = 1
            elif cmd == "cat" and args and args[0] in self.files:
                body = self.files[args[0]].encode().replace(b"\n", b"\r\n")
                if self.kernel_noise:
                    half = len(body) // 2
                    body = body[:half] + self.kernel_noise + body[half:]
                out += body
                self.status = 0
            else:
                out += f"-sh: {cmd}: not found\r\n".encode()
                self.status = 127
        return out + self.prompt.encode()


@pytest.fixture
def mini_shell() -> type[MiniShell]:
    """The MiniShell class (tests build one with their own files)."""
    return MiniShell


@pytest.fixture
def console_peer() -> Iterator[ConsolePeer]:
    peer = ConsolePeer()
    yield peer
    peer.stop()


class PduState:
    """Outlets of the fake NETIO PDU (state and how many times each action was asked)."""

    def __init__(self, outputs: int = 4, *, user: str | None = None, password: str | None = None) -> None:
        self.states = {i: 0 for i in range(1, outputs + 1)}
        self.delay_ms = 300
        self.user = user
        self.password = password
        self.actions: list[tuple[int, int]] = []
        self.auth_headers: list[str | None] = []
        self.fail_with: int | None = None
        self.lock = threading.Lock()

    def document(self) -> dict[str, object]:
        return {
            "Agent": {"Model": "NETIO 4 (test)", "SerialNumber": "TEST-PDU", "NumOutputs": len(self.states)},
            "Outputs": [
                {"ID": i, "Name": f"out{i}", "State": s, "Action": 6, "Delay": self.delay_ms}
                for i, s in self.states.items()
            ],
        }


def _pdu_handler(state: PduState) -> type[BaseHTTPRequestHandler]:
    import base64

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            header = self.headers.get("Authorization")
            state.auth_headers.append(header)
            if state.user is None:
                return True
            want = "Basic " + base64.b64encode(f"{state.user}:{state.password}".encode()).decode()
            if header != want:
                self._reply(401, {"error": "unauthorised"})
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            if state.fail_with:
                self._reply(state.fail_with, {"error": "internal"})
                return
            if self.path != "/netio.json":
                self._reply(404, {"error": "not found"})
                return
            with state.lock:
                self._reply(200, state.document())

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                req = json.loads(raw)
                outs = req["Outputs"]
            except (ValueError, KeyError, TypeError):
                self._reply(400, {"error": "bad JSON"})
                return
            with state.lock:
                for out in outs:
                    oid, action = out.get("ID"), out.get("Action")
                    if oid not in state.states:
                        self._reply(400, {"error": f"unknown output ID {oid}"})
                        return
                    state.actions.append((oid, action))
                    if action == 0:
                        state.states[oid] = 0
                    elif action == 1:
                        state.states[oid] = 1
                    elif action == 2:
                        state.states[oid] = 0

                        def back_on(o: int = oid) -> None:
                            with state.lock:
                                state.states[o] = 1

                        threading.Timer(state.delay_ms / 1000, back_on).start()
                    elif action == 4:
                        state.states[oid] ^= 1
                self._reply(200, state.document())

    return Handler


class PduPeer:
    """A NETIO-style JSON PDU over real HTTP on a free loopback port."""

    def __init__(self, **kwargs: object) -> None:
        self.state = PduState(**kwargs)  # type: ignore[arg-type]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _pdu_handler(self.state))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pdu_peer() -> Iterator[PduPeer]:
    peer = PduPeer()
    yield peer
    peer.stop()


class _SshServer(paramiko.ServerInterface):
    def __init__(self, allowed: paramiko.PKey) -> None:
        self.allowed = allowed

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == "root" and key.asbytes() == self.allowed.asbytes()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        threading.Thread(target=self._exec, args=(channel, command.decode()), daemon=True).start()
        return True

    @staticmethod
    def _exec(chan: paramiko.Channel, command: str) -> None:
        """Tiny command set: ``out TEXT``, ``err TEXT``, ``exit N``, ``sleep S``, joined by ``;``."""
        time.sleep(0.02)  # as sshd: the exec reply goes out before the command's output
        code = 0
        for part in command.split(";"):
            word, _, arg = part.strip().partition(" ")
            if word == "out":
                chan.sendall(arg.encode() + b"\n")
            elif word == "err":
                chan.sendall_stderr(arg.encode() + b"\n")
            elif word == "exit":
                code = int(arg)
            elif word == "sleep":
                time.sleep(float(arg))
            else:
                chan.sendall_stderr(f"sh: {word}: not found\n".encode())
                code = 127
        with contextlib.suppress(OSError, EOFError):
            chan.send_exit_status(code)
            chan.shutdown_write()
            chan.close()


class SshPeer:
    """A real paramiko SSH server on a free loopback port (exec only) with its own Ed25519 host key.

    ``client_key`` is the lab key it accepts (written to ``dir/lab_key``); ``known_hosts`` is
    empty until a test writes it.
    """

    def __init__(self, directory: Path) -> None:
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(_new_ed25519(directory / "host_key")))
        self.client_key_path = _new_ed25519(directory / "lab_key")
        self.client_key = paramiko.PKey.from_path(self.client_key_path)
        self.known_hosts = directory / "known_hosts"
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            self.transports.append(t)
            with contextlib.suppress(Exception):
                t.start_server(server=_SshServer(self.client_key))

    def known_hosts_line(self, key: paramiko.PKey | None = None) -> str:
        key = key or self.host_key
        return f"[127.0.0.1]:{self.port} {key.get_name()} {key.get_base64()}\n"

    def kill_connections(self) -> None:
        for t in self.transports:
            t.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._srv.shutdown(socket.SHUT_RDWR)
        self._srv.close()
        self.kill_connections()


def _new_ed25519(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


@pytest.fixture
def ssh_peer(tmp_path: Path) -> Iterator[SshPeer]:
    peer = SshPeer(tmp_path)
    yield peer
    peer.stop()


# -- the emulated STB (lab.emulator.testing) ------------------------------------------------------


@pytest.fixture(scope="session")
def emulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One emulated lab per session (per xdist worker).

    ``stb-a`` runs a good firmware, ``stb-x`` one whose boot panics, ``stb-p`` one that oopses and
    panics after the IR keys MENU 9 9 OK (the catalogue's 2.2.0 defect).
    """
    import yaml

    from lab.emulator.testing import EmulatedLab, rig_entry

    directory = tmp_path_factory.mktemp("emu")
    # stb-a's kernel chatters (a message every ~0.2 s) so output framing is tested against interleaving
    good = rig_entry(directory, "stb-a", boot={**FAST_BOOT, "kmsg_interval": 0.2})
    bad = rig_entry(directory, "stb-x", firmware="2.9.0", defects={"2.9.0": [{"kind": "boot_fail"}]}, boot=FAST_BOOT)
    panic = rig_entry(
        directory,
        "stb-p",
        firmware="2.2.0",
        defects={"2.2.0": [{"kind": "kernel_panic", "key_sequence": ["KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"]}]},
        boot=FAST_BOOT,
    )
    rig_file = directory / "rigs.yaml"
    rig_file.write_text(yaml.safe_dump({"rigs": [good, bad, panic]}, sort_keys=False))
    with EmulatedLab(rig_file) as lab:
        yield lab


class FreezableProxy:
    """A TCP proxy on a free port that can stop forwarding (a network black hole: no FIN, no RST)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self.frozen = threading.Event()
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            while self.frozen.is_set():  # hold the bytes: they never arrive
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                dst.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._srv.shutdown(socket.SHUT_RDWR)
        self._srv.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
