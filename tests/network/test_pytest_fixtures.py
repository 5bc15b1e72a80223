"""--net-profile and the net fixture, run through pytest itself (pytester)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from .conftest import make_config, needs_netns

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from lab.rig import Rig, NetworkConfig

@pytest.fixture(scope="session")
def rig():
    return Rig(name="fx-rig", model="STB-4K-X1", network=NetworkConfig.model_validate({network!r}))
"""

TESTS = """
import socket, time

def test_profile_is_applied(net, net_profile):
    assert net.profile.name == net_profile.name
    assert net.shaper.profile == net_profile
    # traffic to the box crosses the shaped link
    with net.link.in_box():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((net.link.box_ip, 0)); rx.settimeout(0.3)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    got = 0
    for i in range(200):
        tx.sendto(b"x", rx.getsockname())
        time.sleep(0.001)
    try:
        while True:
            rx.recv(10); got += 1
    except TimeoutError:
        pass
    print("GOT", got)
    assert got < 200 if net_profile.loss else got == 200

def test_that_fails(net):
    assert False, "box showed black"
"""


@needs_netns
def test_net_profile_option_applies_records_and_keeps_pcap_on_failure(pytester: pytest.Pytester) -> None:
    cfg = make_config("fx")
    pytester.makeconftest(CONFTEST.format(network=cfg.model_dump()))
    pytester.makepyfile(test_fx=TESTS)
    (pytester.path / "lossy.yaml").write_text("loss: 30%\nseed: 2\n")
    result = pytester.runpytest_subprocess(
        "-p", "lab.network.pytest_fixtures", "--net-profile", str(pytester.path / "lossy.yaml"),
        "--junitxml", "junit.xml", "-s",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {
        tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")} for tc in root.iter("testcase")
    }
    ok, bad = props["test_profile_is_applied"], props["test_that_fails"]
    rec = json.loads(ok["net_profile"])
    assert rec["profile"]["name"] == "lossy" and rec["profile"]["loss"] == 30.0
    assert rec["backend"] in ("userspace", "netem")
    assert "net_pcap" not in ok  # passed: no pcap kept
    pcap = bad["net_pcap"]
    assert pcap.endswith(".pcap") and (pytester.path / pcap).exists() or __import__("os").path.exists(pcap)


def test_unknown_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(net_profile): pass\n")
    result = pytester.runpytest_subprocess("-p", "lab.network.pytest_fixtures", "--net-profile", "no-such-profile")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--net-profile: unknown network profile 'no-such-profile'*"])


def test_indirect_parameter_wins_over_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_p="""
import pytest
@pytest.mark.parametrize("net_profile", ["clean", "lossy-2pct"], indirect=True)
def test_p(net_profile):
    print("PROFILE", net_profile.name, net_profile.loss)
"""
    )
    result = pytester.runpytest_subprocess("-p", "lab.network.pytest_fixtures", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PROFILE clean 0.0*", "*PROFILE lossy-2pct 2.0*"])
