"""About forty bad inputs through the real commands (``python3 -m lab.cli ...`` in subprocesses).

Each must end as the shared table says (bad input: exit 4; a refused image: 5), with a message
naming the file, the rig and the key, no traceback, no raw control byte on the terminal, within a
bounded time, and without touching anything: no run folder, the RMA database unchanged and its
audit log intact afterwards.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.emulator.testing import write_rig_file
from lab.outcome import ExitCode
from lab.rma import FaultReport, RmaStore

REPO = Path(__file__).resolve().parents[2]
BAD = int(ExitCode.BAD_INPUT)
BOUND_S = 30.0  # each command answers well inside this, even on a busy 2-core machine
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


def run_cli(*args: str, cwd: Path) -> tuple[int, str, str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], capture_output=True, timeout=BOUND_S * 2, cwd=cwd, env=env
    )
    took = time.monotonic() - t0
    assert not CONTROL.search(proc.stdout + proc.stderr.replace(b"\n", b"")), proc.stderr[-500:]
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode(), took


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A valid emulated rig file (nothing runs), an image file, and an RMA database with one fault."""
    root = tmp_path_factory.mktemp("hostile")
    rig_file = write_rig_file(root, ["g1"])
    base = yaml.safe_load(rig_file.read_text())
    db = root / "rma.sqlite"
    store = RmaStore(db, audit_head_path=root / "rma.audit-head")
    store.file(
        FaultReport(rig="g1", device_serial="SN-G1", model="STB-4K-X1", test_id="t::x", firmware_version="2.0.0",
                    console_log="Kernel panic - not syncing: hostile test", occurrence_key="hostile-1")
    )  # fmt: skip
    case = store.create_case("SN-G1", "no picture", __import__("datetime").date(2026, 11, 3))
    store.close()
    image = root / "fw.img"
    image.write_bytes(b"STBFW" + os.urandom(4096))
    return {"root": root, "base": base, "db": db, "head": root / "rma.audit-head", "image": image, "case": case}


def _db_state(lab: dict[str, Any]) -> tuple[bytes, bytes]:
    store = RmaStore(lab["db"], audit_head_path=lab["head"])
    check = store.verify_audit()
    store.close()
    assert check.ok, check.problems
    return repr(check.counts).encode(), lab["head"].read_bytes()


# --- rig files -----------------------------------------------------------------------------------

Mutate = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutate:
    def mutate(rig: dict[str, Any]) -> None:
        node = rig
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value

    return mutate


def _port(url_key: str, port: int) -> Mutate:
    def mutate(rig: dict[str, Any]) -> None:
        section, key = url_key.split(".")
        rig[section][key] = re.sub(r":\d+", f":{port}", rig[section][key], count=1)

    return mutate


# name -> (mutation of rig g1, or raw bytes of the whole file; the key the message must name)
RIG_CASES: dict[str, tuple[Mutate | bytes, str]] = {
    "not utf-8 (latin-1)": (b"rigs:\n  - name: caf\xe9\n    model: X\n", "not UTF-8"),
    "utf-16 with BOM": ("rigs:\n  - name: a\n".encode("utf-16"), "not UTF-8"),
    "NUL byte": (b"rigs:\n  - name: a\x00b\n", "not valid YAML"),
    "empty file": (b"", "key 'rigs'"),
    "unclosed bracket": (b"rigs: [ {name: a\n", "not valid YAML"),
    "a list, not a mapping": (b"- a\n- b\n", "key 'rigs'"),
    "impossible date": (b"rigs:\n  - name: a\n    model: 2026-13-45\n", "not valid YAML"),
    "key given twice": (b"rigs:\n  - name: a\n    name: b\n    model: X\n", "given twice"),
    "5 MB file": (b"rigs:\n  - name: a\n#" + b"x" * (5 * 1024 * 1024) + b"\n", "larger than"),
    "unknown top-level key": (b"rigs: [{name: a, model: X}]\nextra: 1\n", "key 'extra'"),
    "serial port 0": (_port("serial.url", 0), "key 'serial.url'"),
    "serial port 70000": (_port("serial.url", 70000), "key 'serial.url'"),
    "serial port 99999": (_port("serial.url", 99999), "key 'serial.url'"),
    "video port 0": (_port("video.url", 0), "key 'video.url'"),
    "video port 70000": (_port("video.url", 70000), "key 'video.url'"),
    "video port 99999": (_port("video.url", 99999), "key 'video.url'"),
    "PDU port 0": (_port("power.url", 0), "key 'power.url'"),
    "PDU port 70000": (_port("power.url", 70000), "key 'power.url'"),
    "PDU port 99999": (_port("power.url", 99999), "key 'power.url'"),
    "IR port 0": (_port("ir.url", 0), "key 'ir.url'"),
    "IR port 70000": (_port("ir.url", 70000), "key 'ir.url'"),
    "IR port 99999": (_port("ir.url", 99999), "key 'ir.url'"),
    "ssh port 0": (_set("ssh.port", 0), "key 'ssh.port'"),
    "ssh port 70000": (_set("ssh.port", 70000), "key 'ssh.port'"),
    "emulated rfc2217 port 99999": (_port("emulate.rfc2217_url", 99999), "key 'emulate.rfc2217_url'"),
    "emulated lirc port 0": (_port("emulate.lirc_url", 0), "key 'emulate.lirc_url'"),
    "serial scheme ftp": (_set("serial.url", "ftp://127.0.0.1:21"), "key 'serial.url'"),
    "video scheme gopher": (_set("video.url", "gopher://127.0.0.1:70/"), "key 'video.url'"),
    "PDU scheme ftp": (_set("power.url", "ftp://127.0.0.1:21"), "key 'power.url'"),
    "IR scheme http": (_set("ir.url", "http://127.0.0.1:4998"), "key 'ir.url'"),
    "ssh host with a space": (_set("ssh.host", "127.0.0.1 -oProxyCommand=x"), "key 'ssh.host'"),
    "unknown key under emulate": (_set("emulate.colour", "blue"), "key 'emulate.colour'"),
    "unknown key under emulate.boot": (_set("emulate.boot", {"bootdelay": 1, "turbo": True}), "key 'emulate.boot"),
    "wrong type under emulate": (_set("emulate.seed", "not a number"), "key 'emulate.seed'"),
    "inline password": (_set("serial.login.password", "hunter2"), "inline secret"),
    "control bytes in the rig name": (_set("name", "g1\x1b]0;pwned\x07"), "key 'name'"),
}
# The cases the issue names run through all three commands; the rest through `stblab lab`.
ALL_THREE = {"not utf-8 (latin-1)", "unknown key under emulate", "unknown key under emulate.boot"} | {
    name for name in RIG_CASES if " port " in name
}


