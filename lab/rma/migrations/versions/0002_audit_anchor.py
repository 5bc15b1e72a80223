"""Audit anchor: row counters in every audit entry; rows the log vouches for cannot be deleted.

* ``audit_log.counts`` (JSON, covered by the entry's hash): how many faults, occurrences, cases,
  evidence, verdicts, reproductions and audit entries existed when the entry was written.
* A database that already holds rows gets one ``audit.anchored`` entry: counters start there, and
  rows up to the ids it names predate per-row audit entries (they are checked by count only).
* Triggers refuse DELETE on the tables the log vouches for (faults, occurrences, cases, evidence,
  reproductions). The hash chain still notices a deletion by someone who drops the triggers.

Downgrading drops the counters: entries written since this revision no longer verify (their
hashes covered the counters), so do it only on a database you are about to rebuild.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NO_DELETE = ("faults", "occurrences", "rma_cases", "evidence", "reproductions")


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("counts", sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION stblab_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'rows of % are never deleted (the audit log vouches for them)', TG_TABLE_NAME; "
            "END $$"
        )
    for table in _NO_DELETE:
        if bind.dialect.name == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION stblab_no_delete()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'rows of {table} are never deleted (the audit log vouches for them)'); END"
            )
    _anchor_existing_rows(bind)


def _anchor_existing_rows(bind: sa.Connection) -> None:
    from lab.rma.audit import COUNTED, anchor_detail, append_audit

    with Session(bind=bind) as session:
        if not any(session.execute(sa.select(model.id).limit(1)).first() for model in COUNTED.values()):
            return  # a fresh database: counters start with its first entry
        append_audit(
            session,
            actor="stblab-migration",
            action="audit.anchored",
            entity="audit",
            entity_id=None,
            detail=anchor_detail(session),
        )
        session.flush()


def downgrade() -> None:
    bind = op.get_bind()
    for table in _NO_DELETE:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS stblab_no_delete()")
    op.drop_column("audit_log", "counts")
