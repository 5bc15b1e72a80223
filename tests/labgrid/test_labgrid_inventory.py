"""Inventory in labgrid: exporter configs from rig files, places synced with tags, a plan's arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from labgrid_grid import Grid

from lab.errors import RigFileError
from lab.labgrid.exporter_config import exporter_config
from lab.labgrid.models import load_facts
from lab.labgrid.plan import GatePlan, HostJob, _spread, collect
from lab.labgrid.resources import groups_for_rig, sections_from_resources
from lab.rig import Rig

STBLAB = [sys.executable, "-m", "lab.cli"]

pytestmark = pytest.mark.labgrid


def _rig(**kw: object) -> Rig:
    base: dict[str, object] = {"name": "stb-x", "model": "M1"}
    return Rig.model_validate({**base, **kw})


def test_resources_map_back_to_the_same_addresses() -> None:
    rig = _rig(
        serial={"url": "rfc2217://10.0.0.5:4001", "baudrate": 57600},
        power={"url": "http://pdu-3.lab:80", "outlet": 7},
        video={"url": "udp://239.0.0.9:5000"},
        ir={"url": "lirc://10.0.0.5:8765", "remote": "/r.conf", "remote_name": "rc1"},
    )
    groups = groups_for_rig(rig)
    assert groups["NetworkSerialPort"] == {"host": "10.0.0.5", "port": 4001, "protocol": "rfc2217", "speed": 57600}
    assert "StblabVideoStream" in groups and groups["NetworkPowerPort"]["index"] == 7
    back = sections_from_resources("stb-x", list(groups.items()))
    assert back["serial"] == {"url": "rfc2217://10.0.0.5:4001", "baudrate": 57600}
    assert back["power"] == {"url": "http://pdu-3.lab:80", "outlet": 7}
    assert back["video"] == {"url": "udp://239.0.0.9:5000"}
    assert back["ir"] == {"url": "lirc://10.0.0.5:8765", "remote_name": "rc1"}
    local = groups_for_rig(_rig(serial={"url": "/dev/ttyUSB3"}))
    assert local == {"RawSerialPort": {"port": "/dev/ttyUSB3", "speed": 115200}}


def test_place_resources_that_cannot_be_a_rig_are_named() -> None:
    with pytest.raises(ValueError, match=r"place 'p1': two resources give its serial"):
        sections_from_resources(
            "p1", [("NetworkSerialPort", {"host": "h", "port": 1}), ("NetworkSerialPort", {"host": "h", "port": 2})]
        )
    with pytest.raises(ValueError, match=r"place 'p1': resource NetworkService lacks 'address'"):
        sections_from_resources("p1", [("NetworkService", {"username": "root"})])


def test_exporter_config_refuses_jinja_and_writes_hash_comments() -> None:
    with pytest.raises(RigFileError, match=r"rigs/x.yaml: a value holds '\{\{'"):
        exporter_config([_rig(video={"url": "http://h:80/v.mjpg?x={{evil}}"})], source="rigs/x.yaml")
    text = exporter_config([_rig(video={"url": "http://h:80/v.mjpg"})], source="rigs/x.yaml")
    comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    assert comments and all(ln.startswith("##") for ln in comments)
    assert "stb-x:\n  HTTPVideoStream:\n    url: http://h:80/v.mjpg" in text


def test_model_facts_refuse_addresses(tmp_path: Path) -> None:
    (tmp_path / "M1.yaml").write_text("rig:\n  serial: {url: socket://h:1}\n")
    expected = r"M1.yaml: key 'rig.serial.url': an address; it comes from the labgrid place"
    with pytest.raises(RigFileError, match=expected):
        load_facts(tmp_path, "M1")
    with pytest.raises(RigFileError, match=r"M2.yaml: no facts for model 'M2'"):
        load_facts(tmp_path, "M2")


@pytest.mark.slow  # starts stblab / labgrid-client processes
def test_sync_is_idempotent_and_tags_places(fresh_grid: Grid) -> None:
    grid = fresh_grid
    rigs = grid.hosts["labhost-1"]
    rig_file = grid.root / "host1.yaml"
    rig_file.write_text(
        "rigs:\n" + "".join(
            f"  - {{name: {r.name}, model: {r.model}, serial: {{url: '{r.serial.url}'}}}}\n" for r in rigs
        )
    )  # fmt: skip
    args = ["labgrid", "sync", str(rig_file), "--coordinator", grid.address, "--host", "labhost-1", "--pool", "desk"]
    p = subprocess.run(STBLAB + args, text=True, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "updated stb-a: tags"
    p = subprocess.run(STBLAB + args, text=True, capture_output=True, timeout=60)
    assert p.stdout.strip() == "unchanged stb-a"
    p = subprocess.run(
        [*STBLAB, "labgrid", "places", "--coordinator", grid.address, "--json"], text=True, capture_output=True
    )
    places = json.loads(p.stdout)
    assert places["stb-a"]["tags"] == {"model": "STB-4K-X1", "host": "labhost-1", "pool": "desk"}
    assert places["stb-a"]["resources"] == 5 and places["stb-b"]["tags"]["pool"] == "ci"


def test_spread_gives_every_test_exactly_once_weighted_by_places() -> None:
    tests = [f"t{i}" for i in range(10)]
    shares = _spread(tests, {"h1": 1, "h2": 3, "h3": 1})
    assert sum(shares.values(), []) == tests
    assert [len(shares[h]) for h in ("h1", "h2", "h3")] == [2, 6, 2]


def test_collect_counts_a_fault_new_on_any_host_as_new(tmp_path: Path) -> None:
    jobs = [HostJob("h1", ["a"], "u1"), HostJob("h2", ["b"], "u2")]
    plan = GatePlan("c:1", "labgrid://c:1/?model=M", {"sha256": "ab"}, jobs)
    fault = {"fault_id": 7}
    for host, rig, new, known in (("h1", "a", [{**fault, "rig": "a"}], []), ("h2", "b", [], [{**fault, "rig": "b"}])):
        d = tmp_path / host
        d.mkdir()
        gate = {"image": {"sha256": "ab"}, "rigs": [rig], "rigs_not_run": [], "passed": 3, "failed": 1,
                "new_faults": new, "known_faults": known, "infra_errors": [], "test_errors": []}  # fmt: skip
        (d / "gate.json").write_text(json.dumps(gate))
    result = collect(plan, [tmp_path / "h1", tmp_path / "h2"])
    assert [f["rig"] for f in result.new_faults] == ["a", "b"] and result.known_faults == []
    assert result.exit_code == 1 and result.passed == 6 and result.not_run == []
    (tmp_path / "h2" / "gate.json").write_text(json.dumps({"image": {"sha256": "other"}, "rigs": ["b"]}))
    result = collect(plan, [tmp_path / "h1", tmp_path / "h2"])
    assert result.not_run == ["b"] and "another image" in result.problems[0]
    assert result.exit_code == 1  # lab.outcome's table: h1's fault says "no" whatever else happened
    (tmp_path / "h1" / "gate.json").write_text(
        json.dumps(
            {
                "image": {"sha256": "ab"},
                "rigs": ["a"],
                "passed": 1,
                "timed_out": [{"rig": "a", "test": "t"}],
                "exit_code": 2,
            }
        )
    )
    result = collect(plan, [tmp_path / "h1", tmp_path / "h2"])
    assert result.exit_code == 2 and "timed out on a" in "\n".join(result.lines())  # the gate's timed_out counts
    (tmp_path / "h2" / "gate.json").write_text(
        json.dumps(
            {
                "image": {"sha256": "ab"},
                "rigs": ["b"],
                "passed": 0,
                "not_run": [{"rig": "b", "test": "t2"}],
                "exit_code": 5,
            }
        )
    )
    (tmp_path / "h1" / "gate.json").write_text(json.dumps({"image": {"sha256": "ab"}, "rigs": ["a"], "passed": 1}))
    result = collect(plan, [tmp_path / "h1", tmp_path / "h2"])
    assert result.exit_code == 5 and "INCOMPLETE" in result.verdict()  # a not-run test is never a pass
