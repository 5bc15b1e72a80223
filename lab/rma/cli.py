"""``stblab rma``: faults, occurrences, cases and titles from the RMA database.

Every listing takes ``--json`` (exact stored values, for scripts) and filters; ``--db URL|PATH``
picks the database (default ``$STBLAB_RMA_URL``, else ``reports/rma.sqlite``). In the human
output, control characters of stored strings (terminal escape sequences from a console log, say)
are shown escaped (``\\x1b[2J``), never sent to the terminal.

Examples::

    stblab rma faults --status open --since 7d
    stblab rma fault 12 --json
    stblab rma occurrences --device SN-A0001 --firmware 2.1.0
    stblab rma title reports/run1/stb-a/console.log          # which fault is this?
    cat console.log | stblab rma title - --json
    stblab rma retitle --dry-run                             # what would the current algorithm change?
    stblab rma retitle --actor alice                         # split and merge faults, one audited step
    stblab rma fix 12 2.1.1 --actor alice                    # fixed in 2.1.1
    stblab rma case 3

    stblab rma audit --head                                   # SEQ:HASH of the audit chain: keep it elsewhere
    stblab rma audit --expect-head 812:3f9c...                # check the log against a kept head
    stblab rma grants lab_user                                # PostgreSQL GRANTs for the lab's role

Exit codes: 0 ok, 1 not found, 2 bad arguments, 3 database unreachable. ``rma audit`` uses the
shared table (lab.outcome): 0 intact, 1 tampering found, 2 database unreachable, 4 bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import typer

from lab.errors import InfraError, TestError
from lab.textsafe import DEFAULT_LIMIT, for_terminal

app = typer.Typer(
    help="RMA database: faults, occurrences, cases, titles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOpt = typer.Option(None, "--db", help="database URL or SQLite path (default $STBLAB_RMA_URL or reports/rma.sqlite)")
JsonOpt = typer.Option(False, "--json", help="print JSON")
SinceOpt = typer.Option(None, "--since", help="ISO date/time (UTC) or a span back from now: 30m, 24h, 7d")
LimitOpt = typer.Option(100, "--limit", min=1, help="at most this many rows")
MAX_ID = 2**63 - 1  # the largest id either backend stores: a bigger one is a typo, not a lookup


def safe(text: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """Text with control characters escaped (lab.textsafe), so a stored string cannot drive the terminal.

    Beyond :func:`lab.textsafe.for_terminal`, other characters that print nothing (zero-width
    spaces and the like) are shown as ``\\uXXXX`` too, so two titles that look alike are told apart.
    """
    s = for_terminal(text, markup=False, limit=limit)
    return "".join(ch if ch.isprintable() or ch in " \t\n" else f"\\u{ord(ch):04x}" for ch in s)


def _cell(text: object, width: int) -> str:
    s = safe(text).replace("\n", "\\n")
    return s if len(s) <= width else s[: width - 1] + "…"


def parse_since(value: str | None) -> dt.datetime | None:
    """``7d`` / ``24h`` / ``30m`` back from now, or an ISO date/time (taken as UTC)."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", value)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        secs = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
        try:
            return now - dt.timedelta(seconds=n * secs)
        except OverflowError:
            raise typer.BadParameter(f"{value!r} reaches back before year 1") from None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither an ISO date/time nor a span like 7d, 24h, 30m") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def _store(db: str | None) -> Any:
    from lab.rma.store import RmaStore

    try:
        store = RmaStore(db)
    except ValueError as exc:
        _fail(str(exc), 2)
    _OPENED.append(store)
    return store


_OPENED: list[Any] = []  # stores opened by this command: their connections are closed after each _run


def _fail(message: str, code: int) -> None:
    typer.echo(f"stblab rma: {safe(message)}", err=True)
    raise typer.Exit(code)


