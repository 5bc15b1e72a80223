"""The emulate: section, first-start provisioning and the persistent device state."""

from __future__ import annotations

import os
import stat

import paramiko
import pytest
import yaml

from lab.emulator.config import load_emulated
from lab.emulator.provision import ensure_client_key, ensure_host_key, ensure_known_host, ensure_vendor_keys
from lab.emulator.state import DeviceState
from lab.emulator.testing import write_rig_file
from lab.errors import RigFileError


def _edit(path, fn):
    data = yaml.safe_load(path.read_text())
    fn(data["rigs"][0]["emulate"])
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (lambda e: e.update(colour="red"), "emulate.colour", "Extra inputs"),
        (lambda e: e.update(firmware={"version": "!!"}), "emulate.firmware.version", "not a firmware version"),
        (lambda e: e["defects"].update({"2.1.0": [{"kind": "kernel_panic"}]}), "key_sequence", "Field required"),
        (
            lambda e: e["defects"].update({"2.1.0": [{"kind": "black_after_resume", "probability": 2}]}),
            "probability",
            "",
        ),
        (lambda e: e.update(boot={"bootdelay": -1}), "emulate.boot.bootdelay", "greater than or equal"),
        (lambda e: e.update(rfc2217_url="rfc2217://nohost"), "emulate.rfc2217_url", "host and port"),
        (lambda e: e.update(hardware_history={"brownouts": "many"}), "emulate.hardware_history.brownouts", "integer"),
    ],
)
def test_bad_emulate_section_names_file_rig_key_and_problem(tmp_path, change, key, problem):
    path = write_rig_file(tmp_path)
    _edit(path, change)
    with pytest.raises(RigFileError) as err:
        load_emulated(path)
    text = str(err.value)
    assert text.startswith(f"{path}: rig 'stb-a': key '")
    assert key in text and problem in text


def test_rig_selection_errors(tmp_path):
    path = write_rig_file(tmp_path, ("stb-a", "stb-b"))
    assert [r.name for r, _ in load_emulated(path, ["stb-b"])] == ["stb-b"]
    with pytest.raises(RigFileError, match="no rig named 'stb-z'"):
        load_emulated(path, ["stb-z"])


def test_defects_are_keyed_by_version_compared_as_versions(tmp_path):
    path = write_rig_file(tmp_path, defects={"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 2}]})
    [(_, settings)] = load_emulated(path)
    assert [d.kind for d in settings.defects_for("2.1.0")] == ["decoder_freeze"]
    assert settings.defects_for("2.1.0-rc1") == [] and settings.defects_for("2.10.0") == []


def test_provisioning_makes_private_keys_and_never_overwrites_known_hosts(tmp_path):
    pub = ensure_client_key(tmp_path / "keys" / "lab")
    assert pub.startswith("ssh-ed25519 ")
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "lab").st_mode) == 0o600
    assert ensure_client_key(tmp_path / "keys" / "lab") == pub  # idempotent
    [vendor] = ensure_vendor_keys([tmp_path / "keys" / "vendor.pub"])
    assert (tmp_path / "keys" / "vendor").exists() and (tmp_path / "keys" / "vendor.pub").exists()
    first = ensure_host_key(tmp_path / "hk")
    assert ensure_host_key(tmp_path / "hk").get_base64() == first.get_base64()
    kh = tmp_path / "known_hosts"
    assert ensure_known_host(kh, "127.0.0.1", 2222, first)
    other = paramiko.Ed25519Key(filename=str(_new_key(tmp_path / "hk2")))
    assert not ensure_known_host(kh, "127.0.0.1", 2222, other), "an existing entry must not be replaced"
    assert ensure_known_host(kh, "127.0.0.1", 2223, other)
    hosts = paramiko.HostKeys(str(kh))
    assert hosts.lookup("[127.0.0.1]:2222")["ssh-ed25519"].get_base64() == first.get_base64()


def _new_key(path):
    ensure_host_key(path)
    return path


def test_device_state_persists_and_reflashes_when_the_rig_file_changes_firmware(tmp_path):
    path = write_rig_file(tmp_path, hardware_history={"brownouts": 3, "tamper": True})
    [(_, settings)] = load_emulated(path)
    state = DeviceState.load_or_create(settings.state_dir, settings)
    assert state.slots["A"].version == "2.0.0" and state.history["brownouts"] == 3 and state.history["tamper"]
    state.reboot_reason("watchdog")
    state.save()
    again = DeviceState.load_or_create(settings.state_dir, settings)
    assert again.history["reboot_reasons"] == {"watchdog": 1}
    _edit(path, lambda e: e.update(firmware={"version": "2.2.0"}))
    [(_, settings)] = load_emulated(path)
    flashed = DeviceState.load_or_create(settings.state_dir, settings)
    assert flashed.slots[flashed.active].version == "2.2.0"
    assert flashed.history["reboot_reasons"] == {"watchdog": 1}, "history survives a reflash"


def test_two_instruments_on_one_port_are_refused_before_starting(tmp_path):
    path = write_rig_file(tmp_path, ("stb-a", "stb-b"))
    data = yaml.safe_load(path.read_text())
    data["rigs"][1]["power"]["url"] = data["rigs"][0]["power"]["url"]  # a shared PDU
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RigFileError) as err:
        load_emulated(path)
    assert "rig 'stb-b': key 'power.url'" in str(err.value) and "rig 'stb-a' key 'power.url'" in str(err.value)
