"""One emulated rig in its own OS process: provision keys, bind every port, run the box.

Run as ``python -m lab.emulator.process RIGFILE RIG``. Prints ``ready RIG`` on stdout once every
instrument listens; exits 0 on SIGTERM/SIGINT or when stdin closes (the parent ``stblab emulate``
died); exits 3 with ``stblab emulate: RIG: ...`` on stderr when a port is in use or the rig cannot
be emulated.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

if __name__ == "__main__":  # the rig's own process, not a program importing this module
    # paramiko imports `invoke` (~70 ms, a tenth of this process's start-up) only to run the `Match
    # exec` lines of an ssh_config; the emulated box's sshd reads none, so its process does without it.
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]

from lab.emulator.box import Box  # noqa: E402
from lab.emulator.config import EmulateSettings, load_emulated  # noqa: E402
from lab.emulator.console import ConsoleHub  # noqa: E402
from lab.emulator.pdu import PduServer  # noqa: E402
from lab.emulator.provision import ensure_client_key, ensure_host_key, ensure_known_host, ensure_vendor_keys  # noqa: E402
from lab.emulator.sshd import SshServer  # noqa: E402
from lab.errors import RigFileError  # noqa: E402
from lab.firmware import ImageError  # noqa: E402
from lab.rig import Rig  # noqa: E402

EXIT_SETUP = 3
#: The pid file in the rig's state folder; the lab's liveness probe (lab.device_health) reads it by this name.
PID_FILE = "emulator.pid"


#: Scheduling niceness of an emulator process (and every thread it starts). A real box has its own
#: CPU: an emulated one must not miss its deadlines (decode, HDMI frames) because the host also runs
#: test suites, benchmarks or stress-ng, or verdicts would change with the host's load. Needs root
#: (CAP_SYS_NICE); without it the emulator runs at the default priority.
NICENESS = -10


def favour_the_box(niceness: int = NICENESS) -> bool:
    """Give this process ``niceness``: its threads so far and (inherited) those it starts later;
    False when not allowed. On Linux niceness is per thread, hence each thread by its id."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    try:
        for tid in tids:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except (OSError, AttributeError):  # not root / not POSIX: the host's default priority
        return False
    return True


class SetupError(Exception):
    """The rig cannot be emulated (port in use, unsupported URL)."""


def _hostport(url: str, what: str) -> tuple[str, int]:
    p = urlparse(url)
    if not p.hostname or p.port is None:
        raise SetupError(f"{what} {url!r}: needs host:port")
    return p.hostname, p.port


def _bind(host: str, port: int, what: str) -> socket.socket:
    try:
        return ConsoleHub.bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SetupError(f"cannot listen on {host}:{port} for {what}: address already in use") from exc
        raise SetupError(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}") from exc


def _port_error(exc: OSError, host: str, port: int, what: str) -> SetupError:
    if exc.errno == errno.EADDRINUSE:
        return SetupError(f"cannot listen on {host}:{port} for {what}: address already in use")
    return SetupError(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}")


