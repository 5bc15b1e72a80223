"""Who is asking and may they: session cookie, CSRF tokens, permissions, security headers.

* The session cookie (``stblab_session``) is HttpOnly, SameSite=Strict, Secure when the app is
  served over HTTPS (``--secure-cookies``), and holds only a random token (see
  :mod:`lab.web.accounts`).
* Every POST carries the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``);
  the login form, before any session exists, uses a double-submit cookie.
* Pages without a session redirect to ``/login``; ``/api/`` answers 401.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from lab.web.accounts import SessionInfo, lookup_session

COOKIE = "stblab_session"
LOGIN_CSRF_COOKIE = "stblab_login_csrf"
CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class NotLoggedIn(Exception):
    """No valid session: a page redirects to the login form, the API answers 401."""


class Forbidden(Exception):
    """Logged in, but the role does not allow it (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadCsrf(Exception):
    """A POST without the right CSRF token (403)."""


def session_of(request: Request) -> SessionInfo:
    """The request's live session (raises NotLoggedIn). Cached on the request."""
    cached = getattr(request.state, "session_info", None)
    if cached is not None:
        return cached
    store = request.app.state.store
    with store.session() as s, s.begin():
        info = lookup_session(s, request.cookies.get(COOKIE))
    if info is None:
        raise NotLoggedIn()
    request.state.session_info = info
    return info


def login_redirect_target(request: Request) -> str:
    """Where the login form sends the user back to (same-site paths only)."""
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return "/login?next=" + quote(path, safe="")


def safe_next(target: str | None) -> str:
    """A redirect target after login: a local path, never another site (``//evil``, ``/\\evil``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def check_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


async def require_csrf(request: Request) -> SessionInfo:
    """The session of a POST whose CSRF token matches (raises NotLoggedIn or BadCsrf)."""
    info = session_of(request)
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not check_token(info.csrf, given):
        raise BadCsrf()
    return info


def need(info: SessionInfo, permission: str) -> None:
    """Raise Forbidden unless the session's role allows ``permission``."""
    if not info.user.can(permission):
        raise Forbidden(f"your role ({info.user.role}) may not do this ({permission})")


def new_login_csrf() -> str:
    """A fresh token for the login form's double-submit cookie."""
    return secrets.token_urlsafe(32)


class SecurityHeaders(BaseHTTPMiddleware):
    """Content-Security-Policy, no sniffing, no framing, no referrer, no caching of pages."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith(("/static/", "/artifacts/")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
