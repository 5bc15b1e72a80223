"""The gate refuses a bad image before it touches any rig, with a clear reason and exit code 5."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.emulator.testing import write_rig_file
from lab.firmware import build_image, generate_key
from lab.firmware.gate import EXIT_REFUSED

MODEL = "STB-4K-X1"


@pytest.fixture()
def lab(tmp_path: Path) -> dict[str, Path]:
    """A rig file whose rigs trust one vendor key; no emulator runs, so touching a rig would fail."""
    vendor = tmp_path / "keys" / "vendor_ed25519"
    generate_key(vendor)
    rig_file = write_rig_file(tmp_path, ["g1"])
    data = yaml.safe_load(rig_file.read_text())
    data["rigs"][0]["firmware"] = {"trusted_keys": [str(vendor) + ".pub"]}
    rig_file.write_text(yaml.safe_dump(data))
    return {"rigs": rig_file, "vendor": vendor, "dir": tmp_path}


def gate(lab: dict[str, Path], image: bytes) -> subprocess.CompletedProcess[str]:
    path = lab["dir"] / "fw.img"
    path.write_bytes(image)
    cmd = [sys.executable, "-m", "lab.cli", "firmware", "gate", str(path), "--rigs", str(lab["rigs"])]
    cmd += ["--run-dir", str(lab["dir"] / "run"), "--emulate", "never"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def signed(lab: dict[str, Path], **kw: object) -> bytes:
    from lab.firmware import load_private_key

    args = {"model": MODEL, "version": "2.5.0", "key": load_private_key(lab["vendor"])} | kw
    return build_image(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("unsigned", lambda lab: signed(lab, key=None), "unsigned"),
        ("other key", lambda lab: signed(lab, key=generate_key(lab["dir"] / "rogue")), "untrusted-key"),
        ("truncated", lambda lab: signed(lab)[:-5000], "truncated"),
        ("wrong model", lambda lab: signed(lab, model="STB-HD-200"), "wrong-model"),
        ("tampered payload", lambda lab: _flip_payload(signed(lab)), "payload-hash"),
        ("not an image", lambda lab: b"PK\x03\x04 a zip file", "bad-magic"),
    ],
)
def test_bad_image_is_refused_before_any_rig(lab: dict[str, Path], name: str, make, reason: str) -> None:  # noqa: ANN001
    res = gate(lab, make(lab))
    assert res.returncode == EXIT_REFUSED, res.stdout + res.stderr
    assert f"image refused ({reason})" in res.stderr
    assert not (lab["dir"] / "run").exists(), "a refused image must not start a run"


def test_resigned_with_another_key_is_refused_even_if_manifest_names_the_trusted_key(lab: dict[str, Path]) -> None:
    good = signed(lab)
    rogue = generate_key(lab["dir"] / "rogue2")
    forged = good[:-64] + rogue.sign(good[: -64 - 6])  # keeps key_id of the vendor key, other signature
    res = gate(lab, forged)
    assert res.returncode == EXIT_REFUSED
    assert "image refused (bad-signature)" in res.stderr


def _flip_payload(data: bytes) -> bytes:
    i = len(data) - 64 - 6 - 100  # a byte inside the payload
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def test_a_broken_trusted_key_in_the_rig_file_is_bad_input_not_a_refused_image(lab: dict[str, Path]) -> None:
    image = signed(lab)
    Path(str(lab["vendor"]) + ".pub").write_text("ssh-ed25519 not-base64\n")
    res = gate(lab, image)
    assert res.returncode == 4, res.stdout + res.stderr  # the build is not to blame
    assert "trusted key" in res.stderr and "vendor_ed25519.pub" in res.stderr
    assert "image refused" not in res.stderr


def test_fault_first_seen_in_this_gate_is_new_on_every_rig() -> None:
    from lab.firmware.gate import split_new_known

    new = [{"rig": "a", "fault_id": 7}]
    known = [{"rig": "b", "fault_id": 7}, {"rig": "b", "fault_id": 3}]
    n, k = split_new_known(new, known)
    assert [(e["rig"], e["fault_id"]) for e in n] == [("a", 7), ("b", 7)]
    assert [(e["rig"], e["fault_id"]) for e in k] == [("b", 3)]
