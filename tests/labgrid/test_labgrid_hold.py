"""Holding places of a real labgrid coordinator: lock while used, released after, others wait."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial
from labgrid_grid import Grid, _bin, wait_for

from lab.drivers.power import PowerSwitch
from lab.labgrid.request import parse_request
from lab.labgrid.source import LockLost, PlacesUnavailable, check_held, held_rig_file
from lab.rig import Rig, load_rigs

pytestmark = pytest.mark.labgrid


def _holders(grid: Grid) -> dict[str, str | None]:
    with grid.link("observer") as link:
        return {n: p.acquired for n, p in link.places().items()}


def test_two_places_held_while_used_and_released_after(grid: Grid, models: Path, tmp_path: Path, emulated) -> None:
    _, emu_rigs, _ = emulated
    url = grid.url(model="STB-4K-X1", pool="ci", count=2, wait="20s", models=models, user="ci-101")
    lines: list[str] = []
    with held_rig_file(url, tmp_path / "rigs.yaml", progress=lines.append) as held:
        rigs = load_rigs(held.rig_file)
        assert sorted(rigs) == ["stb-a", "stb-b"]
        for name, rig in rigs.items():
            # the derived rig reaches the same instruments the emulator serves, and is not "emulated"
            assert rig.serial.url == emu_rigs[name].serial.url
            assert rig.power.url == emu_rigs[name].power.url and rig.power.outlet == 1
            assert rig.video.url == emu_rigs[name].video.url
            assert (rig.ssh.host, rig.ssh.port) == (emu_rigs[name].ssh.host, emu_rigs[name].ssh.port)
            assert rig.ssh.key == emu_rigs[name].ssh.key and rig.ir.remote == emu_rigs[name].ir.remote
            assert rig.ir.url == emu_rigs[name].ir.url and not rig.emulated
            assert rig.firmware == emu_rigs[name].firmware and rig.features == emu_rigs[name].features
        holders = _holders(grid)
        assert holders == {"stb-a": f"{socket.gethostname()}/ci-101", "stb-b": f"{socket.gethostname()}/ci-101"}
        # the derived rig drives the box: power through the exported NetworkPowerPort, and the boot
        # log arrives on the console behind the exported NetworkSerialPort
        with serial.serial_for_url(rigs["stb-a"].serial.url, timeout=0.5) as port:
            power = PowerSwitch.from_rig(rigs["stb-a"])
            power.off()
            power.on()
            assert power.status() is True
            assert wait_for("boot output on stb-a's console", lambda: port.read(64), 20)
        check_held(held.rig_file, "stb-a")  # no error while held
    assert _holders(grid) == {"stb-a": None, "stb-b": None}
    with grid.link("observer") as link:
        assert link.reservations() == []  # cancelled, so the places are free for the next job
    assert any("acquired place stb-a" in ln for ln in lines) and any("released place stb-b" in ln for ln in lines)


def _labgrid_client(grid: Grid, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LG_USERNAME=user)
    return subprocess.run(
        [_bin("labgrid-client"), "-x", grid.address, *args], text=True, capture_output=True, timeout=60, env=env
    )


def _job_in_thread(
    url: str, rig_file: Path, result: dict[str, object], lines: list[str], grid: Grid
) -> threading.Thread:
    def job() -> None:
        try:
            with held_rig_file(url, rig_file, progress=lines.append) as held:
                result["holder"] = _holders(grid)
                result["rigs"] = sorted(held.rigs)
                result["done"] = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            result["error"] = exc

    t = threading.Thread(target=job)
    t.start()
    return t


@pytest.mark.slow  # starts stblab / labgrid-client processes
def test_an_engineers_labgrid_client_lock_makes_the_job_wait_then_proceed(
    grid: Grid, models: Path, tmp_path: Path
) -> None:
    p = _labgrid_client(grid, "-p", "stb-a", "lock")  # the engineer's habit, the real client
    assert p.returncode == 0, p.stderr
    url = grid.url(name="stb-a", wait="30s", models=models, user="ci-102")
    lines: list[str] = []
    result: dict[str, object] = {}
    t = _job_in_thread(url, tmp_path / "rigs.yaml", result, lines, grid)
    wait_for("the job to report it is waiting", lambda: any("waiting for" in ln for ln in lines), 15)
    assert _holders(grid)["stb-a"].endswith("/alice") and "holder" not in result
    p = _labgrid_client(grid, "-p", "stb-a", "unlock")
    assert p.returncode == 0, p.stderr
    t.join(timeout=30)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert result["holder"]["stb-a"].endswith("/ci-102") and result["rigs"] == ["stb-a"]
    assert _holders(grid)["stb-a"] is None
    p = _labgrid_client(grid, "-p", "stb-a", "lock", user="bob")
    assert p.returncode == 0, p.stderr  # the job left it free for the next engineer


def test_a_higher_priority_job_goes_first(grid: Grid, models: Path, tmp_path: Path) -> None:
    with grid.link("blocker") as blocker:
        blocker.acquire("stb-b")
        results: dict[str, dict[str, object]] = {"low": {}, "high": {}}
        lines: dict[str, list[str]] = {"low": [], "high": []}
        threads = {}
        for name, prio in (("low", 0), ("high", 50)):  # low asks first: age alone would favour it
            url = grid.url(name="stb-b", wait="30s", prio=prio, models=models, user=f"ci-{name}")
            threads[name] = _job_in_thread(url, tmp_path / f"{name}.yaml", results[name], lines[name], grid)
            wait_for(f"{name} to wait", lambda n=name: any("waiting for" in ln for ln in lines[n]), 15)
        blocker.release("stb-b", fromuser=blocker.identity)
    for t in threads.values():
        t.join(timeout=40)
    assert "error" not in results["high"] and "error" not in results["low"], results
    assert results["high"]["done"] < results["low"]["done"]
    # the hand-over from high to low is immediate, not left to the coordinator's 15 s housekeeping
    assert results["low"]["done"] - results["high"]["done"] < 5
    assert results["high"]["holder"]["stb-b"].endswith("/ci-high")


def test_an_exception_in_the_job_releases(grid: Grid, models: Path, tmp_path: Path) -> None:
    url = grid.url(name="stb-a", wait="10s", models=models, user="ci-109")
    with pytest.raises(ZeroDivisionError), held_rig_file(url, tmp_path / "r.yaml", progress=lambda _: None):
        assert _holders(grid)["stb-a"].endswith("/ci-109")
        1 / 0  # noqa: B018 - the job crashes
    assert _holders(grid)["stb-a"] is None


def test_a_second_job_is_refused_after_its_wait(grid: Grid, models: Path, tmp_path: Path) -> None:
    first = grid.url(name="stb-b", wait="10s", models=models, user="ci-103")
    second = grid.url(name="stb-b", wait="1s", models=models, user="ci-104")
    with held_rig_file(first, tmp_path / "a.yaml", progress=lambda _: None):
        with (
            pytest.raises(PlacesUnavailable) as err,
            held_rig_file(second, tmp_path / "b.yaml", progress=lambda _: None),
        ):
            pass
        assert "stb-b held by" in str(err.value) and "ci-103" in str(err.value) and grid.address in str(err.value)
        assert _holders(grid)["stb-b"].endswith("/ci-103")
    with grid.link("observer") as link:
        assert link.reservations() == []  # the refused job cancelled its reservation too


def test_no_matching_place_is_bad_input_naming_the_coordinator(grid: Grid, models: Path, tmp_path: Path) -> None:
    from lab.errors import RigFileError

    url = grid.url(model="NOPE", models=models)
    with (
        pytest.raises(RigFileError, match=r"0 place\(s\) match model=NOPE.*stb-a"),
        held_rig_file(url, tmp_path / "r.yaml", progress=lambda _: None),
    ):
        pass


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_a_signal_releases_the_places(grid: Grid, models: Path, tmp_path: Path, signum: int, code: int) -> None:
    url = grid.url(model="STB-4K-X1", count=2, wait="20s", models=models, user="ci-105")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "labgrid",
            "run",
            url,
            "--rig-file",
            str(tmp_path / "r.yaml"),
            "--",
            sys.executable,
            "-c",
            "import time; print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    assert set(_holders(grid).values()) == {f"{socket.gethostname()}/ci-105"}
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == code
    assert _holders(grid) == {"stb-a": None, "stb-b": None}
    assert "Traceback" not in proc.stderr.read()


def test_sigkilled_exporter_is_an_infra_error_for_that_rig_only(fresh_grid: Grid, models: Path, tmp_path: Path) -> None:
    grid = fresh_grid
    url = grid.url(model="STB-4K-X1", count=2, wait="20s", models=models, user="ci-106")
    with held_rig_file(url, tmp_path / "rigs.yaml", progress=lambda _: None, keepalive=0.2) as held:
        grid.exporters["labhost-2"].kill()
        wait_for("stb-b to be marked lost", lambda: "stb-b" in held.lost, 15)
        with pytest.raises(LockLost) as err:
            check_held(held.rig_file, "stb-b")  # what a per-rig pytest process asks
        assert err.value.rig == "stb-b" and "exporter gone" in str(err.value) and "labhost-2/stb-b" in str(err.value)
        assert grid.address in str(err.value)
        held.check("stb-a")  # the other rig carries on
        check_held(held.rig_file, "stb-a")
    assert _holders(grid) == {"stb-a": None, "stb-b": None}


@pytest.mark.slow  # the coordinator saves its places only every 15 s
def test_coordinator_restart_is_lock_lost(fresh_grid: Grid, models: Path, tmp_path: Path) -> None:
    grid = fresh_grid
    url = grid.url(name="stb-a", wait="20s", models=models, user="ci-107")
    with held_rig_file(url, tmp_path / "rigs.yaml", progress=lambda _: None, keepalive=0.2) as held:
        grid.restart_coordinator()
        wait_for("stb-a to be marked lost", lambda: "stb-a" in held.lost, 30)
        expected = r"lock lost: place stb-a at coordinator 127\.0\.0\.1:\d+ is no longer locked"
        with pytest.raises(LockLost, match=expected):
            held.check("stb-a")


def test_lost_coordinator_is_an_infra_error_naming_place_and_coordinator(
    fresh_grid: Grid, models: Path, tmp_path: Path
) -> None:
    grid = fresh_grid
    url = grid.url(name="stb-a", wait="20s", models=models, user="ci-108")
    with held_rig_file(url, tmp_path / "rigs.yaml", progress=lambda _: None, keepalive=0.2, grace=1.0) as held:
        assert grid.coordinator is not None
        grid.coordinator.kill()
        wait_for("stb-a to be marked lost", lambda: "stb-a" in held.lost, 30)
        with pytest.raises(LockLost) as err:
            check_held(held.rig_file, "stb-a")
        text = str(err.value)
        assert "place stb-a" in text and f"coordinator {grid.address} unreachable" in text and err.value.rig == "stb-a"


def test_url_errors_name_the_key() -> None:
    from lab.errors import RigFileError

    with pytest.raises(RigFileError, match=r"key 'count': must be 1 when a place is named"):
        parse_request("labgrid://h:1/?name=stb-a&count=2")
    with pytest.raises(RigFileError, match=r"key 'wait': wait 'soon' is not a duration"):
        parse_request("labgrid://h:1/?model=X&wait=soon")
    with pytest.raises(RigFileError, match=r"key 'Model': not a tag name"):
        parse_request("labgrid://h:1/?Model=X")
    r = parse_request("labgrid://coord/?model=STB-4K-X1&pool=ci&host=labhost-2&count=2&wait=30m&prio=10")
    assert (r.coordinator, r.count, r.wait, r.prio) == ("coord:20408", 2, 1800.0, 10.0)
    assert r.filters == {"model": "STB-4K-X1", "pool": "ci", "host": "labhost-2"}


@pytest.mark.slow  # a coordinator and exporter of its own, and a boot
def test_rfc2217_console_exported_and_reached(
    emulated: tuple[Path, dict[str, Rig], Path], models: Path, tmp_path: Path
) -> None:
    _, emu_rigs, _ = emulated
    a = emu_rigs["stb-a"]
    rfc = str(a.emulate.model_extra["rfc2217_url"])  # the emulator serves the same console over RFC 2217
    rig = a.model_copy(update={"serial": a.serial.model_copy(update={"url": rfc})})
    with Grid(tmp_path / "grid", {"labhost-1": [rig]}) as grid:
        with grid.link("observer") as link:
            (res,) = [r for r in link.resources() if r.cls == "NetworkSerialPort"]
        assert res.params["protocol"] == "rfc2217"
        url = grid.url(name="stb-a", wait="10s", models=models, user="ci-110")
        with held_rig_file(url, tmp_path / "rigs.yaml", progress=lambda _: None) as held:
            derived = held.rigs["stb-a"]
            assert derived.serial.url == rfc
            with serial.serial_for_url(derived.serial.url, timeout=0.5) as port:  # pyserial's RFC 2217 client
                power = PowerSwitch.from_rig(derived)
                power.off()
                power.on()
                assert wait_for("boot output over RFC 2217", lambda: port.read(64), 20)
