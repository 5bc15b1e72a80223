"""Real third-party programs as the far side of the drivers: ser2net over a pty running bash
(through socat), OpenSSH sshd with its own host key, lircd with its ``file`` driver.

Each peer runs from a temporary folder on loopback ports chosen free, is started with bounded
waits for readiness and stopped by its own process id. ``missing(...)`` names the programs that
are not installed, for a skip reason (``scripts/setup`` installs them from Debian packages).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.lifeline import tied  # a killed pytest takes its peers along

PROGRAMS = {
    "ser2net": "ser2net",
    "socat": "socat",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "lircd": "lirc",
    "bash": "bash",
}


def which(program: str) -> str | None:
    """Path of ``program`` (also looking in /usr/sbin, where sshd, ser2net and lircd live)."""
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin:/usr/local/sbin")


def missing(*programs: str) -> str | None:
    """A skip reason naming the programs not installed (and their Debian packages), or None."""
    gone = [p for p in programs if which(p) is None]
    if not gone:
        return None
    pkgs = sorted({PROGRAMS.get(p, p) for p in gone})
    return f"{', '.join(gone)} not installed (Debian: apt-get install {' '.join(pkgs)}; scripts/setup does it)"


def need(*programs: str) -> None:
    """Skip the calling test (naming programs and Debian packages) when a real peer is not installed."""
    import pytest

    reason = missing(*programs)
    if reason:
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``check`` until it is true; RuntimeError naming ``what`` (and the peer's log) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-800:] if log and log.exists() else ""
            raise RuntimeError(f"{what} not ready within {timeout} s\n{tail}")
        time.sleep(0.02)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@dataclass
class Proc:
    """A started program, stopped by its process group id (never by name)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)


def start(name: str, argv: list[str], folder: Path, env: dict[str, str] | None = None) -> Proc:
    log = folder / f"{name}.log"
    fh = log.open("wb")
    popen = subprocess.Popen(  # noqa: S603 - fixed argv of a test peer
        tied(argv), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
    )
    fh.close()
    return Proc(name, popen, log)


# -- ser2net over a pty running a shell ---------------------------------------------------------

LOGIN_SCRIPT = r"""
while :; do
  printf 'realbox login: '; IFS= read -r user || exit 0
  stty -echo; printf 'Password: '; IFS= read -r pw; stty echo; printf '\n'
  if [ "$user" = "$LOGIN_USER" ] && [ "$pw" = "$LOGIN_PASSWORD" ]; then
    exec bash --norc --noprofile -i
  fi
  sleep 1; printf 'Login incorrect\n'
done
"""


@dataclass
class ConsolePeers:
    """bash on a pty (socat) exported by ser2net: ``raw_url`` (socket://) and ``rfc2217_url``."""

    folder: Path
    raw_port: int
    rfc2217_port: int
    procs: list[Proc] = field(default_factory=list)

    @property
    def raw_url(self) -> str:
        return f"socket://127.0.0.1:{self.raw_port}"

    @property
    def rfc2217_url(self) -> str:
        # a pty has no modem lines: ser2net refuses SET_CONTROL, which pyserial must ignore
        return f"rfc2217://127.0.0.1:{self.rfc2217_port}?ign_set_control"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def start_console(
    folder: Path, *, login: tuple[str, str] | None = None, ser2net_options: str = "", program: str | None = None
) -> ConsolePeers:
    """socat runs bash (behind a login prompt when ``login`` is (user, password)) on a pty that
    ser2net 4 exports as raw TCP and as telnet with RFC 2217 (``program``: another program than bash)."""
    folder.mkdir(parents=True, exist_ok=True)
    tty = folder / "tty"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(folder),
        "TERM": "xterm",  # bash 5 then brackets every prompt with ESC[?2004h / ESC[?2004l, as on real boxes
        "HISTFILE": "/dev/null",
        "LANG": "C.UTF-8",
    }
    if login:
        env["LOGIN_USER"], env["LOGIN_PASSWORD"] = login
        script = folder / "login.sh"
        script.write_text(LOGIN_SCRIPT)
        shell = f"bash --norc --noprofile {script}"
    else:
        shell = program or "bash --norc --noprofile -i"
    socat = start(
        "socat",
        [
            str(which("socat")),
            f"PTY,link={tty},raw,echo=0",
            f"EXEC:{shell!s},pty,stderr,setsid,sigint,sane,ctty",
        ],
        folder,
        env=env,
    )
    peers = ConsolePeers(folder, free_port(), free_port(), [socat])
    try:
        wait_until(tty.exists, 10, "socat pty", socat.log)
        cfg = folder / "ser2net.yaml"
        opts = f"\n  options:\n{ser2net_options}" if ser2net_options else ""
        cfg.write_text(
            f"connection: &raw\n  accepter: tcp,127.0.0.1,{peers.raw_port}\n"
            f"  connector: serialdev,{tty},115200n81,local{opts}\n"
            f"connection: &rfc2217\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{peers.rfc2217_port}\n"
            f"  connector: serialdev,{tty},115200n81,local{opts}\n"
        )
        ser2net = start("ser2net", [str(which("ser2net")), "-n", "-d", "-c", str(cfg)], folder)
        peers.procs.append(ser2net)
        wait_until(lambda: port_open(peers.raw_port) and port_open(peers.rfc2217_port), 10, "ser2net", ser2net.log)
    except BaseException:
        peers.stop()
        raise
    return peers


