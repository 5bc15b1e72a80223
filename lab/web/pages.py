"""Server-rendered pages: faults (engineers), cases (warranty staff), runs, audit log.

Each page reads through :mod:`lab.rma.queries` / :mod:`lab.web.data`, and each change goes through
the RMA store with the logged-in user as the actor, so it lands in the audit log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from lab.errors import RigFileError, TestError
from lab.rma import VERDICTS, queries
from lab.rma.cases import TRANSITIONS
from lab.rma.lifecycle import STATUSES
from lab.rma.models import Artifact
from lab.textsafe import escape_controls
from lab.web import data
from lab.web.app import render
from lab.web.security import need, require_csrf, session_of

router = APIRouter()
MAX_UPLOAD = 20 * 1024 * 1024
PHOTO_TYPES = {"image/png", "image/jpeg", "image/webp"}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _date(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def fault_filters(request: Request) -> dict[str, Any]:
    """The fault list's filters from the query string (bad values are ignored, not fatal)."""
    qp = request.query_params
    rate = _float(qp.get("min_rate"))
    return {
        "status": qp.get("status") or None,
        "kind": qp.get("kind") or None,
        "model": qp.get("model") or None,
        "firmware": qp.get("firmware") or None,
        "since": _date(qp.get("since")),
        "min_rate": rate / 100 if rate is not None and rate > 1 else rate,
        "q": (qp.get("q") or "").strip()[:200] or None,
        "page": _int(qp.get("page")) or 1,
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    info = session_of(request)
    return RedirectResponse("/cases" if info.user.role == "warranty" else "/faults", status_code=303)


# --- faults ------------------------------------------------------------------------------------


@router.get("/faults", response_class=HTMLResponse)
async def faults_page(request: Request) -> Response:
    session_of(request)
    filters = fault_filters(request)
    with request.app.state.store.session() as s:
        result = data.list_faults(s, **filters)
        choices = data.filter_choices(s)
    args = {k: v for k, v in request.query_params.items() if k != "page"}
    return render(request, "faults.html", title="Faults", result=result, choices=choices, args=args, filters=filters)


@router.get("/faults/{fault_id}", response_class=HTMLResponse)
async def fault_page(request: Request, fault_id: int, occurrences: int = 20) -> Response:
    session_of(request)
    with request.app.state.store.session() as s:
        fault = data.fault_detail(s, fault_id, occurrences=max(1, min(occurrences, 500)))
    if fault is None:
        return render(request, "error.html", 404, title="No such fault", message=f"no fault {fault_id}")
    return render(request, "fault.html", title=f"Fault {fault_id}", fault=fault, statuses=STATUSES)


@router.post("/faults/{fault_id}/status")
async def fault_status(request: Request, fault_id: int) -> Response:
    info = await require_csrf(request)
    need(info, "fault.status")
    form = await request.form()
    action = str(form.get("action", ""))
    note = str(form.get("note", "")).strip()
    store = request.app.state.store
    actor = info.user.name
    try:
        if action == "fixed":
            store.mark_fixed(fault_id, str(form.get("version", "")).strip(), actor=actor, note=note)
        elif action == "invalid":
            if not note:
                raise TestError("marking a fault invalid needs a reason")
            store.mark_invalid(fault_id, note, actor=actor)
        elif action == "duplicate":
            of = _int(str(form.get("of", "")))
            if of is None:
                raise TestError("a duplicate needs the id of the fault it duplicates")
            store.mark_duplicate(fault_id, of, actor=actor)
        elif action == "reopen":
            store.reopen(fault_id, note, actor=actor)
        else:
            raise TestError(f"unknown status change {action!r}")
    except (TestError, ValueError) as exc:
        return render(request, "error.html", 400, title="Status not changed", message=str(exc))
    return RedirectResponse(f"/faults/{fault_id}", status_code=303)


# --- cases -------------------------------------------------------------------------------------


@router.get("/cases", response_class=HTMLResponse)
async def cases_page(request: Request, state: str = "") -> Response:
    session_of(request)
    with request.app.state.store.session() as s:
        cases = queries.list_cases(s, state=state or None, limit=200)
        counts: dict[str, int] = {}
        for c in queries.list_cases(s, limit=10_000):
            counts[c["state"]] = counts.get(c["state"], 0) + 1
    return render(
        request, "cases.html", title="Cases", cases=cases, state=state, counts=counts, states=list(TRANSITIONS)
    )


@router.get("/cases/new", response_class=HTMLResponse)
async def new_case_form(request: Request) -> Response:
    need(session_of(request), "case.receive")
    return render(request, "case_new.html", title="Receive a unit", today=dt.date.today().isoformat(), error=None)


@router.post("/cases")
async def receive_unit(request: Request) -> Response:
    info = await require_csrf(request)
    need(info, "case.receive")
    form = await request.form()
    serial = str(form.get("serial", "")).strip()
    model = str(form.get("model", "")).strip() or None
    complaint = str(form.get("complaint", "")).strip()
    store = request.app.state.store
    try:
        received = dt.date.fromisoformat(str(form.get("received", "")) or dt.date.today().isoformat())
        if not complaint:
            raise TestError("the customer's complaint is needed (in their words)")
        photos = []
        for up in form.getlist("photos"):
            if isinstance(up, str) or not up.filename:
                continue
            body = await up.read(MAX_UPLOAD + 1)
            if len(body) > MAX_UPLOAD:
                raise TestError(f"photo {up.filename!r} is larger than {MAX_UPLOAD // 2**20} MiB")
            if up.content_type not in PHOTO_TYPES:
                raise TestError(f"photo {up.filename!r}: {up.content_type} is not a PNG, JPEG or WebP image")
            photos.append((up.filename, body))
        case_id = store.create_case(serial, complaint, received, model=model, actor=info.user.name)
        for name, body in photos:
            _store_photo(store, case_id, name, body, info.user.name)
    except (TestError, ValueError) as exc:
        return render(
            request, "case_new.html", 400, title="Receive a unit", today=dt.date.today().isoformat(), error=str(exc)
        )
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _store_photo(store: Any, case_id: int, name: str, body: bytes, actor: str) -> None:
    """Keep an uploaded photo in the artifact store and as evidence of kind ``photo`` on the case."""
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"} else ""
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(body)
        tmp.flush()
        art = store.artifacts.put(tmp.name, name)
    with store.session() as s, s.begin():
        from sqlalchemy import select

        row = s.execute(select(Artifact).where(Artifact.sha256 == art.sha256)).scalar_one_or_none()
        if row is None:
            row = Artifact(sha256=art.sha256, size=art.size, media_type=art.media_type, path=art.path)
            s.add(row)
            s.flush()
        from lab.rma.cases import add_evidence

        add_evidence(s, case_id, kind="photo", source="reception", value=name[:255], actor=actor, artifact_id=row.id)


def _case_rigs(request: Request, model: str) -> tuple[list[dict[str, Any]], str | None]:
    """Rigs of the rig file that hold this model's returned units (not reference units), busy or free."""
    from lab.rig import load_rigs

    try:
        rigs = load_rigs(request.app.state.config.rigs)
    except (RigFileError, OSError) as exc:
        return [], str(exc)
    busy = request.app.state.checks.busy_rigs() if hasattr(request.app.state.checks, "busy_rigs") else set()
    out = [
        {"name": r.name, "busy": r.name in busy}
        for r in rigs.values()
        if (not model or r.model == model) and "reference" not in r.features
    ]
    return out, None


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: int) -> Response:
    session_of(request)
    with request.app.state.store.session() as s:
        case = queries.get_case(s, case_id)
        if case is None:
            return render(request, "error.html", 404, title="No such case", message=f"no case {case_id}")
        case["photos"] = data.case_photos(s, case_id)
        arts = data.artifacts_by_id(s, [e["artifact_id"] for e in case["evidence"] if e["artifact_id"]])
    for e in case["evidence"]:
        e["artifact"] = arts.get(e["artifact_id"]) if e["artifact_id"] else None
    rigs, rig_error = _case_rigs(request, case["model"])
    jobs = sorted(request.app.state.checks.for_case(case_id), key=lambda j: -j.id)
    return render(
        request,
        "case.html",
        title=f"Case {case_id}",
        case=case,
        rigs=rigs,
        rig_error=rig_error,
        jobs=jobs,
        verdicts=VERDICTS,
        next_states=sorted(TRANSITIONS.get(case["state"], ())),
    )


