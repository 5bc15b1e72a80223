"""Box profiles: the shipped ones load, extends chains merge, parsers read what boxes print, and
bad files fail naming the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.drivers.result import CommandResult
from lab.profile import (
    SHIPPED,
    Probe,
    ProfileError,
    find_profile,
    key_values,
    load_profile,
    parse,
    read_diagnostics,
    read_identity,
    rig_features,
    unmet,
)
from lab.rig import Rig, SerialConfig


@pytest.mark.parametrize("model", ["STB-4K-X1", "generic-linux", "android-tv"])
def test_shipped_profiles_load(model: str) -> None:
    p = find_profile(model)
    assert p.model == model and p.identify.firmware_version is not None and p.identify.serial_number is not None
    assert p.source == SHIPPED / f"{model}.yaml"


def test_emulated_profile_is_the_only_one_knowing_the_vendor_tools() -> None:
    assert find_profile("STB-4K-X1").identify.firmware_version.command == "fw version"
    for model in ("generic-linux", "android-tv"):
        text = (SHIPPED / f"{model}.yaml").read_text()
        assert "fw version" not in text and "diag --json" not in text


def test_extends_merges_sections_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "my-box.yaml").write_text(
        "model: my-box\nextends: generic-linux\nconsole: {prompt: 'box> $'}\n"
        "identify:\n  firmware_version: {command: cat /etc/fw, parser: key=value, key: FW}\n"
    )
    p = load_profile(tmp_path / "my-box.yaml")
    assert p.console.prompt == "box> $" and p.console.shell == "posix"  # merged, not replaced
    assert p.identify.firmware_version.command == "cat /etc/fw"
    assert p.identify.kernel.command == "uname -r"  # from generic-linux
    assert p.extends is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: x\nconsole: {prompt: '[#$'}\n", "key 'console.prompt': .*not a valid regular expression"),
        ("model: x\nidentify: {serial_number: {command: x, parser: regex}}\n", "key 'identify.serial_number'.*pattern"),
        (
            "model: x\nidentify: {model: {command: x, parser: regex, pattern: '(\\d+)'}}\n",
            "has no named group",
        ),
        ("model: x\nfirmware_update: {method: command, command: flash}\n", "must contain \\{file\\}"),
        ("model: x\nconsole: {prompt: '# $', colour: red}\n", "key 'console.colour': Extra inputs"),
        ("model: x\nextends: nope\n", "key 'extends': no profile 'nope'"),
        ("model: x\nextends: x\n", "key 'extends': profiles extend each other in a loop"),
        ("- just a list\n", "a box profile is a mapping"),
        ("model: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_profiles_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as exc:
        load_profile(path)
    assert str(path) in str(exc.value)


def test_a_model_without_profile_says_where_it_looked() -> None:
    with pytest.raises(ProfileError, match="no box profile for model 'NOPE'.*extends: generic-linux"):
        find_profile("NOPE")


def test_parsers_read_what_boxes_print() -> None:
    assert key_values("version=2.0.0 build=b2000 slot=a\n") == {"version": "2.0.0", "build": "b2000", "slot": "a"}
    assert key_values('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nMemTotal:  16 kB\n') == {
        "NAME": "Debian GNU/Linux",
        "VERSION_ID": "12",
        "MemTotal": "16 kB",
    }
    assert parse(Probe(command="x", parser="json", key="a.b.1"), 'noise {"a": {"b": [1, "two"]}} prompt') == "two"
    assert parse(Probe(command="x", parser="regex", pattern=r"ram,(?P<value>\d+),"), "x\nram,2048,1\n") == "2048"
    assert parse(Probe(command="x", first_line=True), "  first\nsecond\n") == "first"
    with pytest.raises(ValueError, match="no 'serial' among the keys"):
        parse(Probe(command="x", parser="key=value", key="serial"), "model=x\n")


def test_identity_failures_become_reasons_not_silence() -> None:
    outputs = {"fw version": ("bash: fw: command not found\n", 127), "uname -r": ("6.1.0\n", 0)}

    def run(probe: Probe) -> CommandResult:
        out, code = outputs.get(probe.command, ("", 0))
        return CommandResult(probe.command, out, code, 0.0)

    prov = read_identity(find_profile("STB-4K-X1"), run)
    assert prov.values["kernel"] == "6.1.0"
    assert prov.get("firmware_version") == "unknown (`fw version`: exited 127: bash: fw: command not found)"
    assert prov.get("serial_number").startswith("unknown (`diag --json`: no JSON document")
    assert "firmware_version unknown: `fw version`: exited 127" in prov.warnings()[0]
    doc, problems = read_diagnostics(find_profile("STB-4K-X1"), run)
    assert doc == {} and "." in problems


def test_features_come_from_instruments_and_profile() -> None:
    rig = Rig(name="r", model="generic-linux", features=["ssh", "ir"], serial=SerialConfig(url="socket://h:1"))
    prof = find_profile("generic-linux")
    assert rig_features(rig, prof) == {"console", "reboot"}  # ssh and ir declared, but not wired
    assert unmet(rig, ["ir"], prof) == ["ir: rig r has no IR blaster (no 'ir:' section)"]
    assert "standby" in rig_features(rig, find_profile("android-tv"))
