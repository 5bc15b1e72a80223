"""Fixtures for the RMA tests: a private PostgreSQL cluster, fresh databases on both backends, reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.rma import FaultReport
from lab.rma.pgtemp import TempPostgres, available

HERE = Path(__file__).parent
LOGS = HERE / "data"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempPostgres]:
    """A private PostgreSQL cluster for the session (skipped only when the binaries are absent)."""
    if not available():
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed: .ci/run installs Debian's postgresql")
    cluster = TempPostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(autouse=True)
def _audit_head_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store of a test (and its child processes) anchors the audit head in the test's folder."""
    monkeypatch.setenv("STBLAB_RMA_AUDIT_HEAD", str(tmp_path / "rma.audit-head"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty RMA database on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "rma.sqlite")
    cluster: TempPostgres = request.getfixturevalue("pg_cluster")
    return cluster.create_db()


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[object]:
    from lab.rma import RmaStore

    s = RmaStore(db_url, artifact_root=tmp_path / "artifacts", journal_path=tmp_path / "journal.jsonl")
    yield s
    s.close()


def log_text(name: str) -> str:
    return (LOGS / name).read_text()


def make_report(
    key: str,
    *,
    log: str | None = None,
    rig: str = "stb-a",
    serial: str = "SN-A0001",
    firmware: str = "2.1.0",
    model: str = "STB-4K-X1",
    test_id: str = "scenarios/test_zap.py::test_zap[stb-a]",
    **kw: object,
) -> FaultReport:
    return FaultReport(
        rig=rig,
        device_serial=serial,
        model=model,
        test_id=test_id,
        firmware_version=firmware,
        firmware_build_id=f"b{firmware.replace('.', '')}",
        console_log=log_text(log) if log else None,
        occurrence_key=key,
        started=time.time(),
        **kw,  # type: ignore[arg-type]
    )