@router.post("/cases/{case_id}/check")
async def start_check(request: Request, case_id: int) -> Response:
    info = await require_csrf(request)
    need(info, "case.check")
    form = await request.form()
    rig = str(form.get("rig", ""))
    runs = _int(str(form.get("runs", "1"))) or 1
    with request.app.state.store.session() as s:
        case = queries.get_case(s, case_id)
    if case is None:
        return render(request, "error.html", 404, title="No such case", message=f"no case {case_id}")
    rigs, err = _case_rigs(request, case["model"])
    if rig not in {r["name"] for r in rigs}:
        return render(
            request,
            "error.html",
            400,
            title="Check not started",
            message=err or f"rig {rig!r} is not a bench rig for model {case['model']!r}",
        )
    try:
        job = request.app.state.checks.start(case_id, rig, user=info.user.name, runs=max(1, min(runs, 10)))
    except ValueError as exc:
        return render(request, "error.html", 409, title="Check not started", message=str(exc))
    return RedirectResponse(f"/cases/{case_id}?job={job.id}#checks", status_code=303)


@router.get("/checks/{job_id}/events")
async def check_events(request: Request, job_id: int) -> Response:
    """Server-sent events: each output line of a check (``line``), then its end (``end``)."""
    session_of(request)
    job = request.app.state.checks.get(job_id)
    if job is None:
        return Response("no such check", status_code=404, media_type="text/plain")

    async def stream():  # noqa: ANN202
        seen = 0
        while True:
            lines = job.lines[seen:]
            for line in lines:
                yield f"event: line\ndata: {json.dumps(escape_controls(line, keep_newlines=False))}\n\n"
            seen += len(lines)
            if job.state != "running" and seen >= len(job.lines):
                yield f"event: end\ndata: {json.dumps({'state': job.state, 'exit_code': job.exit_code})}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.to_thread(job.wait_for_change, seen, 1.0)
            yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


