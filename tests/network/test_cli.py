"""`stblab net`: profiles, profile validation and TS checks from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lab.emulator.headend import ChannelMap, channel_file

from .conftest import TEST_SETTINGS


def _net(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", "net", *args], capture_output=True, text=True, timeout=60)


def test_profiles_listed_and_bad_profile_explained(tmp_path: Path) -> None:
    out = _net("profiles", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["lossy-2pct"]["loss"] == 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: 150%\n")
    out = _net("profile", str(bad))
    assert out.returncode == 2
    assert f"{bad}: key 'loss': Input should be less than or equal to 100" in out.stderr


def test_check_ts_passes_a_clean_file_and_fails_a_damaged_one(
    tmp_path: Path, channel_cache: Path, cmap: ChannelMap
) -> None:
    clean = channel_file(cmap.channels[1], channel_cache, TEST_SETTINGS)
    out = _net("check-ts", str(clean), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True
    data = clean.read_bytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data[: 188 * 300] + data[188 * 310 :])  # 10 packets lost
    out = _net("check-ts", str(damaged))
    assert out.returncode == 1
    assert "cc_error" in out.stdout
