"""The PostgreSQL permissions the docs recommend for the lab's database user.

The owner of the database (who runs the migrations) is not the user the lab files with. The lab's
user may read everything and insert rows, update only the rows filing and the lifecycle move
(fault counters and status, a device's learned model, a case's state, occurrences moved by a
retitle), and never update or delete the audit log, verdicts, or any audited row. Even someone who
gets the lab's password cannot then rewrite history: UPDATE and DELETE are refused by permission
before the triggers are asked, and only the owner can disable triggers.

Example::

    stblab rma grants lab_user | psql -U owner rma      # print, review, apply
"""

from __future__ import annotations

import re

#: Tables the lab's user may UPDATE (columns filing, lifecycle and retitle change).
UPDATABLE = ("devices", "faults", "rma_cases", "occurrences")
#: Tables the lab's user may only INSERT into and read (append-only for it).
INSERT_ONLY = (
    "artifacts",
    "audit_log",
    "evidence",
    "fault_signatures",
    "firmware_builds",
    "occurrence_artifacts",
    "reproductions",
    "rigs",
    "test_runs",
    "verdict_evidence",
    "verdicts",
)


def recommended_grants(role: str) -> str:
    """SQL that gives ``role`` exactly what the lab needs (run it as the database's owner)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", role):
        raise ValueError(f"role {role!r} is not a plain PostgreSQL identifier")
    every = ", ".join(sorted((*UPDATABLE, *INSERT_ONLY)))
    lines = [
        f"REVOKE ALL ON {every}, alembic_version FROM {role};",
        f"GRANT SELECT, INSERT ON {every} TO {role};",
        f"GRANT UPDATE ON {', '.join(UPDATABLE)} TO {role};",
        f"GRANT SELECT ON alembic_version TO {role};",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};",
        f"-- {role} may not UPDATE or DELETE {', '.join(INSERT_ONLY)}, nor DELETE anything.",
    ]
    return "\n".join(lines) + "\n"


__all__ = ["INSERT_ONLY", "UPDATABLE", "recommended_grants"]
