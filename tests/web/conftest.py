"""Fixtures for the web app: a database with faults, a case with a verdict and evidence, accounts of
every role, and clients logged in through the real login form."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from lab.rma import FaultReport, RmaStore

DATA = Path(__file__).parents[1] / "rma" / "data"
PASSWORD = "bench-password-1"
ROLES = ("viewer", "triage", "warranty", "admin")
NASTY = "<script>alert('x')</script>'; DROP TABLE faults; --\x1b]0;pwned\x07"


def make_frame(path: Path, colour: tuple[int, int, int] = (0, 0, 0)) -> Path:
    img = np.zeros((90, 160, 3), np.uint8)
    img[:] = colour
    cv2.imwrite(str(path), img)
    return path


def file_fault(
    store: RmaStore,
    key: str,
    tmp: Path,
    *,
    log: str = "panic_init.log",
    firmware: str = "2.1.0",
    rig: str = "stb-a",
    serial: str = "SN-A0001",
    message: str = "black screen after resume",
    **kw: object,
) -> int:
    frame = make_frame(tmp / f"{key}.png")
    console = tmp / f"{key}.log"
    console.write_text((DATA / log).read_text())
    report = FaultReport(
        rig=rig,
        device_serial=serial,
        model="STB-4K-X1",
        test_id=f"scenarios/test_standby.py::test_resume[{rig}]",
        firmware_version=firmware,
        firmware_build_id=f"b{firmware.replace('.', '')}",
        console_log=(DATA / log).read_text(),
        occurrence_key=key,
        started=time.time(),
        message=message,
        artifacts={"frame.png": frame, "console.log": console},
        **kw,  # type: ignore[arg-type]
    )
    res = store.file(report)
    assert res.fault_id is not None
    return res.fault_id


@pytest.fixture(scope="session")
def lab_db_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The folder of :func:`lab_db`'s database, built once per session, and the ids in it.

    Filing three faults and hashing four argon2id passwords took about a second per test; each
    test now gets a copy of the folder (database, audit head, artifacts), the same content.
    """
    from lab.web.accounts import add_user

    tmp_path = tmp_path_factory.mktemp("lab-db")
    db = tmp_path / "rma.sqlite"
    arts = tmp_path / "artifacts"
    store = RmaStore(db, artifact_root=arts)
    f1 = file_fault(store, "k1", tmp_path)
    file_fault(store, "k2", tmp_path, firmware="2.2.0")
    f2 = file_fault(store, "k3", tmp_path, log="oom_epg.log", rig="stb-b", serial="SN-B0002")
    case = store.create_case(
        "SN-RMA01", "no picture after standby", dt.date(2026, 11, 20), model="STB-4K-X1", actor="desk"
    )
    ev = store.add_evidence(case, kind="brownout", source="ssh:/var/log/pmic", value="3 events", actor="lab")
    store.set_case_state(case, "diagnosing", actor="lab")
    store.record_verdict(
        case,
        "user_damage",
        rule_set_version="warranty-rules/1",
        justification="3 brownouts and an overvoltage event",
        evidence_ids=[ev],
        actor="rules",
    )
    store.set_case_state(case, "diagnosed", actor="lab")
    with store.session() as s, s.begin():
        for role in ROLES:
            add_user(s, role, role, PASSWORD)
    store.close()
    return tmp_path, {"faults": [f1, f2], "case": case}


@pytest.fixture
def lab_db(lab_db_template: tuple[Path, dict[str, object]], tmp_path: Path) -> Iterator[dict[str, object]]:
    """A database with two faults, a case with a recorded verdict, and one account per role (a fresh copy per test)."""
    template, ids = lab_db_template
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    faults = list(ids["faults"])  # type: ignore[call-overload]
    yield {"db": tmp_path / "rma.sqlite", "artifacts": tmp_path / "artifacts", "faults": faults, "case": ids["case"],
           "tmp": tmp_path}  # fmt: skip


@pytest.fixture
def app(lab_db: dict[str, object]):  # noqa: ANN201
    from lab.web.app import WebConfig, create_app
    from lab.web.ratelimit import LoginLimiter

    web = create_app(WebConfig(db=str(lab_db["db"]), artifact_root=lab_db["artifacts"], limiter=LoginLimiter(limit=5)))
    yield web
    web.state.store.close()


def login_csrf(client) -> str:  # noqa: ANN001
    page = client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def login(app) -> Callable[[str], object]:  # noqa: ANN001
    """A TestClient logged in as the user of the given role (through the login form)."""
    from fastapi.testclient import TestClient

    clients = []

    def _login(role: str, password: str = PASSWORD):  # noqa: ANN202
        client = TestClient(app, follow_redirects=False)
        clients.append(client)
        token = login_csrf(client)
        r = client.post("/login", data={"name": role, "password": password, "csrf": token, "next": "/"})
        assert r.status_code == 303, r.text
        return client

    yield _login
    for c in clients:
        c.close()