def _run(fn: Any) -> Any:
    from sqlalchemy.exc import DatabaseError  # here: `stblab rma --help` and bad options need no SQLAlchemy

    try:
        return fn()
    except InfraError as exc:
        _fail(exc.message, 3)
    except TestError as exc:
        _fail(str(exc), 2)
    except DatabaseError as exc:  # e.g. --db names a file that is not an SQLite database
        _fail(f"not a usable RMA database: {exc.orig or exc}", 2)
    finally:
        while _OPENED:
            _OPENED.pop().close()  # dispose of the engine's pool (it stays usable if asked again)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, int]]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = []
    for key, head, maxw in columns:
        w = max([len(head)] + [len(_cell(r.get(key), maxw)) for r in rows])
        widths.append(min(w, maxw))
    typer.echo("  ".join(h.ljust(w) for (_, h, _), w in zip(columns, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo(
            "  ".join(_cell(r.get(k), m).ljust(w) for (k, _, m), w in zip(columns, widths, strict=True)).rstrip()
        )


@app.command()
def faults(
    status: str = typer.Option(None, "--status", help="open, fixed, invalid or duplicate"),
    firmware: str = typer.Option(None, "--firmware", help="seen on this firmware version"),
    model: str = typer.Option(None, "--model", help="seen on this device model"),
    since: str = SinceOpt,
    limit: int = LimitOpt,
    as_json: bool = JsonOpt,
    db: str = DbOpt,
) -> None:
    """List faults, most recently seen first."""
    when = parse_since(since)
    store = _store(db)
    rows = _run(lambda: store.faults(status=status, firmware=firmware, model=model, since=when, limit=limit))
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        rep = r["reproduction"]
        r["repro"] = f"{rep['hits']}/{rep['runs']}" if rep else "-"
        r["state"] = r["status"] + (" (regression)" if r["regression"] else "")
        r["seen"] = (r["last_seen"] or "")[:19]
    _table(
        rows,
        [
            ("id", "ID", 8),
            ("state", "STATUS", 20),
            ("occurrences", "COUNT", 8),
            ("repro", "REPRO", 6),
            ("seen", "LAST SEEN", 19),
            ("title", "TITLE", 90),
        ],
    )


@app.command()
def fault(
    fault_id: int = typer.Argument(..., min=1, max=MAX_ID, help="fault id"),
    occurrences: int = typer.Option(20, "--occurrences", min=0, help="how many recent occurrences to show"),
    as_json: bool = JsonOpt,
    db: str = DbOpt,
) -> None:
    """Show one fault: status, signatures, reproduction, where it was seen, recent occurrences."""
    store = _store(db)
    data = _run(lambda: store.fault(fault_id, occurrences=occurrences))
    if data is None:
        _fail(f"no fault with id {fault_id}", 1)
    if as_json:
        _print_json(data)
        return
    out = [f"fault {data['id']}: {safe(data['title'])}"]
    status = data["status"] + (" (regression)" if data["regression"] else "")
    if data["fixed_in"]:
        status += f", fixed in {safe(data['fixed_in'])}"
    if data["duplicate_of"]:
        status += f", duplicate of {data['duplicate_of']}"
    out.append(f"  status       {status}")
    out.append(f"  kind         {safe(data['kind'])}")
    out.append(f"  occurrences  {data['occurrences']} on {data['rigs']} rigs, {data['devices']} devices")
    out.append(f"  firmware     {', '.join(safe(v) for v in data['firmware_versions']) or '-'}")
    out.append(f"  first seen   {data['first_seen']}")
    out.append(f"  last seen    {data['last_seen']}")
    rep = data["reproduction"]
    if rep:
        out.append(f"  reproduction {rep['hits']} of {rep['runs']} ({rep['rate']:.2f}): {rep['verdict']}")
    out.append("  signatures")
    for s in data["signatures"]:
        out.append(f"    {s['hash'][:16]} v{s['algorithm_version']} {s['role']:<11} {safe(s['title'])}")
    typer.echo("\n".join(out))
    if data["recent_occurrences"]:
        typer.echo("  recent occurrences")
        for o in data["recent_occurrences"]:
            typer.echo(
                f"    #{o['id']} {(o['seen_at'] or '')[:19]} {safe(o['rig'])} {safe(o['device'])} "
                f"fw {safe(o['firmware'] or '-')} {safe(o['test_id'])}"
            )
            if o["message"]:
                typer.echo(f"      message: {safe(o['message'])}")
            for a in o.get("artifacts", []):
                typer.echo(f"      artifact {safe(a['name'])} sha256:{a['sha256']} {a['size']} bytes")


@app.command()
def occurrences(
    fault_id: int = typer.Option(None, "--fault", min=1, max=MAX_ID, help="of this fault"),
    device: str = typer.Option(None, "--device", help="of this device serial number"),
    status: str = typer.Option(None, "--status", help="whose fault has this status"),
    firmware: str = typer.Option(None, "--firmware", help="on this firmware version"),
    model: str = typer.Option(None, "--model", help="on this device model"),
    since: str = SinceOpt,
    limit: int = LimitOpt,
    as_json: bool = JsonOpt,
    db: str = DbOpt,
) -> None:
    """List occurrences, newest first."""
    when = parse_since(since)
    store = _store(db)
    rows = _run(
        lambda: store.occurrences(
            fault_id=fault_id, device=device, status=status, firmware=firmware, model=model, since=when, limit=limit
        )
    )
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        r["seen"] = (r["seen_at"] or "")[:19]
    _table(
        rows,
        [
            ("id", "ID", 8),
            ("fault_id", "FAULT", 6),
            ("seen", "SEEN", 19),
            ("rig", "RIG", 16),
            ("device", "DEVICE", 16),
            ("firmware", "FIRMWARE", 12),
            ("test_id", "TEST", 60),
        ],
    )


@app.command()
def cases(
    state: str = typer.Option(None, "--state", "--status", help="received, diagnosing, diagnosed, ..., closed"),
    model: str = typer.Option(None, "--model", help="device model"),
    device: str = typer.Option(None, "--device", help="device serial number"),
    since: str = SinceOpt,
    limit: int = LimitOpt,
    as_json: bool = JsonOpt,
    db: str = DbOpt,
) -> None:
    """List RMA cases, newest first, with their current verdict."""
    when = parse_since(since)
    store = _store(db)
    rows = _run(lambda: store.cases(state=state, model=model, device=device, since=when, limit=limit))
    if as_json:
        _print_json(rows)
        return
    _table(
        rows,
        [
            ("id", "ID", 8),
            ("state", "STATE", 11),
            ("device", "DEVICE", 16),
            ("model", "MODEL", 14),
            ("received", "RECEIVED", 10),
            ("verdict", "VERDICT", 20),
            ("complaint", "COMPLAINT", 60),
        ],
    )


@app.command()
def case(
    case_id: int = typer.Argument(..., min=1, max=MAX_ID, help="case id"), as_json: bool = JsonOpt, db: str = DbOpt
) -> None:
    """Show one RMA case: device, state, the verdict and the evidence behind it, verdict history."""
    store = _store(db)
    data = _run(lambda: store.case(case_id))
    if data is None:
        _fail(f"no RMA case with id {case_id}", 1)
    if as_json:
        _print_json(data)
        return
    info = data["device_info"]
    lines = [
        f"case {data['id']}: {safe(data['device'])} ({safe(data['model'])}), state {data['state']}",
        f"  received     {data['received']}",
        f"  complaint    {safe(data['complaint'])}",
        f"  device       rev {safe(info['hardware_revision'] or '-')}, lot {safe(info['production_lot'] or '-')}, "
        f"warranty end {info['warranty_end'] or '-'}",
    ]
    v = data["verdict"]
    if v is None:
        lines.append("  verdict      (none yet)")
    else:
        lines.append(f"  verdict      {v['verdict']} (rules {safe(v['rule_set_version'])}, by {safe(v['decided_by'])})")
        if v["override_reason"]:
            lines.append(f"  override     {safe(v['override_reason'])}")
        lines.append(f"  justification {safe(v['justification'])}")
        lines.append("  evidence used")
        for e in v.get("evidence_rows", []):
            lines.append(f"    #{e['id']} {safe(e['kind'])}: {safe(e['value'])} (from {safe(e['source'])})")
    other = [e for e in data["evidence"] if v is None or e["id"] not in set(v["evidence"])]
    if other:
        lines.append("  other evidence")
        for e in other:
            lines.append(f"    #{e['id']} {safe(e['kind'])}: {safe(e['value'])} (from {safe(e['source'])})")
    if len(data["verdicts"]) > 1:
        lines.append("  verdict history")
        for h in data["verdicts"]:
            lines.append(f"    #{h['id']} {h['created_at'][:19]} {h['verdict']} by {safe(h['decided_by'])}")
    typer.echo("\n".join(lines))


@app.command()
def title(
    logfiles: list[str] = typer.Argument(..., help="console log files; - reads standard input"),
    as_json: bool = JsonOpt,
) -> None:
    """Print what filing would make of each console log: title, kind, guilty frame, corrupted, fingerprint."""
    from lab.rma.fingerprint import fingerprint_log

    results = []
    for name in logfiles:
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            _fail(f"cannot read {name}: {exc.strerror or exc}", 2)
        fp = fingerprint_log(raw.decode("utf-8", errors="replace"))
        entry: dict[str, Any] = {"file": name}
        if fp is None:
            entry.update({"kind": None, "title": None, "guilty_frame": None, "corrupted": False})
            entry.update({"alternatives": [], "fingerprint": None})
        else:
            entry.update(fp.as_dict())
        results.append(entry)
    if as_json:
        _print_json(results)
        return
    for e in results:
        typer.echo(f"{safe(e['file'])}:")
        if e["title"] is None:
            typer.echo("  no crash found (no kernel report, panic, watchdog reset, OOM kill or user-space crash)")
            continue
        typer.echo(f"  title        {safe(e['title'])}")
        typer.echo(f"  kind         {safe(e['kind'])}")
        typer.echo(f"  guilty frame {safe(e['guilty_frame'] or '-')}")
        if e["corrupted"]:
            typer.echo("  corrupted    yes: the report was cut off before what names the bug; it files apart")
        for alt in e["alternatives"]:
            typer.echo(f"  alternative  {safe(alt)}")
        typer.echo(f"  fingerprint  {e['fingerprint']} (algorithm v{e['algorithm_version']})")


@app.command()
def retitle(
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would change, change nothing"),
    actor: str = typer.Option(None, "--actor", help="who re-titles (goes to the audit log); needed unless --dry-run"),
    as_json: bool = JsonOpt,
    db: str = DbOpt,
) -> None:
    """Re-title stored faults with the current fingerprint algorithm (faults split or merge; one audited step)."""
    from lab.rma import retitle as rt

    if not dry_run and not (actor and actor.strip()):
        _fail("retitle changes faults: name who does it with --actor (or look first with --dry-run)", 2)
    store = _store(db)

    def run() -> tuple[Any, dict[str, Any] | None]:
        if dry_run:
            with store.session() as s:  # read only: closing the session rolls back
                return rt.plan(s), None
        with store.session() as s, s.begin():
            p = rt.plan(s)
            return p, rt.apply(s, p, actor=actor.strip())

    p, done = _run(run)
    if as_json:
        _print_json({"dry_run": dry_run, "plan": p.as_dict(), "applied": done})
        return
    typer.echo(f"re-title with fingerprint algorithm v{p.as_dict()['algorithm_version']}: {p.examined} occurrences")
    splits = p.splits()
    for fid, groups in splits.items():
        typer.echo(f"  fault {fid} splits: {safe(p.titles.get(fid, ''))}")
        for g in groups:
            to = f"fault {g.target}" if g.target else "a new fault"
            typer.echo(f"    {g.from_faults[fid]:>5} occurrences -> {to}: {safe(g.fingerprint.title)}")
    for g in p.merges():
        faults_ = ", ".join(str(f) for f in sorted(g.from_faults))
        to = f"fault {g.target}" if g.target else "a new fault"
        typer.echo(f"  faults {faults_} merge into {to}: {safe(g.fingerprint.title)}")
    for g in p.changes:
        if g.target and set(g.from_faults) == {g.target}:
            typer.echo(f"  fault {g.target} retitled: {safe(p.titles[g.target])} -> {safe(g.fingerprint.title)}")
    if not p.changes:
        typer.echo("  nothing to change: every fault already has its current title")
    elif dry_run:
        typer.echo("dry run: nothing changed")
    elif done is not None:
        typer.echo(
            f"applied: {len(done['retitled'])} faults retitled, {done['moved']} occurrences moved, "
            f"{len(done['created'])} faults created, {len(done.get('merged', []))} merged (one audit entry)"
        )


@app.command()
def device(
    serial: str = typer.Argument(..., help="device serial number"),
    limit: int = typer.Option(1000, "--limit", min=1),
    as_json: bool = JsonOpt,
    db: str = DbOpt,
) -> None:
    """Everything filed against one device, newest first."""
    store = _store(db)
    rows = _run(lambda: store.device_history(serial, limit=limit))
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        r["seen"] = (r["seen_at"] or "")[:19]
    _table(
        rows,
        [
            ("id", "ID", 8),
            ("fault_id", "FAULT", 6),
            ("seen", "SEEN", 19),
            ("rig", "RIG", 16),
            ("firmware", "FIRMWARE", 12),
            ("title", "TITLE", 80),
        ],
    )


@app.command()
def fix(
    fault_id: int = typer.Argument(..., min=1, max=MAX_ID),
    version: str = typer.Argument(..., help="first firmware version with the fix"),
    actor: str = typer.Option(..., "--actor", help="who says so (goes to the audit log)"),
    note: str = typer.Option("", "--note"),
    db: str = DbOpt,
) -> None:
    """Mark a fault fixed in VERSION; seen again on VERSION or later, it reopens as a regression."""
    store = _store(db)
    _run(lambda: store.mark_fixed(fault_id, version, actor=actor, note=note))
    typer.echo(f"fault {fault_id} fixed in {safe(version)}")


@app.command()
def invalid(
    fault_id: int = typer.Argument(..., min=1, max=MAX_ID),
    reason: str = typer.Option(..., "--reason"),
    actor: str = typer.Option(..., "--actor"),
    db: str = DbOpt,
) -> None:
    """Mark a fault invalid (not a device bug), with a reason."""
    store = _store(db)
    _run(lambda: store.mark_invalid(fault_id, reason, actor=actor))
    typer.echo(f"fault {fault_id} invalid")


@app.command()
def duplicate(
    fault_id: int = typer.Argument(..., min=1, max=MAX_ID),
    of: int = typer.Argument(..., min=1, max=MAX_ID, help="the fault it duplicates"),
    actor: str = typer.Option(..., "--actor"),
    db: str = DbOpt,
) -> None:
    """Mark a fault a duplicate of another; its later occurrences are filed there."""
    store = _store(db)
    _run(lambda: store.mark_duplicate(fault_id, of, actor=actor))
    typer.echo(f"fault {fault_id} is a duplicate of {of}")


@app.command()
def reopen(
    fault_id: int = typer.Argument(..., min=1, max=MAX_ID),
    actor: str = typer.Option(..., "--actor"),
    reason: str = typer.Option("", "--reason"),
    db: str = DbOpt,
) -> None:
    """Reopen a fault."""
    store = _store(db)
    _run(lambda: store.reopen(fault_id, reason, actor=actor))
    typer.echo(f"fault {fault_id} open")


@app.command()
def replay(db: str = DbOpt) -> None:
    """File what waits in the local journal (filings made while the database was unreachable)."""
    store = _store(db)
    done, left = _run(store.replay_journal)
    typer.echo(f"journal {store.journal.path}: {done} filed, {left} waiting")
    if left:
        raise typer.Exit(3)


@app.command()
def audit(
    db: str = DbOpt,
    as_json: bool = JsonOpt,
    head: bool = typer.Option(False, "--head", help="print the chain's head as SEQ:HASH (keep it elsewhere, e.g. CI)"),
    expect_head: str = typer.Option(None, "--expect-head", help="SEQ:HASH recorded earlier: check the log against it"),
    head_file: Path = typer.Option(None, "--head-file", help="the head file (default: beside the database)"),
) -> None:
    """Check the audit log: hash chain, row counters, audited rows, and the head anchored outside the database.

    Exit codes (the shared table): 0 intact; 1 tampering found (each problem named); 2 database
    unreachable; 4 bad --expect-head.
    """
    from sqlalchemy.exc import DatabaseError

    from lab.outcome import ExitCode
    from lab.rma.audit import parse_head

    want = None
    if expect_head is not None:
        try:
            want = parse_head(expect_head)
        except ValueError as exc:
            _fail(f"--expect-head: {exc}", int(ExitCode.BAD_INPUT))
    store = _store(db)
    try:
        check = store.verify_audit(expect_head=want, head_file=head_file)
    except InfraError as exc:
        _fail(exc.message, int(ExitCode.INFRA_ERROR))
    except DatabaseError as exc:
        _fail(f"not a usable RMA database: {exc.orig or exc}", int(ExitCode.BAD_INPUT))
    finally:
        while _OPENED:
            _OPENED.pop().close()
    if head:
        typer.echo(f"{check.head[0]}:{check.head[1]}" if check.head else "0:" + "0" * 64)
    elif as_json:
        _print_json(check.as_dict())
    else:
        anchor = head_file or store.audit_head_path
        state = "chain intact" if check else f"BROKEN ({len(check.problems)} problems)"
        typer.echo(f"audit log: {check.entries} entries, {state}; anchor {safe(anchor)}")
        for problem in check.problems:
            typer.echo(f"  - {safe(problem)}")
        for note in check.notes:
            typer.echo(f"  note: {safe(note)}")
    if not check:
        if head or as_json:
            typer.echo(f"stblab rma audit: BROKEN: {safe(check.problem)}", err=True)
        raise typer.Exit(int(ExitCode.DEVICE_FAULT))


@app.command()
def grants(role: str = typer.Argument(..., help="the PostgreSQL role the lab files with")) -> None:
    """Print the PostgreSQL GRANTs recommended for the lab's user (insert, never update or delete audit rows)."""
    from lab.rma.grants import recommended_grants

    try:
        typer.echo(recommended_grants(role), nl=False)
    except ValueError as exc:
        _fail(str(exc), 4)
