"""Evidence files: stored artifacts by content hash, and clips converted for the browser.

Part of the web app (:func:`lab.web.app.create_app` includes :data:`router`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from lab.rma import RmaStore
from lab.web import data
from lab.web.app import INLINE_TYPES, SHA256
from lab.web.security import session_of

log = logging.getLogger("stblab.web")
router = APIRouter()


def _known(request: Request, sha256: str, *, unknown: str) -> tuple[RmaStore, dict[str, Any]]:
    """For a logged-in user: the store and the database row of a well-formed hash the database
    knows; a 404 (``{"detail": ...}``) for a malformed hash or, saying ``unknown``, an unknown one."""
    session_of(request)
    store: RmaStore = request.app.state.store
    if not SHA256.match(sha256):
        raise HTTPException(404, "not an artifact hash")
    with store.session() as s:
        row = data.artifact_known(s, sha256)
    if row is None:
        raise HTTPException(404, unknown)
    return store, row


@router.get("/artifacts/{sha256}/{name}")
async def artifact(request: Request, sha256: str, name: str, download: bool = False) -> Response:
    """A stored evidence file by content hash; only hashes the database knows, only under the store."""
    store, row = _known(request, sha256, unknown="no such artifact")
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


@router.get("/clips/{sha256}.webm")
async def clip(request: Request, sha256: str) -> Response:
    """A stored video clip converted to VP8/WebM for the browser (cached after the first request)."""
    store, row = _known(request, sha256, unknown="no such clip")
    if not row["media_type"].startswith("video/"):
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
