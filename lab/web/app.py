"""The FastAPI application: configuration, templates, error pages, and the routers put together.

Example::

    from lab.web.app import WebConfig, create_app
    app = create_app(WebConfig(db="reports/rma.sqlite", rigs=Path("rigs/warranty.yaml")))
    # uvicorn.run(app, host="127.0.0.1", port=8080)   -- what `stblab web` does

Login and logout live in :mod:`lab.web.login`, evidence files in :mod:`lab.web.files`, pages in
:mod:`lab.web.pages`, the JSON API in :mod:`lab.web.api`. Every route but
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
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from lab.rma import RmaStore
from lab.rma.db import display_url
from lab.textsafe import escape_controls
from lab.web.checks import CheckRunner, SubprocessCheckRunner
from lab.web.ratelimit import LoginLimiter
from lab.web.security import (
    BadCsrf,
    Forbidden,
    NotLoggedIn,
    SecurityHeaders,
    login_redirect_target,
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

    from lab.web import api, files, login, pages

    app.include_router(login.router)
    app.include_router(files.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def app_from_env() -> FastAPI:
    """The app configured by environment variables (for ``uvicorn lab.web.app:app_from_env --factory``)."""
    return create_app(
        WebConfig(db=os.environ.get("STBLAB_RMA_URL"), rigs=Path(os.environ.get("STBLAB_RIGS", "rigs/warranty.yaml")))
    )
