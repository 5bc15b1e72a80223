"""Bad input and faults: garbage on every port, bad rig files, ports in use, a dying child."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from emu_helpers import FAST_BOOT, RawConsole, boot_to_shell, emulate_section, pdu, ssh_run, wait_ssh
from support import eventually

from lab.emulator.testing import EmulatedLab, EmulatorFailed, write_rig_file

EMULATE = [sys.executable, "-m", "lab.cli", "emulate"]


def _blast(host: str, port: int, payload: bytes) -> None:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(payload)
        s.settimeout(0.3)
        try:
            while s.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass


def test_garbage_on_console_ir_and_pdu_ports_leaves_the_box_running(lab, rig):
    con = boot_to_shell(rig)
    rng = __import__("random").Random(7)
    junk = bytes(rng.randrange(256) for _ in range(20000))
    # Console: line noise (including telnet IAC sequences on the RFC 2217 port) is ignored.
    raw_host, raw_port = rig.serial.url.removeprefix("socket://").rsplit(":", 1)
    _blast(raw_host, int(raw_port), junk.replace(b"\x03", b"").replace(b"\r", b"").replace(b"\n", b""))
    rfc = emulate_section(lab.rig_file, "stb-a")["rfc2217_url"].removeprefix("rfc2217://")
    _blast(rfc.rsplit(":", 1)[0], int(rfc.rsplit(":", 1)[1]), b"\xff\xfa\x2c\x01" + junk + b"\xff\xff\xff")
    # IR blasters: garbage commands and garbled timings.
    itach = rig.ir.url.removeprefix("itach://").split("/")[0]
    _blast(itach.split(":")[0], int(itach.split(":")[1]), junk + b"\rsendir,1:1,1,38000,1,1,5,5,5\r")
    lirc = emulate_section(lab.rig_file, "stb-a")["lirc_url"].removeprefix("lirc://")
    _blast(lirc.split(":")[0], int(lirc.split(":")[1]), junk + b"\nSEND_ONCE NOPE KEY_1\n")
    # PDU: not HTTP at all.
    pdu_port = int(rig.power.url.rsplit(":", 1)[1])
    _blast("127.0.0.1", pdu_port, junk)
    # Everything still answers.
    con.send("\x15\r")  # clear whatever half line the noise left
    assert con.run("echo survived").strip() == "survived"
    assert pdu(rig)["Outputs"][0]["State"] == 1
    client = wait_ssh(rig)
    assert ssh_run(client, "keys")[0] == 0
    client.close()
    with urllib.request.urlopen(rig.video.url.rsplit("/", 1)[0] + "/snapshot.jpg", timeout=5) as resp:
        assert resp.read(2) == b"\xff\xd8"
    con.close()


def _emulate_in_process(capsys, *args: str) -> tuple[int, str]:
    """``stblab emulate ARGS`` through the real entry point, for input it must refuse up front."""
    from lab.cli import main

    try:
        main(["emulate", *args])
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    raise AssertionError("stblab emulate accepted a bad rig file")


def test_bad_rig_file_names_file_rig_and_key(tmp_path, capsys):
    path = write_rig_file(tmp_path, defects={"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 0}]})
    result = subprocess.run([*EMULATE, str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert str(path) in result.stderr and "rig 'stb-a'" in result.stderr
    assert "emulate.defects.2.1.0.0" in result.stderr and "after_zaps" in result.stderr

    path.write_text(path.read_text().replace("kind: decoder_freeze", "kind: gremlins"))
    code, err = _emulate_in_process(capsys, str(path))
    assert code == 2 and "gremlins" in err

    path.write_text("rigs:\n  - name: x\n    model: M\n    serial: {url: socket://127.0.0.1:1}\n")
    code, err = _emulate_in_process(capsys, str(path))
    assert code == 2 and "no rig has an 'emulate:' section" in err

    code, err = _emulate_in_process(capsys, str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read rig file" in err


def test_unreadable_trusted_key_is_a_clear_error(tmp_path):
    path = write_rig_file(tmp_path, boot=FAST_BOOT)
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "vendor_ed25519.pub").write_text("ssh-rsa not-a-key\n")
    result = subprocess.run([*EMULATE, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "stb-a" in result.stderr and "emulate.trusted_keys" in result.stderr
    assert "vendor_ed25519.pub" in result.stderr


def test_port_in_use_exits_non_zero_with_the_port(tmp_path):
    path = write_rig_file(tmp_path, boot=FAST_BOOT)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    url = next(line for line in path.read_text().splitlines() if "socket://" in line).split("socket://")[1]
    host, port = url.strip().rsplit(":", 1)
    squatter.bind((host, int(port)))
    squatter.listen(1)
    try:
        result = subprocess.run([*EMULATE, str(path)], capture_output=True, text=True, timeout=60)
    finally:
        squatter.close()
    assert result.returncode != 0
    assert f"{host}:{port}" in result.stderr and "address already in use" in result.stderr
    assert "serial.url" in result.stderr


def test_launcher_reports_a_port_in_use_for_hand_written_rig_files(tmp_path):
    path = write_rig_file(tmp_path, boot=FAST_BOOT)
    path.write_text(path.read_text().split("\n", 1)[1])  # drop the "generated" marker
    squatter = socket.socket()
    port = int(next(line for line in path.read_text().splitlines() if "socket://" in line).rsplit(":", 1)[1])
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        with pytest.raises(EmulatorFailed, match="address already in use"):
            EmulatedLab(path, ready_timeout=30).start()
    finally:
        squatter.close()


def test_when_every_rig_process_has_died_the_emulator_exits_with_the_reason(tmp_path):
    """One rig dying leaves the others running (tests/jobs/test_emulate_supervision.py); when the last
    one dies there is nothing left to serve: ``stblab emulate`` exits non-zero and names the rig."""
    path = write_rig_file(tmp_path, ("stb-a",), boot=FAST_BOOT)
    lab = EmulatedLab(path).start()
    try:
        children = subprocess.run(["pgrep", "-f", f"lab.emulator.process {path} stb-a"], capture_output=True, text=True)
        pid = int(children.stdout.split()[0])
        os.kill(pid, signal.SIGKILL)
        assert lab.proc is not None
        status = lab.proc.wait(timeout=20)
        assert status != 0
        eventually(lambda: "stb-a" in lab.reason(), timeout=5, interval=0.1, what="stb-a named in the stderr")
        assert "rig stb-a" in lab.reason() and "exited" in lab.reason()
        assert any(line.startswith("died stb-a") for line in lab.output), lab.output
        with pytest.raises(OSError):  # nothing serves its console any more
            RawConsole(lab.rigs["stb-a"].serial.url)
    finally:
        lab.stop()


def test_sigterm_stops_cleanly_and_kill_releases_every_port(tmp_path):
    path = write_rig_file(tmp_path, boot=FAST_BOOT)
    lab = EmulatedLab(path).start()
    lab.kill()
    ports = path.read_text()
    lab = EmulatedLab(path).start()
    assert path.read_text() == ports, "same ports again: SIGKILL left nothing listening"
    assert lab.output == ["ready stb-a"]
    assert lab.stop() == 0, lab.reason()
    assert not lab.running
