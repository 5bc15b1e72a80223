"""`stblab net`: profiles, profile validation and TS checks from the shell."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from lab.emulator.headend import ChannelMap, channel_file

from .conftest import TEST_SETTINGS


def _net(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", "net", *args], capture_output=True, text=True, timeout=60)


def test_profiles_listed_and_bad_profile_explained(tmp_path: Path) -> None:
    out = _net("profiles", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["lossy-2pct"]["loss"] == 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: 150%\n")
    out = _net("profile", str(bad))
    assert out.returncode == 2
    assert f"{bad}: key 'loss': Input should be less than or equal to 100" in out.stderr


def test_check_ts_passes_a_clean_file_and_fails_a_damaged_one(
    tmp_path: Path, channel_cache: Path, cmap: ChannelMap
) -> None:
    clean = channel_file(cmap.channels[1], channel_cache, TEST_SETTINGS)
    out = _net("check-ts", str(clean), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True
    data = clean.read_bytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data[: 188 * 300] + data[188 * 310 :])  # 10 packets lost
    out = _net("check-ts", str(damaged))
    assert out.returncode == 1
    assert "cc_error" in out.stdout


def test_headend_plays_the_channels_on_a_loopback_rig_and_reports_what_it_sent(tmp_path: Path) -> None:
    from lab.emulator.testing import write_rig_file

    rigs = write_rig_file(tmp_path)  # no namespace: the headend sends on 127.0.0.1
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind(("239.1.1.1", 5000))
    rx.setsockopt(
        socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("239.1.1.1") + socket.inet_aton("127.0.0.1")
    )
    rx.settimeout(60)  # bounded: a cold channel cache is encoded first
    cmd = [sys.executable, "-m", "lab.cli", "net", "headend", str(rigs), "--rig", "stb-a", "--channels", "1",
           "--seconds", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        datagram = rx.recv(2048)
        out, err = proc.communicate(timeout=60)
    finally:
        rx.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert datagram[0] == 0x47 and len(datagram) % 188 == 0, "MPEG-TS packets on 239.1.1.1:5000"
    assert proc.returncode == 0, out + err
    assert out.splitlines()[0] == "headend on 127.0.0.1: 1 channels; Ctrl-C to stop"
    assert json.loads(out.splitlines()[-1])["datagrams"]["1"] > 0


def test_headend_names_the_rigs_when_the_rig_is_not_in_the_file(tmp_path: Path) -> None:
    from lab.emulator.testing import write_rig_file

    out = _net("headend", str(write_rig_file(tmp_path)), "--rig", "nope", "--seconds", "1")
    assert out.returncode == 2
    assert "no rig 'nope'" in out.stderr and "(have: stb-a)" in out.stderr
