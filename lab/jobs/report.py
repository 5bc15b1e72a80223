"""Reports of a job, all read from the same :class:`~lab.jobs.result.JobResult`: ``summary.md``,
``summary.html``, ``junit.xml`` (every planned test, not-run ones included) and ``job.json``.

Text that came from a box (reasons, test ids) is rendered through :mod:`lab.textsafe`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from lab.jobs.result import JobResult, TestResult
from lab.outcome import EXIT_CODE_TABLE, Outcome
from lab.textsafe import for_html, for_markdown, for_xml

_KIND = {
    Outcome.DEVICE_FAULT: "device fault",
    Outcome.INFRA_ERROR: "infra error",
    Outcome.TEST_ERROR: "test error",
    Outcome.TIMED_OUT: "timed out",
    Outcome.SKIPPED: "skipped",
    Outcome.NOT_RUN: "not run",
}


def _fault(t: TestResult) -> str:
    if t.fault_id is None:
        return ""
    return f"#{t.fault_id} ({'new' if t.fault_new else 'known'})"


def lines(result: JobResult, title: str = "stblab job") -> list[str]:
    """The plain-text summary: the counts line first, then every test that did not pass."""
    code = result.exit_code()
    name = next(n for c, n, _ in EXIT_CODE_TABLE if c == int(code))
    stopped = f"; stopped: {result.stopped}" if result.stopped else ""
    out = [result.first_line(), f"{title}: exit {int(code)} ({name}){stopped}"]
    for r in result.rigs:
        info = ", ".join(f"{k}={v}" for k, v in r.info.items())
        out.append(f"rig {r.rig}: {r.ended}" + (f"; {info}" if info else ""))
        for nodeid, why in r.left_out.items():
            out.append(f"  left out of the plan: {nodeid}: {why}")
    for p in result.problems:
        out.append(f"  {_KIND.get(p.outcome, p.outcome.value)}: {p.nodeid}: {p.reason}")
    for rig, t in result.tests():
        if t.outcome.good:
            continue
        where = f" ({t.instrument})" if t.instrument else ""
        fault = f" fault {_fault(t)}" if t.fault_id is not None else ""
        rep = f" [reproduced {t.reproduction}]" if t.reproduction else ""
        out.append(f"  {_KIND[t.outcome]}{where}{fault}: {t.nodeid} on {rig}: {t.reason}{rep}")
    return out


def write_markdown(result: JobResult, path: Path, title: str) -> None:
    """``summary.md``: the counts line, then a table of every test that did not pass."""
    md = [f"# {for_markdown(title)}", "", for_markdown(result.first_line()), ""]
    stopped = f", stopped: {for_markdown(result.stopped)}" if result.stopped else ""
    md += [f"- exit code {int(result.exit_code())}{stopped}"]
    md += ["", "| outcome | rig | test | fault | reason | evidence |", "|---|---|---|---|---|---|"]
    for rig, t in result.tests():
        if t.outcome.good:
            continue
        ev = ", ".join(for_markdown(Path(e).name) for e in t.evidence)
        cells = [t.outcome.value, rig, t.nodeid, _fault(t), t.reason]
        md.append("| " + " | ".join(for_markdown(c) for c in cells) + f" | {ev} |")
    path.write_text("\n".join(md) + "\n", encoding="utf-8")


def write_html(result: JobResult, path: Path, title: str) -> None:
    """``summary.html``: a small self-contained page with links to each failure's evidence."""
    rows = []
    for rig, t in result.tests():
        if t.outcome.good:
            continue
        links = []
        for e in t.evidence:
            p = Path(e)
            files = sorted(p.iterdir()) if p.is_dir() else [p]
            for f in files:
                rel = f.relative_to(path.parent) if f.is_relative_to(path.parent) else f
                links.append(f'<a href="{for_html(rel)}">{for_html(f.name)}</a>')
        cells = [_KIND[t.outcome], rig, t.nodeid, _fault(t), t.reproduction or "", t.reason]
        rows.append("<tr>" + "".join(f"<td>{for_html(c)}</td>" for c in cells) + f"<td>{' '.join(links)}</td></tr>")
    rigs = "".join(
        f"<tr><td>{for_html(r.rig)}</td><td>{for_html(r.counts_line())}</td><td>{for_html(r.ended)}</td>"
        f"<td>{for_html(', '.join(f'{k}={v}' for k, v in r.info.items()))}</td></tr>"
        for r in result.rigs
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{for_html(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
table{{border-collapse:collapse;margin-bottom:1.5em}}</style></head><body>
<h1>{for_html(title)}</h1>
<p>{for_html(result.first_line())} &mdash; exit code <b>{int(result.exit_code())}</b>
{f"&mdash; stopped: {for_html(result.stopped)}" if result.stopped else ""}</p>
<h2>Rigs</h2><table><tr><th>rig</th><th>counts</th><th>ended</th><th>box</th></tr>{rigs}</table>
<h2>Tests that did not pass</h2><table><tr><th>outcome</th><th>rig</th><th>test</th><th>fault</th>
<th>reproduced</th><th>reason</th><th>evidence</th></tr>{"".join(rows)}</table>
<p>JUnit: <code>junit.xml</code> (and per rig <code>&lt;rig&gt;/junit.xml</code>); Allure:
<code>allure serve allure-results</code></p></body></html>
"""
    path.write_text(page, encoding="utf-8")


def write_junit(result: JobResult, path: Path, label: str) -> None:
    """``junit.xml`` of the whole job: every planned test of every rig, with its Outcome as a property.

    device_fault is a ``failure``; infra_error, test_error and timed_out are ``error``; skipped and
    not_run are ``skipped`` with their reason (never a pass)."""
    suites = ET.Element("testsuites")
    for r in result.rigs:
        suite = ET.SubElement(suites, "testsuite", name=f"{label}-{r.rig}", tests=str(len(r.tests)))
        fails = errors = skips = 0
        for t in r.tests:
            path_part, _, name = t.nodeid.rpartition("::")
            case = ET.SubElement(suite, "testcase", classname=for_xml(path_part or r.rig),
                                 name=for_xml(name or t.nodeid), time=f"{t.duration:.3f}")  # fmt: skip
            props = ET.SubElement(case, "properties")
            for k, v in (("rig", r.rig), ("stblab_outcome", t.outcome.value), ("stblab_reason", t.reason),
                         ("instrument", t.instrument), ("fault_id", t.fault_id)):  # fmt: skip
                if v not in (None, ""):
                    ET.SubElement(props, "property", name=k, value=for_xml(v))
            if t.outcome is Outcome.DEVICE_FAULT:
                ET.SubElement(case, "failure", message=for_xml(t.reason, limit=2000))
                fails += 1
            elif t.outcome in (Outcome.INFRA_ERROR, Outcome.TEST_ERROR, Outcome.TIMED_OUT):
                ET.SubElement(case, "error", type=t.outcome.value, message=for_xml(t.reason, limit=2000))
                errors += 1
            elif t.outcome in (Outcome.SKIPPED, Outcome.NOT_RUN):
                ET.SubElement(case, "skipped", type=t.outcome.value, message=for_xml(t.reason, limit=2000))
                skips += 1
        suite.set("failures", str(fails))
        suite.set("errors", str(errors))
        suite.set("skipped", str(skips))
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def write_all(result: JobResult, title: str, label: str = "stblab") -> None:
    """Write ``job.json``, ``summary.md``, ``summary.html`` and ``junit.xml`` into the run folder."""
    result.write()
    write_markdown(result, result.run_dir / "summary.md", title)
    write_html(result, result.run_dir / "summary.html", title)
    write_junit(result, result.run_dir / "junit.xml", label)


__all__ = ["lines", "write_all", "write_html", "write_junit", "write_markdown"]
