"""Opening the RMA database: SQLite by default, PostgreSQL by URL, migrated on open.

Where the database is, first match wins: the argument (a path or an SQLAlchemy URL), the
environment variable ``STBLAB_RMA_URL``, ``reports/rma.sqlite``. A plain ``postgresql://`` URL uses
psycopg 3.

SQLite is opened in WAL mode with a busy timeout and foreign keys on, and every transaction
starts with ``BEGIN IMMEDIATE`` so that two writers queue at the database instead of failing
half-way when a reader upgrades to a writer. PostgreSQL runs at READ COMMITTED; filing relies on
unique constraints and retries, not on locks held in Python.

Migrations (Alembic, shipped in ``lab/rma/migrations``, one set for both backends) are applied
on open; many processes opening a fresh database at once is safe.

Example::

    engine = open_db("reports/rma.sqlite")            # or "postgresql://lab@db/rma"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

DEFAULT_PATH = Path("reports/rma.sqlite")
ENV_URL = "STBLAB_RMA_URL"
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000


def resolve_url(url_or_path: str | os.PathLike[str] | None = None) -> URL:
    """The database URL for an argument that is a URL, a path, or None (environment, then default)."""
    raw = os.fspath(url_or_path) if url_or_path is not None else os.environ.get(ENV_URL) or os.fspath(DEFAULT_PATH)
    raw = raw.strip()
    if not raw:
        raise ValueError("empty RMA database URL or path")
    if "://" not in raw:
        return URL.create("sqlite", database=str(Path(raw).expanduser().absolute()))
    url = make_url(raw)
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError(f"unsupported RMA database backend {url.get_backend_name()!r} (sqlite or postgresql)")
    return url


def display_url(url: URL) -> str:
    """The URL with its password hidden (for messages and logs)."""
    return url.render_as_string(hide_password=True)


def make_engine(url_or_path: str | os.PathLike[str] | URL | None = None, *, connect_timeout: float = 5.0) -> Engine:
    """An engine with the connection settings above; no connection is made yet."""
    url = url_or_path if isinstance(url_or_path, URL) else resolve_url(url_or_path)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _sqlite_setup(engine)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        connect_args={"connect_timeout": max(1, int(connect_timeout))},
    )


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # Only the first connection to a fresh file switches it to WAL; the others find it done, so
        # they do not contend for the exclusive lock the switch takes (a busy switch is retried by
        # the callers that open the store: see RmaStore.ensure_schema and filing's retries).
        if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def head_revision() -> str:
    """The newest migration shipped with this version of stblab."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply the shipped migrations up to ``revision`` (a no-op when already there)."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def open_db(url_or_path: str | os.PathLike[str] | None = None) -> Engine:
    """An engine on the RMA database, migrated to the newest schema."""
    engine = make_engine(url_or_path)
    migrate(engine)
    return engine