def _write_rig(lab: dict[str, Any], name: str) -> Path:
    how, _ = RIG_CASES[name]
    path = lab["root"] / f"rigs-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.yaml"
    if isinstance(how, bytes):
        path.write_bytes(how)
    else:
        data = copy.deepcopy(lab["base"])
        how(data["rigs"][0])
        path.write_text(yaml.safe_dump(data, allow_unicode=False), encoding="utf-8")
    return path


def _commands(lab: dict[str, Any], rig_file: Path, run: Path, which: str) -> list[str]:
    if which == "lab":
        return ["lab", "--rigs", str(rig_file), "--run-dir", str(run), "--rma-db", str(lab["db"])]
    if which == "gate":
        return ["firmware", "gate", str(lab["image"]), "--rigs", str(rig_file), "--run-dir", str(run),
                "--rma-db", str(lab["db"]), "--emulate", "never"]  # fmt: skip
    return ["warranty", "check", str(lab["case"]), "--rig", "g1", "--rigs", str(rig_file), "--run-dir", str(run),
            "--db", str(lab["db"]), "--emulate", "never"]  # fmt: skip


PARAMS = [(n, c) for n in RIG_CASES for c in (("lab", "gate", "warranty") if n in ALL_THREE else ("lab",))]


@pytest.mark.parametrize(("name", "command"), PARAMS, ids=[f"{c}: {n}" for n, c in PARAMS])
def test_a_bad_rig_file_is_bad_input_naming_file_rig_and_key(lab: dict[str, Any], name: str, command: str) -> None:
    before = _db_state(lab)
    rig_file = _write_rig(lab, name)
    run = lab["root"] / f"run-{command}"
    code, out, err, took = run_cli(*_commands(lab, rig_file, run, command), cwd=lab["root"])
    assert code == BAD, f"{name} via {command}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in err and "Traceback" not in out
    assert str(rig_file) in err, err
    assert RIG_CASES[name][1] in err, err
    if not isinstance(RIG_CASES[name][0], bytes) and "rig name" not in name:
        assert "rig 'g1'" in err, err
    assert took < BOUND_S
    assert not run.exists(), "bad input must not start a run"
    assert _db_state(lab) == before, "bad input must not touch the RMA database"


# --- images, options, databases --------------------------------------------------------------------


