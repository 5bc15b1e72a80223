"""Record the rig's link to a pcap file during a test (tcpdump on the lab-side interface).

The lab-side veth sees every frame between the lab and the box (after the shaper on the way up,
before it on the way down: the capture shows what the lab sent and what the box answered).
Falls back to scapy's AsyncSniffer when tcpdump is missing.

Example::

    with PcapRecorder(link, run_dir / "stb-a.pcap") as rec:
        ...                           # the test
    rec.path, rec.packets             # attach to the report on failure
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from lab.errors import InfraError
from lab.lifeline import tied
from lab.network.netns import RigLink
from lab.steps import step

log = logging.getLogger("stblab.network.pcap")


class PcapRecorder:
    """tcpdump (or scapy) writing the rig's link to ``path``; ``snaplen`` bytes per frame (0 = all)."""

    def __init__(
        self, link: RigLink, path: str | Path, *, bpf: str = "", snaplen: int = 0, interface: str | None = None
    ) -> None:
        self.link = link
        self.rig_name = link.rig_name
        self.path = Path(path)
        self.bpf = bpf
        self.snaplen = snaplen
        self.interface = interface or (link.lab_if if link.namespace else "lo")
        self.packets: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sniffer: object | None = None

    @step("network")
    def start(self, timeout: float = 5.0) -> PcapRecorder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tcpdump = shutil.which("tcpdump")
        if tcpdump:
            argv = [tcpdump, "-i", str(self.interface), "-w", str(self.path), "-U", "-n", "-s", str(self.snaplen)]
            if self.bpf:
                argv.append(self.bpf)
            self._proc = subprocess.Popen(tied(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            assert self._proc.stderr is not None
            # tcpdump says "listening on ..." once the capture is armed
            end = time.monotonic() + timeout
            line = b""
            while time.monotonic() < end:
                line = self._proc.stderr.readline()
                if b"listening on" in line or not line:
                    break
            if self._proc.poll() is not None:
                err = (line + self._proc.stderr.read()).decode(errors="replace").strip()
                raise InfraError(f"tcpdump on {self.interface} failed: {err}", rig=self.rig_name, instrument="network")
        else:
            from scapy.sendrecv import AsyncSniffer

            sniffer = AsyncSniffer(iface=str(self.interface), filter=self.bpf or None, store=True)
            sniffer.start()
            self._sniffer = sniffer
        return self

    @step("network")
    def stop(self) -> Path:
        """Stop recording; returns the pcap path (``packets`` holds the count)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)
            try:
                _, err = self._proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                _, err = self._proc.communicate()
            m = re.search(rb"(\d+) packets? captured", err or b"")
            self.packets = int(m.group(1)) if m else None
            self._proc = None
        elif self._sniffer is not None:
            from scapy.utils import wrpcap

            pkts = self._sniffer.stop()  # type: ignore[attr-defined]
            wrpcap(str(self.path), pkts)
            self.packets = len(pkts)
            self._sniffer = None
        return self.path

    def __enter__(self) -> PcapRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()


__all__ = ["PcapRecorder"]
