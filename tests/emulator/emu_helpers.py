"""Helpers for the emulator's tests: plain-socket console, PDU over urllib, paramiko SSH.

Nothing here uses stblab's drivers: the tests talk to the emulator the way any tool would.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import paramiko
from support import FAST_BOOT as FAST_BOOT  # the suite's one fast boot, re-exported

from lab.rig import Rig


class RawConsole:
    """A ser2net-style raw TCP console client with a tiny expect()."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.settimeout(0.05)
        self.buf = b""
        self.seen = b""

    def read(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds``."""
        end = time.monotonic() + seconds
        got = b""
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            got += data
        self.buf += got
        self.seen += got
        return got

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait for ``pattern`` (regex) in the output; consumes up to the end of the match."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            text = self.buf.decode("utf-8", "replace")
            m = rx.search(text)
            if m:
                self.buf = text[m.end() :].encode()
                return m
            if time.monotonic() > end:
                raise AssertionError(f"timeout waiting for {pattern!r}; tail: {text[-600:]!r}")
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"console closed while waiting for {pattern!r}")
            self.buf += data
            self.seen += data

    def send(self, text: str | bytes) -> None:
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def wake(self) -> None:
        """Get a fresh prompt from a box that is on: press Enter unless it is busy booting."""
        if not self.read(1.2):  # a booting box talks at least every countdown step (1 s)
            self.send("\r")

    def login(self, timeout: float = 15.0) -> None:
        self.expect(r"login: $", timeout)
        self.send("root\r")
        self.expect(r"# $", 5)

    def run(self, command: str, timeout: float = 10.0) -> str:
        """Run a shell command; returns its output (echo and prompt stripped)."""
        self.buf = b""
        self.send(command + "\r")
        self.expect(re.escape(command) + r"\r\n", timeout)
        m = self.expect(r"(?s)(.*?)root@[\w.-]+:~# $", timeout)
        return m.group(1).replace("\r\n", "\n")

    def close(self) -> None:
        self.sock.close()


def pdu(rig: Rig, action: int | None = None, outlet: int | None = None, **extra: Any) -> dict[str, Any]:
    """GET the PDU document, or POST an action for the rig's outlet; returns the JSON answer."""
    url = rig.power.url + "/netio.json"  # type: ignore[union-attr]
    if action is None:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)
    body = {"Outputs": [{"ID": outlet or rig.power.outlet, "Action": action, **extra}]}  # type: ignore[union-attr]
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def outlet_state(rig: Rig) -> int:
    doc = pdu(rig)
    return next(o["State"] for o in doc["Outputs"] if o["ID"] == rig.power.outlet)  # type: ignore[union-attr]


def ssh_client(rig: Rig, *, timeout: float = 5.0, key: Path | None = None) -> paramiko.SSHClient:
    """A paramiko client that verifies the host key against the rig's known_hosts (RejectPolicy)."""
    assert rig.ssh is not None
    client = paramiko.SSHClient()
    client.load_host_keys(str(rig.ssh.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        rig.ssh.host,
        port=rig.ssh.port,
        username=rig.ssh.user,
        key_filename=str(key or rig.ssh.key),
        look_for_keys=False,
        allow_agent=False,
        timeout=timeout,
        banner_timeout=timeout,
        auth_timeout=timeout,
    )
    return client


def ssh_run(client: paramiko.SSHClient, command: str, timeout: float = 10.0) -> tuple[int, str]:
    _, stdout, _ = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode()
    return stdout.channel.recv_exit_status(), out


def wait_ssh(rig: Rig, timeout: float = 15.0) -> paramiko.SSHClient:
    """Connect once sshd accepts (after boot)."""
    end = time.monotonic() + timeout
    while True:
        try:
            return ssh_client(rig)
        except (paramiko.BadHostKeyException, paramiko.AuthenticationException):
            raise  # the box answered: retrying cannot help
        except (paramiko.SSHException, OSError, EOFError):
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def boot_to_shell(rig: Rig) -> RawConsole:
    """Power on over the PDU and log in on the console (a fresh console client)."""
    con = RawConsole(rig.serial.url)  # type: ignore[union-attr]
    if outlet_state(rig) == 0:
        pdu(rig, 1)
    else:
        con.wake()
    con.login(20)
    return con


def power_off(rig: Rig) -> None:
    pdu(rig, 0)


def emulate_section(rig_file: Path, name: str) -> dict[str, Any]:
    """The raw ``emulate:`` mapping of a rig (URLs only the emulator reads)."""
    import yaml

    rigs = yaml.safe_load(rig_file.read_text())["rigs"]
    return next(r for r in rigs if r["name"] == name)["emulate"]


class Lircd:
    """A lircd socket client (the lab side of an IR blaster)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("lirc://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""

    def send_once(self, key: str, remote: str = "STBLAB_RC1") -> None:
        self.sock.sendall(f"SEND_ONCE {remote} {key}\n".encode())
        while b"END\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError("lircd closed the connection")
            self.buf += data
        reply, _, self.buf = self.buf.partition(b"END\n")
        assert b"SUCCESS" in reply, reply

    def close(self) -> None:
        self.sock.close()


def snapshot(rig: Rig) -> Any:
    """One HDMI frame (BGR numpy array) from the MJPEG encoder's /snapshot.jpg, over urllib."""
    import cv2
    import numpy as np

    url = rig.video.url.rsplit("/", 1)[0] + "/snapshot.jpg"  # type: ignore[union-attr]
    with urllib.request.urlopen(url, timeout=5) as resp:
        data = resp.read()
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
