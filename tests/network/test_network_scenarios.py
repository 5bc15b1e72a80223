"""The README's network scenarios, run as a user runs them: ``pytest scenarios/network --rigs rigs/iptv.yaml``.

They are not part of the main job's suite (they need root and the IPTV rig), so without this test a
change to the page objects or the video library could break them unseen.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import needs_netns

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@needs_netns
def test_the_network_scenarios_pass_on_the_iptv_rig(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "scenarios/network",
            "--rigs",
            "rigs/iptv.yaml",
            "-p",
            "no:cacheprovider",
            "--no-file-faults",
            f"--run-dir={tmp_path / 'run'}",
            f"--junitxml={junit}",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert junit.exists(), tail
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    # every scenario ran and passed: nothing skipped, nothing errored (an API drift is an error)
    assert counts == {"tests": 4, "failures": 0, "errors": 0, "skipped": 0}, tail
    assert proc.returncode == 0, tail
