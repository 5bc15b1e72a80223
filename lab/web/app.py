"""The FastAPI application: configuration, templates, login and logout, evidence files.

Example::

    from lab.web.app import WebConfig, create_app
    app = create_app(WebConfig(db="reports/rma.sqlite", rigs=Path("rigs/warranty.yaml")))
    # uvicorn.run(app, host="127.0.0.1", port=8080)   -- what `stblab web` does

Pages live in :mod:`lab.web.pages`, the JSON API in :mod:`lab.web.api`. Every route but
``/login`` and ``/static`` needs a session.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from lab.rma import RmaStore
from lab.rma.db import display_url
from lab.textsafe import escape_controls
from lab.web import accounts, data
from lab.web.checks import CheckRunner, SubprocessCheckRunner
from lab.web.ratelimit import LoginLimiter
from lab.web.security import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    BadCsrf,
    Forbidden,
    NotLoggedIn,
    SecurityHeaders,
    check_token,
    login_redirect_target,
    new_login_csrf,
    safe_next,
    session_of,
)

log = logging.getLogger("stblab.web")
HERE = Path(__file__).parent
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# shown inline; anything else is downloaded (an uploaded .html or .svg never runs in our origin)
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "video/mp4", "video/webm", "text/plain"}


@dataclass
class WebConfig:
    """What the app serves: the RMA database, its artifact files, the rig file checks run on."""

    db: str | None = None
    artifact_root: Path | None = None
    rigs: Path = Path("rigs/warranty.yaml")
    secure_cookies: bool = False
    emulate: str = "auto"
    check_runner: CheckRunner | None = None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


def templates() -> Environment:
    """The Jinja environment: autoescape on for every template, control characters made visible."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.filters["visible"] = lambda v: escape_controls("" if v is None else v)
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * float(v):.0f}%"
    return env


def render(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """A page from a template, with the user and the session's CSRF token in its context."""
    info = getattr(request.state, "session_info", None)
    html = request.app.state.jinja.get_template(name).render(
        request=request, user=info.user if info else None, csrf=info.csrf if info else "", **ctx
    )
    return HTMLResponse(html, status_code=status_code)


def create_app(config: WebConfig | None = None) -> FastAPI:
    """The web app over ``config.db`` (migrated on first contact)."""
    config = config or WebConfig()
    app = FastAPI(title="stblab", docs_url=None, redoc_url=None, openapi_url=None)
    store = RmaStore(config.db, artifact_root=config.artifact_root)
    store.ensure_schema()
    app.state.config = config
    app.state.store = store
    app.state.jinja = templates()
    app.state.checks = config.check_runner or SubprocessCheckRunner(
        store.url.render_as_string(hide_password=False),
        config.rigs,
        emulate=config.emulate,
    )
    app.add_middleware(SecurityHeaders)
    if hasattr(app.state.checks, "stop_all"):
        app.add_event_handler("shutdown", app.state.checks.stop_all)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    log.info("stblab web on %s", display_url(store.url))

    @app.exception_handler(NotLoggedIn)
    async def _not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "login required"}, status_code=401)
        if request.method != "GET":
            return HTMLResponse("login required", status_code=401)
        return RedirectResponse(login_redirect_target(request), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return render(request, "error.html", 403, title="Not allowed", message=exc.message)

    @app.exception_handler(BadCsrf)
    async def _bad_csrf(request: Request, _exc: BadCsrf) -> Response:
        msg = "the form's security token is missing or stale: reload the page and try again"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": msg}, status_code=403)
        return render(request, "error.html", 403, title="Form refused", message=msg)

    # --- login / logout ----------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/") -> Response:
        token = new_login_csrf()
        resp = render(request, "login.html", next=safe_next(next), login_csrf=token, error=None)
        resp.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=config.secure_cookies, path="/login"
        )
        return resp

    @app.post("/login")
    async def login(request: Request) -> Response:
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

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        from lab.web.security import require_csrf

        await require_csrf(request)
        with store.session() as s, s.begin():
            accounts.close_session(s, request.cookies.get(COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # --- evidence files ------------------------------------------------------------------------

    @app.get("/artifacts/{sha256}/{name}")
    async def artifact(request: Request, sha256: str, name: str, download: bool = False) -> Response:
        """A stored evidence file by content hash; only hashes the database knows, only under the store."""
        session_of(request)
        if not SHA256.match(sha256):
            return JSONResponse({"detail": "not an artifact hash"}, status_code=404)
        with store.session() as s:
            row = data.artifact_known(s, sha256)
        if row is None:
            return JSONResponse({"detail": "no such artifact"}, status_code=404)
        root = store.artifacts.root.resolve()
        path = store.artifacts.path_of(sha256).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return JSONResponse({"detail": "artifact file missing from the store"}, status_code=404)
        media = row["media_type"] if row["media_type"] in INLINE_TYPES else "application/octet-stream"
        if row["media_type"] == "text/plain":
            media = "text/plain; charset=utf-8"
        inline = media != "application/octet-stream" and not download
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "artifact"
        return FileResponse(
            path, media_type=media, filename=safe_name, content_disposition_type="inline" if inline else "attachment"
        )

    @app.get("/clips/{sha256}.webm")
    async def clip(request: Request, sha256: str) -> Response:
        """A stored video clip converted to VP8/WebM for the browser (cached after the first request)."""
        session_of(request)
        if not SHA256.match(sha256):
            return JSONResponse({"detail": "not an artifact hash"}, status_code=404)
        with store.session() as s:
            row = data.artifact_known(s, sha256)
        if row is None or not row["media_type"].startswith("video/"):
            return JSONResponse({"detail": "no such clip"}, status_code=404)
        if not store.artifacts.path_of(sha256).is_file():
            return JSONResponse({"detail": "clip file missing from the store"}, status_code=404)
        import av
        from starlette.concurrency import run_in_threadpool

        from lab.web.clips import browser_clip

        try:
            path = await run_in_threadpool(browser_clip, store.artifacts, sha256)
        except (av.error.FFmpegError, IndexError) as exc:
            log.warning("clip %s cannot be converted: %s", sha256, exc)
            return JSONResponse({"detail": "the clip cannot be decoded"}, status_code=422)
        return FileResponse(path, media_type="video/webm")

    from lab.web import api, pages

    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def app_from_env() -> FastAPI:
    """The app configured by environment variables (for ``uvicorn lab.web.app:app_from_env --factory``)."""
    return create_app(
        WebConfig(db=os.environ.get("STBLAB_RMA_URL"), rigs=Path(os.environ.get("STBLAB_RIGS", "rigs/warranty.yaml")))
    )
