"""Checks started from the web app: the child process's output streams as server-sent events, control
characters made visible; one check per rig; no secret on the command line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support import eventually

from lab.lifeline import supported
from lab.web.checks import SubprocessCheckRunner
from tests.web.conftest import PASSWORD, csrf_of, login_csrf

REPO = Path(__file__).resolve().parents[2]

RIGS = """rigs:
  - name: rma-1
    model: STB-4K-X1
    features: [hdmi]
  - name: ref-1
    model: STB-4K-X1
    features: [hdmi, reference]
"""


class ScriptedRunner(SubprocessCheckRunner):
    """The real runner (child process, threads, SSE) with a short script in place of the warranty check."""

    def command(self, case_id: int, rig: str, runs: int, run_dir: Path) -> list[str]:
        script = (
            "import os, sys\n"
            "print('collecting evidence on', sys.argv[1])\n"
            "print('\\x1b]0;pwned\\x07<b>bold</b>')\n"
            "print('db url set:', bool(os.environ.get('STBLAB_RMA_URL')))\n"
            "sys.stdin.close(); sys.exit(3)\n"
        )
        return [sys.executable, "-c", script, rig]


def test_check_output_streams_and_ends_with_the_exit_code(lab_db, tmp_path) -> None:  # noqa: ANN001
    from lab.web.app import WebConfig, create_app

    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(RIGS)
    runner = ScriptedRunner("postgresql://lab:s3cret-pw@db/rma", rigs, run_root=tmp_path / "runs")
    app = create_app(WebConfig(db=str(lab_db["db"]), artifact_root=lab_db["artifacts"], rigs=rigs, check_runner=runner))
    with TestClient(app, follow_redirects=False) as c:
        token = login_csrf(c)
        c.post("/login", data={"name": "warranty", "password": PASSWORD, "csrf": token})
        case = lab_db["case"]
        page = c.get(f"/cases/{case}")
        assert '<option value="rma-1"' in page.text and '<option value="ref-1"' not in page.text  # no reference rig
        csrf = csrf_of(page.text)
        assert c.post(f"/cases/{case}/check", data={"csrf": csrf, "rig": "ref-1"}).status_code == 400
        r = c.post(f"/cases/{case}/check", data={"csrf": csrf, "rig": "rma-1"})
        assert r.status_code == 303
        job = runner.for_case(case)[0]
        events = []
        with c.stream("GET", f"/checks/{job.id}/events") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
                    if kind == "end":
                        break
        lines = [d for k, d in events if k == "line"]
        assert lines[0] == "collecting evidence on rma-1"
        assert lines[1] == "\\x1b]0;pwned\\x07<b>bold</b>"  # escape made visible; the page sets textContent
        assert lines[2] == "db url set: True"
        assert events[-1] == ("end", {"state": "failed", "exit_code": 3})
        shown = c.get(f"/api/checks/{job.id}").json()
        assert shown["state"] == "failed" and shown["output"][0] == "collecting evidence on rma-1"
        html = c.get(f"/cases/{case}").text
        assert "\\x1b]0;pwned\\x07&lt;b&gt;bold&lt;/b&gt;" in html
    app.state.store.close()


def test_the_real_command_line_has_no_database_password(tmp_path) -> None:  # noqa: ANN001
    runner = SubprocessCheckRunner("postgresql://lab:s3cret-pw@db/rma", tmp_path / "rigs.yaml")
    cmd = runner.command(7, "rma-1", 2, tmp_path / "run")
    assert cmd[1:6] == ["-m", "lab.cli", "warranty", "check", "7"]
    assert "--db" not in cmd and not any("s3cret" in part for part in cmd)


#: A web server's check runner in a process of its own: a request thread starts a check and ends
#: (as AnyIO's idle worker threads do); the check's process prints its pid, which this prints.
SERVER = """
import sys, threading
from pathlib import Path
from lab.web.checks import SubprocessCheckRunner

class Waiting(SubprocessCheckRunner):
    def command(self, case_id, rig, runs, run_dir):
        return [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(120)"]

runner = Waiting("sqlite:///unused.sqlite", Path("rigs.yaml"))
jobs = []
request = threading.Thread(target=lambda: jobs.append(runner.start(1, "rma-1", user="warranty")))
request.start()
request.join()
jobs[0].wait_for_change(0, 30)
print(jobs[0].lines[0], flush=True)
threading.Event().wait(120)
"""


def _started(pid: int) -> str | None:
    """The start time of a live (not zombie) process ``pid``, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]  # state, starttime (fields 3 and 22 of proc(5))


@pytest.mark.skipif(not supported(), reason="needs Linux and util-linux setpriv (PR_SET_PDEATHSIG)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_a_killed_web_server_leaves_no_check_running(tmp_path, sig) -> None:  # noqa: ANN001
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
    child, born = None, None
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.strip().isdigit(), f"the check printed no pid: {line!r}"
        child = int(line)
        born = _started(child)
        assert born is not None, "the check is not running"
        # A window in which nothing may happen: the request thread that started the check has ended,
        # and the check runs on (a death signal tied to that thread would end it within milliseconds).
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            assert _started(child) == born, "the check died with the request thread that started it"
            time.sleep(0.05)
        server.send_signal(sig)
        server.wait(timeout=10)
        eventually(lambda: _started(child) != born, timeout=10, what=f"the check (pid {child}) gone with its server")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if child is not None and born is not None and _started(child) == born:  # only a failed test
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