@router.post("/cases/{case_id}/override")
async def override(request: Request, case_id: int) -> Response:
    info = await require_csrf(request)
    need(info, "case.override")
    form = await request.form()
    verdict = str(form.get("verdict", ""))
    reason = str(form.get("reason", "")).strip()
    try:
        if not reason:
            raise TestError("an override needs a reason")
        request.app.state.store.override_verdict(case_id, verdict, reason=reason, actor=info.user.name)
    except (TestError, ValueError) as exc:
        return render(request, "error.html", 400, title="Verdict not overridden", message=str(exc))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/resolve")
async def resolve(request: Request, case_id: int) -> Response:
    info = await require_csrf(request)
    need(info, "case.resolve")
    form = await request.form()
    try:
        request.app.state.store.set_case_state(
            case_id, str(form.get("state", "")), note=str(form.get("note", "")).strip(), actor=info.user.name
        )
    except (TestError, ValueError) as exc:
        return render(request, "error.html", 400, title="Case not moved", message=str(exc))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _report_case(request: Request, case_id: int) -> dict[str, Any] | None:
    with request.app.state.store.session() as s:
        case = queries.get_case(s, case_id)
        if case is None:
            return None
        case["photos"] = data.case_photos(s, case_id)
        arts = data.artifacts_by_id(s, [e["artifact_id"] for e in case["evidence"] if e["artifact_id"]])
    for e in case["evidence"]:
        e["artifact"] = arts.get(e["artifact_id"]) if e["artifact_id"] else None
    return case


def _report_html(request: Request, case: dict[str, Any], *, embed: bool) -> str:
    """The report's HTML: linked to the app's files, or self-contained (stylesheet and images inlined)."""
    from lab.web.pdf import data_uri

    store = request.app.state.store

    def src(sha256: str, name: str, media_type: str = "image/png") -> str:
        if embed:
            return data_uri(store.artifacts.path_of(sha256), media_type)
        return f"/artifacts/{sha256}/{name}"

    css = (Path(__file__).parent / "static" / "report.css").read_text() if embed else None
    info = session_of(request)
    return request.app.state.jinja.get_template("report.html").render(
        title=f"Verdict report, case {case['id']}",
        case=case,
        src=src,
        css=css,
        embed=embed,
        printed_by=info.user.name,
        printed_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


@router.get("/cases/{case_id}/report", response_class=HTMLResponse)
async def case_report(request: Request, case_id: int) -> Response:
    """The printable verdict report for the customer (print stylesheet; the browser prints it to PDF)."""
    session_of(request)
    case = _report_case(request, case_id)
    if case is None:
        return render(request, "error.html", 404, title="No such case", message=f"no case {case_id}")
    return HTMLResponse(_report_html(request, case, embed=False))


@router.get("/cases/{case_id}/report.pdf")
async def case_report_pdf(request: Request, case_id: int) -> Response:
    """The verdict report as an A4 PDF, printed by headless Chromium on the server."""
    from starlette.concurrency import run_in_threadpool

    from lab.web.pdf import PdfUnavailable, html_to_pdf

    session_of(request)
    case = _report_case(request, case_id)
    if case is None:
        return render(request, "error.html", 404, title="No such case", message=f"no case {case_id}")
    try:
        pdf = await run_in_threadpool(html_to_pdf, _report_html(request, case, embed=True))
    except PdfUnavailable as exc:
        return render(request, "error.html", 503, title="No PDF", message=str(exc))
    name = f"verdict-case-{case_id}.pdf"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(pdf, media_type="application/pdf", headers=disposition)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    session_of(request)
    with request.app.state.store.session() as s:
        figures = data.dashboard(s)
    return render(request, "dashboard.html", title="Dashboard", d=figures, verdicts=VERDICTS)


# --- runs and audit ------------------------------------------------------------------------------


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request, rig: str = "", outcome: str = "", page: int = 1) -> Response:
    session_of(request)
    with request.app.state.store.session() as s:
        result = data.list_runs(s, rig=rig or None, outcome=outcome or None, page=page)
        rigs = data.rigs_in_db(s)
    return render(request, "runs.html", title="Runs", result=result, rig=rig, outcome=outcome, rigs=rigs)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, entity: str = "", entity_id: str = "", page: int = 1) -> Response:
    session_of(request)
    store = request.app.state.store
    with store.session() as s:
        result = data.audit_page(s, entity=entity or None, entity_id=_int(entity_id), page=page)
    check = store.verify_audit()
    return render(
        request, "audit.html", title="Audit log", result=result, check=check, entity=entity, entity_id=entity_id
    )
