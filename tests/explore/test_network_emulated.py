"""The rig's network in exploration, on an emulated IPTV box whose live TV crosses its own link (a
namespace, root needed): the explorer switches the link's impairment profile as one of its actions
(on the real shaper) and finds nothing on good firmware."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from explore.runs import REPO, iptv_rig, run_together, scenario_cmd
from lab.emulator.testing import EmulatedLab
from lab.explore.events import Event
from lab.explore.reproducer import write_scenario
from lab.network.netns import NO_NETNS_REASON, namespaces, netns_available

pytestmark = [
    pytest.mark.explore,
    pytest.mark.slow,
    pytest.mark.skipif(not netns_available(), reason=NO_NETNS_REASON),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    path, spaces = iptv_rig(tmp_path_factory.mktemp("netexplore") / "lab")
    with EmulatedLab(path):
        yield path, spaces["tv"]


def test_the_walk_switches_the_rig_link_profile_on_the_real_shaper(lab: tuple[Path, str], tmp_path: Path) -> None:
    rig_file, namespace = lab
    cmd = [sys.executable, "-m", "lab.cli", "explore", "--rigs", str(rig_file), "--rig", "tv", "--seed", "3"]
    cmd += ["--budget", "30s", "--keys", "KEY_CHANNELUP,KEY_CHANNELDOWN,KEY_INFO,KEY_OK", "--episode", "12"]
    cmd += ["--net-profile", "lossy-2pct", "--net-profile", "congested-wifi", "--net-rate", "0.4"]
    cmd += ["--power-events", "0", "--out", str(tmp_path / "found"), "--run-dir", str(tmp_path / "run")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert ", 0 faults" in run.stdout
    switched = [line for line in run.stderr.splitlines() if line.startswith("network profile ")]
    # applied on the rig's real link: the userspace bridge (no netem on this kernel) or netem
    assert any("lossy-2pct on tv's link (userspace)" in s or "(netem)" in s for s in switched), run.stderr[-3000:]
    assert any("congested-wifi" in s for s in switched), switched
    # the explorer built the link for itself and removed it again
    assert namespace not in namespaces()


def test_a_written_reproducer_switches_the_link_and_replays_on_the_rig(lab: tuple[Path, str], tmp_path: Path) -> None:
    """The reproducer's ``box.network(...)`` line runs on the rig's shaper (the ``net`` fixture), from a
    clean link; on good firmware the replay passes and the profile it switched to is recorded."""
    rig_file, _ = lab
    events = [
        Event("key", "KEY_CHANNELUP", 0.0),
        Event("net", "lossy-2pct", 0.3),
        Event("key", "KEY_CHANNELUP", 0.12),
        Event("key", "KEY_INFO", 0.5),
    ]
    path = write_scenario(tmp_path / "found", title="video-frozen", seed=9, events=events, meta={"rig": "tv"})
    assert "    box.network('lossy-2pct')" in path.read_text().splitlines()
    junit = tmp_path / "junit.xml"
    cmd = scenario_cmd(rig_file, "tv", tmp_path / "run", "--rootdir", str(tmp_path), str(path), f"--junitxml={junit}")
    run = run_together({"tv": cmd}, cwd=tmp_path, timeout=300)["tv"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    props = {p.get("name"): p.get("value") for p in ElementTree.parse(junit).iter("property")}
    # the net fixture's record: the last profile applied was the reproducer's, on the real bridge
    assert '"name": "lossy-2pct"' in props["net_profile"] and '"userspace"' in props["net_profile"], props
