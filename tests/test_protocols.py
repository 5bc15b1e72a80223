"""lab.protocols: the built-in drivers satisfy their protocols, URLs find their driver, a new brand slots in."""

from __future__ import annotations

import sys
import textwrap

import pytest

from lab import protocols
from lab.device import Stb, StbState
from lab.errors import RigFileError, TestError
from lab.rig import load_rigs


@pytest.fixture
def registry():
    """The registry as it was before the test (registrations are process-wide)."""
    saved = dict(protocols._registry)
    yield protocols
    protocols._registry.clear()
    protocols._registry.update(saved)


@pytest.mark.parametrize(
    ("kind", "url", "driver"),
    [
        ("console", "socket://127.0.0.1:5000", "lab.drivers.serial:SerialConsole"),
        ("console", "rfc2217://127.0.0.1:5000", "lab.drivers.serial:SerialConsole"),
        ("console", "/dev/ttyUSB0", "lab.drivers.serial:SerialConsole"),
        ("power", "http://192.0.2.5", "lab.drivers.power:PowerSwitch"),
        ("remote", "itach://192.0.2.10:4998/1:1", "lab.drivers.ir:IrRemote"),
        ("remote", "lirc://127.0.0.1:8765", "lab.drivers.ir:IrRemote"),
        ("remote", "/run/lirc/lircd", "lab.drivers.ir:IrRemote"),
        ("capture", "http://127.0.0.1:8080/stream.mjpg", "lab.drivers.capture:Capture"),
        ("capture", "0", "lab.drivers.capture:Capture"),
        ("capture", "clips/boot.mp4", "lab.drivers.capture:Capture"),
    ],
)
def test_built_in_urls_find_their_driver(kind, url, driver):
    assert protocols.driver_name(kind, url) == driver


def test_unknown_scheme_goes_to_the_built_in_driver_which_explains_the_url():
    assert protocols.driver_name("remote", "gopher://x") == "lab.drivers.ir:IrRemote"


def test_built_in_drivers_satisfy_their_protocols(tmp_path):
    from lab.drivers.capture import Capture
    from lab.drivers.power import PowerSwitch
    from lab.drivers.serial import SerialConsole

    assert isinstance(PowerSwitch("http://192.0.2.5", 1, rig_name="r"), protocols.Power)
    assert isinstance(SerialConsole("socket://127.0.0.1:9"), protocols.Console)
    cap = Capture(str(tmp_path / "none.mp4"), rig_name="r")
    assert isinstance(cap, protocols.Capture) and isinstance(cap, protocols.FrameSource)
    for name in ("IrRemote",):
        cls = protocols.driver_for("remote", "lirc://127.0.0.1:1")
        assert cls.__name__ == name
        for method in ("press", "press_many", "hold", "check", "close", "keys"):
            assert hasattr(cls, method), method


def test_bad_registrations_are_refused(registry):
    with pytest.raises(ValueError, match="unknown instrument kind"):
        registry.register("toaster", "http", "x:Y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be 'module:Class'"):
        registry.register("power", "snmp", "no_colon")


def test_a_driver_that_cannot_load_is_a_test_error_naming_it(registry):
    registry.register("power", "snmp", "lab.nonexistent_module:Pdu")
    with pytest.raises(TestError, match=r"power driver 'lab.nonexistent_module:Pdu' for 'snmp://pdu' cannot be loaded"):
        registry.driver_for("power", "snmp://pdu")


def test_a_second_pdu_brand_is_one_module_and_one_registration(registry, tmp_path, monkeypatch):
    """A new brand: its own module, registered for its scheme; Stb builds it with no change."""
    pkg = tmp_path / "site_drivers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "snmp_pdu.py").write_text(
        textwrap.dedent(
            """
            class SnmpPdu:
                built = []

                def __init__(self, url, outlet):
                    self.url, self.outlet, self.is_on = url, outlet, False

                @classmethod
                def from_rig(cls, rig):
                    pdu = cls(rig.power.url, rig.power.outlet)
                    cls.built.append(pdu)
                    return pdu

                def on(self): self.is_on = True
                def off(self): self.is_on = False
                def cycle(self, off_seconds=None): self.off(); self.on()
                def status(self): return self.is_on
                def close(self): pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rig_file = tmp_path / "rigs.yaml"
    rig_file.write_text(
        textwrap.dedent(
            """
            rigs:
              - name: box
                model: STB-4K-X1
                serial: {url: "socket://127.0.0.1:9"}
                power: {url: "snmp://192.0.2.7", outlet: 3}
            """
        )
    )
    with pytest.raises(RigFileError, match="http:// or https:// URL of the PDU"):
        load_rigs(rig_file)  # nobody serves snmp:// yet
    registry.register("power", "snmp", "site_drivers.snmp_pdu:SnmpPdu")
    rig = load_rigs(rig_file)["box"]
    stb = Stb(rig, run_dir=tmp_path)
    power = stb.power
    module = sys.modules["site_drivers.snmp_pdu"]
    assert isinstance(power, module.SnmpPdu) and module.SnmpPdu.built == [power]
    assert isinstance(power, protocols.Power)
    assert (power.url, power.outlet) == ("snmp://192.0.2.7", 3)
    power.on()
    assert stb.power.status() is True and stb.power is power  # built once, kept
    assert stb.console_if_open is None and stb.capture_if_running is None  # nothing opened by asking


def test_missing_section_is_a_test_error_naming_rig_and_section(tmp_path):
    rig_file = tmp_path / "rigs.yaml"
    rig_file.write_text('rigs:\n  - name: box\n    model: STB-4K-X1\n    serial: {url: "socket://127.0.0.1:9"}\n')
    stb = Stb(load_rigs(rig_file)["box"], run_dir=tmp_path)
    with pytest.raises(TestError, match="rig box has no 'video' section in its rig file"):
        _ = stb.capture


def test_states_are_an_enum_that_still_compares_as_text():
    assert StbState.SHELL == "shell" and f"{StbState.OFF}" == "off"
    assert {s.value for s in StbState} >= {"off", "bootloader", "shell"}
