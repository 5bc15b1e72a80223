"""ensure_emulated: an emulator that cannot start is the lab's failure, named, never a device fault."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from lab.emulated_lab import ensure_emulated
from lab.emulator.testing import write_rig_file
from lab.errors import InfraError
from lab.rig import load_rigs


def test_an_emulator_that_cannot_bind_its_port_is_an_infra_error(tmp_path: Path) -> None:
    generated = write_rig_file(tmp_path, ["emu-1"])
    data = yaml.safe_load(generated.read_text())  # without the marker: ports are not reassigned
    rig_file = tmp_path / "fixed.yaml"
    rig_file.write_text(yaml.safe_dump(data))
    rig = load_rigs(rig_file)["emu-1"]
    port = int(rig.serial.url.rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with (
            pytest.raises(InfraError, match="could not start the emulator") as info,
            ensure_emulated(rig_file, [rig], "always", echo=lambda _: None),
        ):
            pytest.fail("the body must not run without an emulator")
    assert info.value.rig == "emu-1" and info.value.instrument == "emulator"


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, always or never"), ensure_emulated(Path("rigs.yaml"), [], "sometimes"):
        pass
