"""Login and logout: the login form with its own CSRF cookie, failed logins rate-limited, the session cookie.

Part of the web app (:func:`lab.web.app.create_app` includes :data:`router`).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lab.rma import RmaStore
from lab.textsafe import escape_controls
from lab.web import accounts
from lab.web.app import WebConfig, render
from lab.web.security import COOKIE, LOGIN_CSRF_COOKIE, check_token, new_login_csrf, safe_next

log = logging.getLogger("stblab.web")
router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    """The login form, with a fresh login CSRF token in its form and its cookie."""
    config: WebConfig = request.app.state.config
    token = new_login_csrf()
    resp = render(request, "login.html", next=safe_next(next), login_csrf=token, error=None)
    resp.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=config.secure_cookies, path="/login"
    )
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the form's token, the rate limit and the password; open a session and go where the user was going."""
    config: WebConfig = request.app.state.config
    store: RmaStore = request.app.state.store
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    if not check_token(request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(form.get("csrf", ""))):
        return render(
            request,
            "error.html",
            403,
            title="Form refused",
            message="the login form's security token is missing or stale: reload the page",
        )
    ip = request.client.host if request.client else "?"
    keys = (f"name:{name.strip().lower()}", f"ip:{ip}")
    wait = config.limiter.retry_after(*keys)
    if wait > 0:
        resp = render(
            request,
            "login.html",
            429,
            next=target,
            login_csrf=request.cookies.get(LOGIN_CSRF_COOKIE),
            error=f"too many failed logins: try again in {int(wait) + 1} s",
        )
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    with store.session() as s, s.begin():
        user = accounts.authenticate(s, name, password)
        token = accounts.open_session(s, user) if user else None
    if user is None or token is None:
        config.limiter.failed(*keys)
        log.info("failed login for %r from %s", escape_controls(name[:64]), ip)
        return render(
            request,
            "login.html",
            401,
            next=target,
            login_csrf=request.cookies.get(LOGIN_CSRF_COOKIE),
            error="wrong name or password",
        )
    config.limiter.succeeded(keys[0])
    log.info("login %s (%s) from %s", user.name, user.role, ip)
    done = RedirectResponse(target, status_code=303)
    done.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=config.secure_cookies,
        path="/",
        max_age=int(accounts.SESSION_TTL.total_seconds()),
    )
    done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Close the session (a CSRF-checked POST) and go back to the login form."""
    store: RmaStore = request.app.state.store
    from lab.web.security import require_csrf

    await require_csrf(request)
    with store.session() as s, s.begin():
        accounts.close_session(s, request.cookies.get(COOKIE))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp
