"""Accounts, roles and sessions of the web app.

Roles, each allowed what the one before may do and more (admin may do everything):

* ``viewer``   -- reads every page;
* ``triage``   -- (lab engineers) also changes a fault's status (fixed, invalid, duplicate, reopen);
* ``warranty`` -- (warranty staff) also receives units, starts checks, overrides and resolves verdicts;
* ``admin``    -- all of the above.

Passwords are hashed with argon2id (argon2-cffi's defaults); a session is a random 256-bit token in
an HttpOnly cookie whose SHA-256 is stored with an expiry and the session's CSRF token, so logging
out (or deleting the user) ends it at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lab.rma.models import utcnow
from lab.web.schema import WebSession, WebUser

ROLES = ("viewer", "triage", "warranty", "admin")
# what each role may do beyond reading
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "triage": frozenset({"fault.status"}),
    "warranty": frozenset({"case.receive", "case.check", "case.override", "case.resolve"}),
    "admin": frozenset({"fault.status", "case.receive", "case.check", "case.override", "case.resolve", "users"}),
}
MIN_PASSWORD = 10
SESSION_TTL = dt.timedelta(hours=12)
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs as much time as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone " + secrets.token_hex(8))


@dataclass(frozen=True)
class User:
    """The person behind a request."""

    id: int
    name: str
    role: str

    def can(self, permission: str) -> bool:
        """True when this user's role allows ``permission`` (see :data:`PERMISSIONS`)."""
        return permission in PERMISSIONS.get(self.role, frozenset())


@dataclass(frozen=True)
class SessionInfo:
    """A live session: its user and its CSRF token."""

    user: User
    csrf: str


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise ValueError(f"user name {name!r}: 1 to 64 letters, digits or . _ - @")
    return name


def add_user(session: Session, name: str, role: str, password: str) -> User:
    """Create an account (ValueError for a bad name, role, short password or a name taken)."""
    name = _check_name(name)
    if role not in ROLES:
        raise ValueError(f"role {role!r}: roles are {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    if session.execute(select(WebUser.id).where(WebUser.name == name)).first():
        raise ValueError(f"user {name!r} exists already")
    row = WebUser(name=name, role=role, password_hash=_hasher.hash(password))
    session.add(row)
    session.flush()
    return User(row.id, row.name, row.role)


def set_password(session: Session, name: str, password: str) -> None:
    """Change a password; every session of that user ends."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    row = session.execute(select(WebUser).where(WebUser.name == name)).scalar_one_or_none()
    if row is None:
        raise ValueError(f"no user {name!r}")
    row.password_hash = _hasher.hash(password)
    session.execute(delete(WebSession).where(WebSession.user_id == row.id))


def list_users(session: Session) -> list[dict[str, object]]:
    """Every account (never its hash)."""
    rows = session.execute(select(WebUser).order_by(WebUser.name)).scalars()
    return [
        {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at.isoformat()} for u in rows
    ]


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when name and password match an enabled account; None otherwise (same cost either way)."""
    row = session.execute(select(WebUser).where(WebUser.name == name.strip())).scalar_one_or_none()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    return User(row.id, row.name, row.role)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: User, *, ttl: dt.timedelta = SESSION_TTL) -> str:
    """Start a session for ``user``; returns the token for the cookie (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


def lookup_session(session: Session, token: str | None) -> SessionInfo | None:
    """The live session of a cookie token (None when unknown, expired or its user disabled)."""
    if not token or len(token) > 128:
        return None
    row = session.execute(
        select(WebSession, WebUser)
        .join(WebUser, WebUser.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    s, u = row
    if s.expires_at < utcnow() or u.disabled:
        return None
    return SessionInfo(User(u.id, u.name, u.role), s.csrf)


def close_session(session: Session, token: str | None) -> None:
    """End the session of a cookie token (logout)."""
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