# -- OpenSSH sshd ----------------------------------------------------------------------------


@dataclass
class SshdPeer:
    """A real sshd on a loopback port with its own host key; ``client_key`` may log in as root."""

    folder: Path
    port: int
    host_key: Path
    client_key: Path
    known_hosts: Path
    proc: Proc | None = None

    def start(self) -> None:
        cfg = self.folder / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.folder / 'sshd.pid'}\nAuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n"
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation folder
        self.proc = start("sshd", [str(which("sshd")), "-D", "-e", "-f", str(cfg)], self.folder)
        wait_until(lambda: port_open(self.port), 10, "sshd", self.proc.log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def new_host_key(self) -> None:
        """Replace the host key (a reinstalled box, or a machine in the middle)."""
        self.host_key.unlink()
        Path(f"{self.host_key}.pub").unlink()
        keygen(self.host_key)


def keygen(path: Path) -> None:
    subprocess.run(  # noqa: S603
        [str(which("ssh-keygen")), "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )


def start_sshd(folder: Path) -> SshdPeer:
    folder.mkdir(parents=True, exist_ok=True)
    peer = SshdPeer(folder, free_port(), folder / "host_ed25519", folder / "lab_ed25519", folder / "known_hosts")
    keygen(peer.host_key)
    keygen(peer.client_key)
    (folder / "authorized_keys").write_text(Path(f"{peer.client_key}.pub").read_text())
    peer.start()
    return peer


# -- lircd with its file driver -------------------------------------------------------------


@dataclass
class LircdPeer:
    """lircd (``--driver=file``): what it sends is written as ``pulse N``/``space N`` lines to ``output``."""

    folder: Path
    socket: Path
    port: int
    output: Path
    proc: Proc

    @property
    def tcp_url(self) -> str:
        return f"lirc://127.0.0.1:{self.port}"

    def timings(self) -> list[int]:
        """Every duration lircd sent so far, pulse first (leading spaces dropped)."""
        out: list[int] = []
        for line in self.output.read_text().splitlines():
            kind, _, value = line.partition(" ")
            if kind not in ("pulse", "space"):
                continue
            if not out and kind == "space":
                continue
            if out and (len(out) % 2 == 1) == (kind == "pulse"):  # two of a kind in a row
                if kind == "space":
                    out[-1] += int(value)  # one silence written in two parts
                    continue
                out.append(200_000)  # two sends back to back: the file holds no silence between them
            out.append(int(value))
        return out

    def stop(self) -> None:
        self.proc.stop()


def start_lircd(folder: Path, config: Path) -> LircdPeer:
    folder.mkdir(parents=True, exist_ok=True)
    sock, output, port = folder / "lircd.sock", folder / "sent.txt", free_port()
    output.touch()
    proc = start(
        "lircd",
        [
            str(which("lircd")),
            "--nodaemon",
            "--driver=file",
            f"--device={output}",
            f"--output={sock}",
            f"--pidfile={folder / 'lircd.pid'}",
            f"--logfile={folder / 'lircd.log'}",
            f"--listen=127.0.0.1:{port}",
            str(config),
        ],
        folder,
    )
    peer = LircdPeer(folder, sock, port, output, proc)
    try:
        wait_until(lambda: sock.exists() and port_open(port), 10, "lircd", folder / "lircd.log")
    except BaseException:
        proc.stop()
        raise
    return peer
