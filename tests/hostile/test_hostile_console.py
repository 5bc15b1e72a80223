"""A real ``stblab lab`` run whose box prints hostile text on its console, with a console password.

The emulated box echoes terminal escapes (OSC window title, clear screen, a cursor-position query),
NUL and BEL bytes, ``<script>``, an ``<img onerror>``, a Markdown link and image; the scenario then
fails with that output plus 5 MB on one line. Afterwards:

* no summary (run and per rig, Markdown, HTML), JUnit XML, terminal output or RMA listing carries
  an ESC, NUL or BEL byte, and no Markdown/HTML/XML report carries an unescaped ``<script>``;
* the console password (given by ``password_env``) is in no artifact, no output and not in the
  database.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import FAST_BOOT

from lab.emulator.testing import rig_entry

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Pw-9f2c1e"
RAW_CONTROL = re.compile(rb"[\x00\x07\x1b]")
HOSTILE_ECHO = r"\x1b]0;pwned\x07\x1b[2J\x1b[6n\x00\x07<script>alert(1)</script><img src=x onerror=alert(2)>"
LINKS = "[click](http://evil.example/) ![img](http://evil.example/i.png)"

SUITE = f"""
from lab.errors import DeviceFault


def test_the_box_prints_hostile_text(shell, stb):
    # The command carries the escapes as text (a console refuses raw control bytes typed into a
    # shell); the box's `echo -e` turns them into the bytes that come back.
    out = stb.run("echo -e '{HOSTILE_ECHO.replace(chr(92), chr(92) * 2)} {LINKS}'").output
    assert "<script>" in out and "](http" in out, repr(out)  # the box really sent the markup
    # What the console driver keeps of escapes, plus the raw bytes as another channel (diag, ssh) would carry them.
    raw = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[6n\\x00\\x07<script>alert(3)</script>"
    message = "box printed: " + raw + out.strip() + " " + "B" * 5_000_000
    raise DeviceFault(message, rig=stb.rig_name, symptom="hostile-output")
"""


@pytest.mark.slow
def test_hostile_console_text_reaches_no_report_raw_and_the_password_nothing(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    entry = rig_entry(lab_dir, "h1", firmware="2.0.0", boot=FAST_BOOT, console_password_env="STBLAB_TEST_PW")
    entry["serial"]["login"]["password_env"] = "STBLAB_TEST_PW"
    rig_file = lab_dir / "rigs.yaml"
    rig_file.write_text(yaml.safe_dump({"rigs": [entry]}, sort_keys=False))
    suite = tmp_path / "suite" / "test_hostile.py"
    suite.parent.mkdir()
    suite.write_text(SUITE)
    run, db = tmp_path / "run", tmp_path / "rma.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO), "STBLAB_TEST_PW": SECRET}
    env["STBLAB_RMA_AUDIT_HEAD"] = str(tmp_path / "rma.audit-head")
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "lab", "--rigs", str(rig_file), "--rig", "h1", "--run-dir", str(run),
         "--rma-db", str(db), "--suite", str(suite)],
        capture_output=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    (tmp_path / "stblab-lab.out").write_bytes(out)  # kept for a person reading a failure
    assert proc.returncode == 1, out.decode(errors="replace")[-3000:]
    assert not RAW_CONTROL.search(out), "terminal output carries raw control bytes"
    assert b"box printed" in proc.stdout and b"\\x1b]0;pwned" in proc.stdout
    assert len(proc.stdout) < 200_000, "a 5 MB line reached the terminal"

    reports = [run / "summary.md", run / "summary.html", run / "h1" / "summary.md", run / "h1" / "junit.xml"]
    for path in reports:
        data = path.read_bytes()
        assert not RAW_CONTROL.search(data), f"{path.name} carries raw control bytes"
        assert b"<script>" not in data and b"<img" not in data, f"{path.name} carries markup from the box"
        assert len(data) < 1_000_000 or path.suffix == ".xml", f"{path.name}: the 5 MB line was not bounded"
    md = (run / "summary.md").read_text()
    assert "](http" not in md, "a Markdown link from the box would render"
    assert "&lt;script&gt;" in md and "&lt;script&gt;" in (run / "summary.html").read_text()

    # The RMA listing of the filed fault is safe on a terminal too.
    faults = subprocess.run(
        [sys.executable, "-m", "lab.cli", "rma", "faults", "--db", str(db)], capture_output=True, timeout=60, env=env
    )
    assert faults.returncode == 0 and not RAW_CONTROL.search(faults.stdout + faults.stderr)
    audit = subprocess.run(
        [sys.executable, "-m", "lab.cli", "rma", "audit", "--db", str(db)], capture_output=True, timeout=60, env=env
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # The password: in no file the run wrote, no output, no database row.
    secret = SECRET.encode()
    assert secret not in out + faults.stdout + audit.stdout
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert not leaked, f"the password reached {leaked}"
    with sqlite3.connect(db) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                assert SECRET not in repr(row), f"the password reached table {table}"
    checked = sum(1 for p in tmp_path.rglob("*") if p.is_file())
    assert checked > 10  # the run wrote its artifacts (console log, JUnit, Allure, summaries, database)
