"""The JSON API under ``/api/``: the same data as the pages, for scripts (session cookie required).

``/api/openapi.json`` describes it (FastAPI's OpenAPI schema, also behind the login). Writes go
through the pages' forms (CSRF-protected); the API's POSTs take the CSRF token as the
``X-CSRF-Token`` header.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lab.rma import queries
from lab.web import data
from lab.web.pages import fault_filters
from lab.web.security import session_of

router = APIRouter(prefix="/api")


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    """Who is logged in, their role, and the CSRF token for API POSTs."""
    info = session_of(request)
    return {"name": info.user.name, "role": info.user.role, "csrf": info.csrf}


@router.get("/faults")
async def faults(request: Request) -> dict[str, Any]:
    """Faults with the fault page's filters: status, kind, model, firmware, since, min_rate, q, page."""
    session_of(request)
    with request.app.state.store.session() as s:
        return data.list_faults(s, **fault_filters(request))


@router.get("/faults/{fault_id}")
async def fault(request: Request, fault_id: int, occurrences: int = 20) -> Any:
    """One fault with its occurrences per firmware, linked faults and recent occurrences."""
    session_of(request)
    with request.app.state.store.session() as s:
        out = data.fault_detail(s, fault_id, occurrences=max(1, min(occurrences, 500)))
    if out is None:
        return JSONResponse({"detail": f"no fault {fault_id}"}, status_code=404)
    return out


@router.get("/cases")
async def cases(request: Request, state: str = "") -> list[dict[str, Any]]:
    """RMA cases, newest first (optionally of one state)."""
    session_of(request)
    with request.app.state.store.session() as s:
        return queries.list_cases(s, state=state or None, limit=500)


@router.get("/cases/{case_id}")
async def case(request: Request, case_id: int) -> Any:
    """One case: device, verdict with its evidence, verdict history, photos, checks started here."""
    session_of(request)
    with request.app.state.store.session() as s:
        out = queries.get_case(s, case_id)
        if out is None:
            return JSONResponse({"detail": f"no case {case_id}"}, status_code=404)
        out["photos"] = data.case_photos(s, case_id)
    out["checks"] = [j.as_dict() for j in request.app.state.checks.for_case(case_id)]
    return out


@router.get("/checks/{job_id}")
async def check(request: Request, job_id: int) -> Any:
    """A check started from the web app: state, exit code and its output lines."""
    session_of(request)
    job = request.app.state.checks.get(job_id)
    if job is None:
        return JSONResponse({"detail": f"no check {job_id}"}, status_code=404)
    return {**job.as_dict(), "output": list(job.lines)}


@router.get("/runs")
async def runs(request: Request, rig: str = "", outcome: str = "", page: int = 1) -> dict[str, Any]:
    """Test runs, newest first, each with the fault it was filed under."""
    session_of(request)
    with request.app.state.store.session() as s:
        return data.list_runs(s, rig=rig or None, outcome=outcome or None, page=page)


@router.get("/audit")
async def audit(request: Request, page: int = 1) -> dict[str, Any]:
    """Audit entries, newest first, and whether the hash chain holds."""
    session_of(request)
    store = request.app.state.store
    with store.session() as s:
        out = data.audit_page(s, page=page)
    chk = store.verify_audit()
    out["chain"] = {"ok": chk.ok, "entries": chk.entries, "bad_seq": chk.bad_seq, "problem": chk.problem}
    return out


@router.get("/dashboard")
async def dashboard(request: Request) -> dict[str, Any]:
    """The dashboard's figures: faults seen and fixed per firmware, verdict mix, reproduction rates."""
    session_of(request)
    with request.app.state.store.session() as s:
        return data.dashboard(s)


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    """The OpenAPI description of this API."""
    session_of(request)
    from fastapi.openapi.utils import get_openapi

    app = request.app
    return get_openapi(
        title="stblab", version="1", routes=[r for r in app.routes if str(getattr(r, "path", "")).startswith("/api/")]
    )
