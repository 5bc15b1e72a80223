"""The robustness scenarios under network impairment (standby/resume loops, power cycles, zapping),
run as a user runs them against an emulated IPTV box whose live TV crosses its own impaired link."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from explore.runs import iptv_rig, run_together, scenario_cmd
from lab.emulator.testing import EmulatedLab
from lab.network.netns import NO_NETNS_REASON, netns_available

pytestmark = [
    pytest.mark.explore,
    pytest.mark.slow,
    pytest.mark.skipif(not netns_available(), reason=NO_NETNS_REASON),
]


BLACK_RESUME = {"2.0.0": [{"kind": "black_after_resume", "probability": 1.0}]}


def test_standby_power_and_zapping_pass_under_impairment_on_good_firmware_and_fail_on_bad(tmp_path: Path) -> None:
    rig_file, _ = iptv_rig(tmp_path / "lab", ("tv", "bad"), {"bad": {"defects": BLACK_RESUME}})
    junit = tmp_path / "junit.xml"
    scenario = "scenarios/robustness/test_under_impairment.py"
    with EmulatedLab(rig_file):
        runs = run_together(
            {
                "tv": scenario_cmd(rig_file, "tv", tmp_path / "run", scenario, f"--junitxml={junit}"),
                "bad": scenario_cmd(rig_file, "bad", tmp_path / "bad", scenario, "-k", "standby and lossy"),
            },
            timeout=600,
        )
    # a box that stays black after a resume fails the loop under impairment too
    bad = runs["bad"]
    assert bad.returncode == 1 and "1 failed" in bad.stdout, bad.stdout[-3000:]
    run = runs["tv"]
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    suite = ElementTree.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    # nothing skipped: the box's live TV was on the link (its IGMP join seen), each profile applied
    assert counts == {"tests": 4, "failures": 0, "errors": 0, "skipped": 0}, tail
    assert run.returncode == 0, tail
    props = [(p.get("name"), p.get("value")) for p in suite.iter("property")]
    profiles = {v for n, v in props if n == "net_profile"}
    assert any('"lossy-2pct"' in v for v in profiles) and any('"congested-wifi"' in v for v in profiles), profiles
    shaped = [v for n, v in props if n == "shaper_downstream"]
    assert len(shaped) == 4 and all('"received"' in v for v in shaped), shaped