class EmulatedRig:
    """The box of one rig plus all its instrument servers."""

    def __init__(self, rig: Rig, settings: EmulateSettings) -> None:
        self.rig = rig
        self.settings = settings
        self.box: Box | None = None
        self._stoppers: list[Any] = []

    def start(self) -> None:
        """Provision, bind every port (SetupError naming the first that fails), start serving."""
        rig, settings = self.rig, self.settings
        try:
            trusted = ensure_vendor_keys(list(settings.trusted_keys))
        except ImageError as exc:
            raise SetupError(f"key 'emulate.trusted_keys': {exc}") from exc
        box = Box(rig, settings, trusted_keys=trusted)
        self.box = box
        self._stoppers.append(box.close)

        # Serial console: raw TCP and/or RFC 2217.
        urls: list[tuple[str, str]] = []
        if rig.serial is not None:
            urls.append((rig.serial.url, "serial.url"))
        if settings.rfc2217_url:
            urls.append((settings.rfc2217_url, "emulate.rfc2217_url"))
        if not urls:
            raise SetupError("no serial.url: the emulator needs a socket:// or rfc2217:// console URL")
        for url, what in urls:
            scheme = urlparse(url).scheme
            if scheme not in ("socket", "rfc2217"):
                raise SetupError(f"{what} {url!r}: the emulator serves only socket:// and rfc2217:// consoles")
            host, port = _hostport(url, what)
            sock = _bind(host, port, what)
            if scheme == "socket":
                box.hub.listen_raw(sock)
            else:
                box.hub.listen_rfc2217(sock)

        # SSH.
        if rig.ssh is not None:
            client_pub = ensure_client_key(Path(rig.ssh.key))
            host_key = ensure_host_key(box.state.host_key_path)
            sock = _bind(rig.ssh.host, rig.ssh.port, "ssh.port")
            sshd = SshServer(sock, box, host_key, [client_pub])
            sshd.start()
            self._stoppers.append(sshd.close)
            ensure_known_host(Path(rig.ssh.known_hosts), rig.ssh.host, rig.ssh.port, host_key)

        # PDU.
        if rig.power is not None:
            host, port = _hostport(rig.power.url, "power.url")
            auth = None
            if rig.power.user:
                auth = (rig.power.user, rig.power.password() or "")
            try:
                pdu = PduServer(
                    host,
                    port,
                    outlet=rig.power.outlet,
                    on_change=box.set_power,
                    outlets=settings.pdu_outlets,
                    names={rig.power.outlet: rig.name},
                    auth=auth,
                    initially_on=settings.power_on_at_start,
                )
            except OSError as exc:
                raise _port_error(exc, host, port, "power.url") from exc
            pdu.start()
            self._stoppers.append(pdu.stop)
            if settings.power_on_at_start:
                box.set_power(True)

        self._start_video(box)
        self._start_ir(box)

    def _start_video(self, box: Box) -> None:
        rig, settings = self.rig, self.settings
        if rig.video is None or not rig.video.url.startswith("http"):
            return
        try:
            from lab.emulator.mjpeg import HdmiServer
        except ImportError:
            logging.getLogger("stblab.emulator").warning("HDMI output not available (lab.emulator.mjpeg missing)")
            return
        host, port = _hostport(rig.video.url, "video.url")
        width, height = settings.resolution or (rig.video.width or 1280, rig.video.height or 720)
        fps = settings.fps or rig.video.fps or 25
        try:
            server = HdmiServer(host, port, box.screen_state, width, height, fps)
            server.start()
        except OSError as exc:
            raise _port_error(exc, host, port, "video.url") from exc
        self._stoppers.append(server.stop)

    def _start_ir(self, box: Box) -> None:
        """IR receiver behind every blaster endpoint (ir.url, emulate.itach_url, emulate.lirc_url)."""
        rig, settings = self.rig, self.settings
        if rig.ir is None:
            return
        try:
            from lab.emulator.ir_itach import ItachServer
            from lab.emulator.ir_lircd import IrReceiver, LircdServer
        except ImportError:
            logging.getLogger("stblab.emulator").warning("IR receiver not available (lab.emulator.ir_* missing)")
            return
        remote = Path(rig.ir.remote)
        receiver = IrReceiver(remote, box.press_key)
        endpoints = [(rig.ir.url, "ir.url")]
        if settings.itach_url:
            endpoints.append((settings.itach_url, "emulate.itach_url"))
        if settings.lirc_url:
            endpoints.append((settings.lirc_url, "emulate.lirc_url"))
        for url, what in endpoints:
            server: Any
            if url.startswith("itach://"):
                server = ItachServer.from_url(url, remote, receiver=receiver)
            else:
                server = LircdServer.from_url(url, remote, receiver=receiver)
            try:
                server.start()
            except OSError as exc:
                if url.startswith("/"):
                    raise SetupError(f"cannot listen on {url} for {what}: {exc.strerror or exc}") from exc
                host, port = _hostport(url, what)
                raise _port_error(exc, host, port, what) from exc
            self._stoppers.append(server.stop)

    def stop(self) -> None:
        """Stop every server and the box (reverse order of start)."""
        for stop in reversed(self._stoppers):
            with contextlib.suppress(Exception):
                stop()
        self._stoppers.clear()


def main(argv: list[str] | None = None) -> int:
    """Entry point of one rig's emulator process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m lab.emulator.process RIGFILE RIG", file=sys.stderr)
        return 2
    rig_file, name = args
    level = os.environ.get("STBLAB_EMULATOR_LOG", "WARNING").upper()
    logging.basicConfig(level=level, format=f"{name}: %(threadName)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # garbage on the SSH port is not news
    try:
        [(rig, settings)] = load_emulated(rig_file, [name])
    except RigFileError as exc:
        print(f"stblab emulate: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if not favour_the_box():
        logging.getLogger("stblab.emulator").info("cannot raise the emulator's priority (not root): left as is")
    emulated = EmulatedRig(rig, settings)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if os.environ.get("STBLAB_EMULATE_CHILD"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    else:
        signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        emulated.start()
    except (SetupError, OSError, ValueError) as exc:
        emulated.stop()
        print(f"stblab emulate: {name}: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except Exception as exc:
        emulated.stop()
        logging.getLogger("stblab.emulator").exception("start failed")
        print(f"stblab emulate: {name}: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_SETUP

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            while os.read(0, 1024):
                pass
        done.set()

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    pid_file = Path(str(settings.state_dir)) / PID_FILE if settings.state_dir is not None else None
    if pid_file is not None:  # the lab's liveness probe reads it (a stopped or dead emulator is infra)
        with contextlib.suppress(OSError):
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
    print(f"ready {name}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        emulated.stop()
        if pid_file is not None:
            with contextlib.suppress(OSError):
                if pid_file.read_text(encoding="ascii").strip() == str(os.getpid()):
                    pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