def test_a_missing_image_and_a_directory_are_bad_input_before_the_rig_file_is_read(lab: dict[str, Any]) -> None:
    broken = _write_rig(lab, "not utf-8 (latin-1)")  # would be reported if it were read first
    for image, problem in ((lab["root"] / "no-such.img", "no such file"), (lab["root"], "not a readable file")):
        code, _, err, took = run_cli("firmware", "gate", str(image), "--rigs", str(broken), cwd=lab["root"])
        assert code == BAD and problem in err and str(image) in err and took < BOUND_S, err


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "bad-magic"), (os.urandom(2 * 1024 * 1024), "bad-magic"), (b"STBFW\xff\xff\xff\xff" + b"\0" * 64, "")],
    ids=["zero bytes", "2 MB random", "huge manifest length"],
)
def test_a_bad_image_is_refused_with_its_reason(lab: dict[str, Any], tmp_path: Path, content: bytes, reason: str):
    rig_file = lab["root"] / "good-rigs.yaml"
    rig_file.write_text(yaml.safe_dump(lab["base"]))
    image = tmp_path / "bad.img"
    image.write_bytes(content)
    run = tmp_path / "run"
    code, _, err, took = run_cli(
        "firmware", "gate", str(image), "--rigs", str(rig_file), "--run-dir", str(run), "--emulate", "never",
        cwd=lab["root"],
    )  # fmt: skip
    assert code == BAD and "image refused" in err and reason in err and took < BOUND_S, err  # untrusted = bad input
    assert "Traceback" not in err and not run.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["lab", "--rig", "nope"], "no rig matches 'nope'"),
        (["lab", "--firmware", "nope=2.0.0"], "no emulated rig named 'nope'"),
        (["lab", "--pytest-args", "-k 'unterminated"], "--pytest-args"),
        (["warranty", "receive", "--serial", "SN-1", "--complaint", "x", "--received", "2026-13-45"], "not a date"),
        (["rma", "audit", "--expect-head", "7:\x1b[2Jnot-a-hash"], "SEQ:HASH"),
    ],
    ids=["unknown rig", "bad firmware version", "bad pytest args", "impossible date", "bad head"],
)
def test_bad_options_are_bad_input(lab: dict[str, Any], tmp_path: Path, args: list[str], says: str) -> None:
    rig_file = lab["root"] / "good-rigs.yaml"
    rig_file.write_text(yaml.safe_dump(lab["base"]))
    before = _db_state(lab)
    extra = {"lab": ["--rigs", str(rig_file), "--run-dir", str(tmp_path / "run-opt"), "--rma-db", str(lab["db"])],
             "warranty": ["--db", str(lab["db"])], "rma": ["--db", str(lab["db"])]}[args[0]]  # fmt: skip
    code, out, err, took = run_cli(*args, *extra, cwd=lab["root"])
    assert code == BAD and says in err and "Traceback" not in err and took < BOUND_S, out + err
    assert not (tmp_path / "run-opt").exists()
    assert _db_state(lab) == before


def test_a_file_that_is_not_a_database_is_a_clear_error(lab: dict[str, Any], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(8192))
    code, _, err, _ = run_cli("rma", "audit", "--db", str(garbage), cwd=tmp_path)
    assert code == BAD and "not a usable RMA database" in err and "Traceback" not in err
    code, _, err, _ = run_cli("rma", "faults", "--db", str(garbage), cwd=tmp_path)
    assert code != 0 and "not a usable RMA database" in err and "Traceback" not in err


def test_a_hostile_console_log_gets_a_title_without_control_bytes_in_bounded_time(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(
        b"\x1b]0;pwned\x07\x1b[6n Kernel panic - not syncing: \x1b[2J<script>alert(1)</script> \xff\xfe\x00"
        + b"A" * 5_000_000
        + b"\n"
    )
    code, out, err, took = run_cli("rma", "title", str(log), cwd=tmp_path)
    assert code == 0 and "kernel panic" in out and took < BOUND_S, err
    assert len(out) < 50_000


def test_a_journal_with_garbage_lines_files_the_good_ones_and_keeps_the_rest_byte_for_byte(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    down = RmaStore("postgresql://lab@127.0.0.1:1/rma", journal_path=journal, artifact_root=tmp_path / "a")
    for key in ("j-1", "j-2"):
        res = down.file(FaultReport(rig="g1", device_serial="SN-G1", model="STB-4K-X1", test_id="t::j",
                                    console_log="Kernel panic - not syncing: journal", occurrence_key=key))  # fmt: skip
        assert res.journaled
    down.close()
    garbage = [b"\xff\xfe not utf-8 \x1b[2J", b'{"torn": ', b"[1, 2, 3]", b"x" * 1_000_000, b'{"report": 5}']
    good = journal.read_bytes().splitlines()
    journal.write_bytes(b"\n".join([garbage[0], good[0], *garbage[1:], good[1]]) + b"\n")
    db = tmp_path / "rma.sqlite"
    env_journal = {"STBLAB_RMA_JOURNAL": str(journal)}
    os.environ.update(env_journal)
    try:
        code, out, err, took = run_cli("rma", "replay", "--db", str(db), cwd=tmp_path)
    finally:
        os.environ.pop("STBLAB_RMA_JOURNAL")
    assert code == 0 and "2 filed, 0 waiting" in out and took < BOUND_S, out + err
    kept = (tmp_path / "journal.jsonl.bad").read_bytes()
    for line in garbage[:4]:
        assert line in kept, line[:40]  # nothing lost: every unreadable line kept as it was
    assert b'"report": 5' in kept  # readable but unfileable: kept with the reason
    store = RmaStore(db)
    assert len(store.occurrences()) == 2 and store.verify_audit().ok
    store.close()
