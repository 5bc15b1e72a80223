"""Alembic environment of the RMA database: runs on the connection ``lab.rma.db`` hands it."""

from __future__ import annotations

from alembic import context

from lab.rma.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by the alembic command line
    from lab.rma.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # One transaction for the whole upgrade, version check included. Alembic treats SQLite's DDL as
    # non-transactional by default and commits step by step, so two processes opening a fresh file at
    # once both ran migration 0002 ("duplicate column name: counts") and the loser's filing was
    # journaled. SQLite's DDL is transactional, and our BEGIN IMMEDIATE makes the others wait here.
    transactional_ddl=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Many hosts opening a fresh database at once: one migrates, the others wait and find it done.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7262016)")
    context.run_migrations()
