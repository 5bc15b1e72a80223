"""Power over the PDU, the serial console (raw TCP and RFC 2217), bootloader, login and shell."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request

import pytest
import serial
import yaml
from emu_helpers import FAST_BOOT, RawConsole, boot_to_shell, outlet_state, pdu


def test_pdu_document_and_power_on_boots_to_login(rig):
    doc = pdu(rig)
    assert doc["Agent"]["NumOutputs"] >= 1
    assert outlet_state(rig) == 0
    con = RawConsole(rig.serial.url)
    assert con.read(0.5) == b"", "a powered-off box must be silent"
    t0 = time.monotonic()
    answer = pdu(rig, 1)
    assert next(o for o in answer["Outputs"] if o["ID"] == 1)["State"] == 1
    con.expect(r"U-Boot 2023\.04", 5)
    con.expect(r"Hit any key to stop autoboot:\s+1", 5)
    con.expect(r"\[\s+\d+\.\d{6}\] Linux version 5\.15", 10)
    con.expect(r"stb-a login: $", 10)
    assert time.monotonic() - t0 < 10
    con.send("root\r")
    con.expect(r"root@stb-a:~# $")
    assert con.run("uname -r").strip() == "5.15.104-stb"
    up = float(con.run("cat /proc/uptime").split()[0])
    assert 0 < up < 30
    assert re.fullmatch(r"version=2\.0\.0 build=\S+ slot=A\n", con.run("fw version"))
    assert "MemTotal:" in con.run("cat /proc/meminfo")
    assert "-sh: nosuchcmd: not found" in con.run("nosuchcmd")
    assert con.run("echo $?").strip() == "127"
    assert con.run("false || echo fallback; true && echo both").split() == ["fallback", "both"]
    diag = json.loads(con.run("diag --json"))
    assert diag["serial"] == "SN-STB-A" and diag["model"] == "STB-4K-X1"
    assert diag["reboot_reasons"]["power-on"] >= 1
    # Power off silences the console at once.
    pdu(rig, 0)
    con.read(0.3)
    con.send("echo still-there\r")
    assert con.read(0.8) == b""
    con.close()


def test_interrupt_bootloader_and_its_commands(rig):
    con = RawConsole(rig.serial.url)
    pdu(rig, 1)
    con.expect(r"Hit any key to stop autoboot", 5)
    con.send(" ")
    con.expect(r"=> $", 5)
    con.send("printenv bootdelay\r")
    con.expect(r"bootdelay=1\r\n", 3)
    con.send("setenv myvar hello\r")
    con.expect(r"=> $", 3)
    con.send("printenv myvar\r")
    con.expect(r"myvar=hello\r\n", 3)
    con.send("version\r")
    con.expect(r"U-Boot 2023\.04", 3)
    con.send("frobnicate\r")
    con.expect(r"Unknown command 'frobnicate' - try 'help'", 3)
    con.send("boot\r")
    con.expect(r"Starting kernel", 5)
    con.login()
    assert "slot=A" in con.run("fw version")
    con.close()


def test_reboot_from_shell_and_kernel_messages_in_dmesg(rig):
    con = boot_to_shell(rig)
    assert "Booting Linux" in con.run("dmesg")
    con.send("reboot\r")
    con.expect(r"The system is going down NOW!", 5)
    con.expect(r"U-Boot 2023\.04", 5)
    con.login()
    diag = json.loads(con.run("diag --json"))
    assert diag["reboot_reasons"].get("reboot", 0) >= 1
    con.close()


def test_rfc2217_client_sees_the_same_console_and_can_type(lab, rig):
    import yaml

    raw = yaml.safe_load(lab.rig_file.read_text())["rigs"][0]
    port = serial.serial_for_url(raw["emulate"]["rfc2217_url"], baudrate=115200, timeout=0.2)
    try:
        con = boot_to_shell(rig)
        port.reset_input_buffer()
        port.write(b"echo via-rfc2217\r")
        got = b""
        end = time.monotonic() + 5
        while b"via-rfc2217\r\nroot@" not in got and time.monotonic() < end:
            got += port.read(4096)
        assert b"via-rfc2217\r\nroot@stb-a:~# " in got
        # The raw client sees what the RFC 2217 client typed and its output.
        con.expect(r"via-rfc2217\r\n", 3)
        port.baudrate = 9600  # RFC 2217 SET-BAUDRATE negotiation is answered
        assert port.baudrate == 9600
    finally:
        port.close()


def test_power_cycle_short_off_reboots(rig):
    con = boot_to_shell(rig)
    pdu(rig, 2, Delay=300)
    assert outlet_state(rig) == 0
    con.expect(r"U-Boot 2023\.04", 5)
    assert outlet_state(rig) == 1
    con.login()
    con.close()


def test_pdu_rejects_bad_requests_with_json_errors(rig):
    url = rig.power.url + "/netio.json"
    for body in (b"{not json", json.dumps({"Outputs": [{"ID": 99, "Action": 1}]}).encode(), b"[]"):
        req = urllib.request.Request(url, data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400
        assert "error" in json.load(err.value)
    assert outlet_state(rig) == 0, "a rejected request switches nothing"


def test_ctrl_c_interrupts_a_long_command(rig):
    con = boot_to_shell(rig)
    con.send("sleep 30\r")
    con.expect(r"sleep 30\r\n", 3)  # echoed: the shell has the command
    con.send(b"\x03")
    con.expect(r"\^C|# $", 3)
    assert con.run("echo $?").strip() == "130"
    con.close()


@pytest.fixture(scope="module")
def picky(tmp_path_factory):
    """A rig with the fussy settings a real lab has: console password, PDU basic auth, a UART
    with a 16-byte FIFO and a terminal server that cares about the line speed."""
    import os

    from lab.emulator.testing import EmulatedLab, write_rig_file

    saved = {k: os.environ.get(k) for k in ("STB_E1_CONSOLE_PW", "STB_E1_PDU_PW")}
    os.environ.update(STB_E1_CONSOLE_PW="s3cret-pw", STB_E1_PDU_PW="pdu-pw")
    rig_file = write_rig_file(
        tmp_path_factory.mktemp("picky"),
        console_password_env="STB_E1_CONSOLE_PW",
        power={"user": "admin", "password_env": "STB_E1_PDU_PW"},
        power_on_at_start=True,
        boot=FAST_BOOT,
        uart_fifo_bytes=16,
        strict_baudrate=True,
    )
    try:
        with EmulatedLab(rig_file) as running:
            yield running
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _login_with_password(con: RawConsole) -> None:
    con.wake()
    con.expect(r"login: $", 20)
    con.send("root\r")
    con.expect(r"Password: $", 5)
    con.send("s3cret-pw\r")
    con.expect(r"root@stb-a:~# $", 5)


def test_console_password_from_the_environment_and_exit_back_to_login(picky):
    rig_file = picky.rig_file
    assert "s3cret-pw" not in rig_file.read_text() and "pdu-pw" not in rig_file.read_text()
    # The PDU wants HTTP basic auth when the rig names a user.
    url = picky.rigs["stb-a"].power.url + "/netio.json"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 401
    auth = "Basic " + base64.b64encode(b"admin:pdu-pw").decode()
    req = urllib.request.Request(url, headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.load(resp)["Outputs"][0]["State"] == 1
    con = RawConsole(picky.rigs["stb-a"].serial.url)
    con.wake()
    con.expect(r"login: $", 20)
    con.send("root\r")
    con.expect(r"Password: $", 5)
    con.send("wrong\r")
    con.expect(r"Login incorrect", 5)
    con.expect(r"login: $", 5)
    con.send("root\r")
    con.expect(r"Password: $", 5)
    con.send("s3cret-pw\r")
    con.expect(r"root@stb-a:~# $", 5)
    assert b"s3cret-pw" not in con.seen, "passwords are not echoed"
    con.send("exit\r")
    con.expect(r"logout\r\n", 5)
    con.expect(r"login: $", 5)
    con.close()


def test_shell_pipes_redirection_and_kernel_messages(rig):
    con = boot_to_shell(rig)
    assert con.run("dmesg | grep -c 'Linux version'").strip() == "1"
    assert con.run("ps | grep stb_app | wc -l").strip() == "1"
    assert con.run("cat /proc/meminfo | head -n 2").count("\n") == 2
    assert con.run("echo one > /tmp/f; echo two >> /tmp/f; cat /tmp/f | tail -n 1").strip() == "two"
    assert con.run("grep nothing-like-this /tmp/f; echo $?").strip() == "1"
    # A message written to /dev/kmsg is a kernel message: timestamped on the console and in dmesg.
    out = con.run("echo stblab-marker > /dev/kmsg")
    assert re.search(r"\[\s*\d+\.\d{6}\] stblab-marker", out)
    assert "stblab-marker" in con.run("dmesg | tail -n 1")
    assert con.run("ls /tmp").split() == ["f"]
    assert con.run("rm /tmp/f; ls /tmp").strip() == ""
    con.close()


def test_uart_realism_small_fifo_drops_a_fast_paste_and_wrong_baud_is_garbage(picky):
    import socket

    rig_file = picky.rig_file
    rig = picky.rigs["stb-a"]
    con = RawConsole(rig.serial.url)
    con.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _login_with_password(con)
    con.buf = b""
    con.send("echo pasted-much-too-fast-for-the-fifo\r")  # one burst: the UART keeps 16 bytes
    assert b"pasted-much-too-fast" not in con.read(0.8)
    con.send("\x15")
    for ch in "echo typed-slowly\r":  # what a driver's char_delay is for
        con.send(ch)
        time.sleep(0.01)  # pacing, as a driver's char_delay does (not waiting for anything)
    con.expect(r"typed-slowly\r\n.*# $", 5)
    rfc = yaml.safe_load(rig_file.read_text())["rigs"][0]["emulate"]["rfc2217_url"]
    for baud, readable in ((9600, False), (115200, True), (9600, False)):
        port = serial.serial_for_url(rfc, baudrate=baud, timeout=0.2)
        try:
            con.send("\r")
            got = b""
            end = time.monotonic() + 1.2
            while time.monotonic() < end:
                got += port.read(4096)
            assert (b"root@stb-a" in got) is readable, (baud, got[:80])
        finally:
            port.close()
    con.close()
