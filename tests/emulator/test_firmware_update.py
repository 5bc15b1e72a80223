"""fwupdate on the emulated box: signed images install to the inactive slot; bad ones are refused;
a slot that fails to boot three times falls back to the previous one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from emu_helpers import FAST_BOOT, RawConsole, pdu, ssh_run, wait_ssh
from support import eventually

from lab.emulator.testing import EmulatedLab, write_rig_file
from lab.firmware import build_image, generate_key, load_private_key


def _upload(rig, data: bytes, name: str):
    client = wait_ssh(rig)
    sftp = client.open_sftp()
    with sftp.open(f"/tmp/{name}", "wb") as fh:
        fh.write(data)
    sftp.close()
    return client


HISTORY = {
    "brownouts": 4,
    "overvoltage": 2,
    "overtemperature": 1,
    "hdmi_hotplug": 37,
    "edid_failures": 3,
    "verified_boot": "failed",
    "tamper": True,
    "reboot_reasons": {"brownout": 7},
}


@pytest.fixture(scope="module")
def fwlab(tmp_path_factory):
    d = tmp_path_factory.mktemp("fw")
    rig_file = write_rig_file(
        d,
        ("stb-f",),
        boot={**FAST_BOOT, "watchdog_seconds": 0.3},
        power_on_at_start=True,
        defects={"9.9.9": [{"kind": "boot_fail"}]},
        hardware_history=HISTORY,
    )
    with EmulatedLab(rig_file) as lab:
        yield lab


def test_signed_image_installs_to_inactive_slot_and_boots(fwlab):
    rig = fwlab.rigs["stb-f"]
    vendor = load_private_key(rig.ssh.key.parent / "vendor_ed25519")
    image = build_image(model="STB-4K-X1", version="2.1.0", key=vendor, build_id="b2100")
    client = _upload(rig, image, "fw-2.1.0.img")
    con = RawConsole(rig.serial.url)
    status, out = ssh_run(client, "fwupdate /tmp/fw-2.1.0.img")
    assert status == 0, out
    assert "slot B" in out
    client.close()
    con.expect(r"U-Boot 2023\.04", 10)
    con.login()
    assert con.run("fw version").strip() == "version=2.1.0 build=b2100 slot=B"
    diag = json.loads(con.run("diag --json"))
    assert diag["slots"]["A"]["version"] == "2.0.0" and diag["slots"]["B"]["version"] == "2.1.0"
    assert diag["active_slot"] == "B" and diag["pending_slot"] is None
    assert diag["reboot_reasons"]["fwupdate"] >= 1
    con.close()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("unsigned", "unsigned"), ("wrong-model", "wrong-model"), ("untrusted", "untrusted-key"), ("corrupt", "payload")],
)
def test_bad_images_are_refused_and_nothing_changes(fwlab, tmp_path, kind, reason):
    rig = fwlab.rigs["stb-f"]
    vendor = load_private_key(rig.ssh.key.parent / "vendor_ed25519")
    if kind == "unsigned":
        data = build_image(model="STB-4K-X1", version="3.0.0", key=None)
    elif kind == "wrong-model":
        data = build_image(model="STB-HD-Z9", version="3.0.0", key=vendor)
    elif kind == "untrusted":
        data = build_image(model="STB-4K-X1", version="3.0.0", key=generate_key(tmp_path / "rogue"))
    else:
        good = bytearray(build_image(model="STB-4K-X1", version="3.0.0", key=vendor))
        good[400] ^= 0xFF  # flip a payload byte
        data = bytes(good)
    client = _upload(rig, data, "bad.img")
    before = ssh_run(client, "fw version")[1]
    status, out = ssh_run(client, "fwupdate /tmp/bad.img")
    assert status == 1
    assert reason in out
    assert ssh_run(client, "fw version")[1] == before
    assert json.loads(ssh_run(client, "diag --json")[1])["pending_slot"] is None
    client.close()


def test_image_that_never_boots_falls_back_after_three_attempts(fwlab):
    rig = fwlab.rigs["stb-f"]
    vendor = load_private_key(rig.ssh.key.parent / "vendor_ed25519")
    client = _upload(rig, build_image(model="STB-4K-X1", version="9.9.9", key=vendor), "broken.img")
    before = ssh_run(client, "fw version")[1].strip()
    running_slot = before.rsplit("=", 1)[1]
    con = RawConsole(rig.serial.url)
    assert ssh_run(client, "fwupdate /tmp/broken.img")[0] == 0
    client.close()
    for attempt in (1, 2, 3):
        con.expect(rf"bootcount={attempt} bootlimit=3", 15)
        con.expect(r"Kernel panic - not syncing: Attempted to kill init!", 10)
    con.expect(r"Bootlimit \(3\) exceeded", 15)
    con.login()
    assert con.run("fw version").strip() == before
    diag = json.loads(con.run("diag --json"))
    assert diag["active_slot"] == running_slot and diag["pending_slot"] is None
    assert diag["reboot_reasons"].get("rollback", 0) >= 1
    con.close()
    pdu(rig, 2, Delay=200)  # the fallback survives a power cycle
    con = RawConsole(rig.serial.url)
    con.login()
    assert con.run("fw version").strip() == before
    con.close()


def test_firmware_cli_builds_an_image_the_box_accepts(fwlab, tmp_path, capsys):
    from lab.cli import main

    def stblab(*args: str) -> int:
        try:
            main(["firmware", *args])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    key = tmp_path / "vendor"
    assert stblab("keygen", str(key)) == 0
    assert stblab("keygen", str(key)) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    img = tmp_path / "fw.img"
    assert stblab("build", "--model", "STB-4K-X1", "--version", "2.2.0", "--key", str(key), "-o", str(img)) == 0
    capsys.readouterr()
    # The command itself, as a user runs it:
    out = subprocess.run([sys.executable, "-m", "lab.cli", "firmware", "info", str(img), "--json"], capture_output=True)
    info = json.loads(out.stdout)
    assert info["version"] == "2.2.0" and info["signed"] and info["payload_intact"]
    assert stblab("build", "--model", "M", "--version", "1", "-o", str(img)) == 2
    assert stblab("info", str(key)) == 1
    assert "bad magic" in capsys.readouterr().err
    # A box that does not trust this key refuses the image the CLI signed.
    rig = fwlab.rigs["stb-f"]
    client = _upload(rig, img.read_bytes(), "cli.img")
    status, out_text = ssh_run(client, "fwupdate /tmp/cli.img")
    client.close()
    assert status == 1 and "untrusted-key" in out_text


def test_factory_reset_forgets_updates_but_keeps_the_device_identity(tmp_path):
    rig_file = write_rig_file(tmp_path, ("stb-r",), boot=FAST_BOOT, power_on_at_start=True)
    with EmulatedLab(rig_file) as lab:
        rig = lab.rigs["stb-r"]
        vendor = load_private_key(rig.ssh.key.parent / "vendor_ed25519")
        client = _upload(rig, build_image(model="STB-4K-X1", version="2.5.0", key=vendor), "u.img")
        assert ssh_run(client, "fwupdate /tmp/u.img")[0] == 0
        transport = client.get_transport()
        eventually(lambda: not transport.is_active(), timeout=15, what="the update's reboot dropping SSH")
        client.close()
        client = wait_ssh(rig)
        assert ssh_run(client, "fw version")[1].startswith("version=2.5.0")
        host_key = client.get_transport().get_remote_server_key().get_base64()
        client.close()
    with EmulatedLab(rig_file, factory_reset=True) as lab:
        assert "factory reset stb-r" in lab.output
        client = wait_ssh(rig)  # known_hosts still matches: the identity survived
        assert client.get_transport().get_remote_server_key().get_base64() == host_key
        assert ssh_run(client, "fw version")[1].startswith("version=2.0.0 ")
        assert ssh_run(client, "ls /tmp")[1] == ""
        client.close()


def test_hardware_history_is_the_evidence_diagnostics_read(fwlab):
    rig = fwlab.rigs["stb-f"]
    con = RawConsole(rig.serial.url)
    pdu(rig, 2, Delay=200)  # a fresh boot, to read the bootloader's view too
    con.expect(r"Secure boot: FAILED: unofficial image", 10)
    con.login()
    diag = json.loads(con.run("diag --json"))
    for key in ("brownouts", "overvoltage", "overtemperature", "hdmi_hotplug", "edid_failures", "verified_boot"):
        assert diag[key] == HISTORY[key], key
    assert diag["tamper"] is True
    assert diag["reboot_reasons"]["brownout"] == 7 and diag["reboot_reasons"]["power-on"] >= 1
    assert diag["serial"] == "SN-STB-F" and diag["hardware_revision"] == "B2"
    con.close()
