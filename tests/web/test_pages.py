"""Pages and the JSON API through FastAPI's test client: what each role sees and may change."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import csrf_of


def test_fault_list_filters_and_fault_page_show_evidence(login, lab_db) -> None:  # noqa: ANN001
    c = login("viewer")
    page = c.get("/faults")
    assert page.status_code == 200
    f1, f2 = lab_db["faults"]
    assert f'href="/faults/{f1}"' in page.text and f'href="/faults/{f2}"' in page.text
    only = c.get("/faults", params={"firmware": "2.2.0"})
    assert f'href="/faults/{f1}"' in only.text and f'href="/faults/{f2}"' not in only.text
    assert c.get("/faults", params={"model": "STB-4K-X1"}).text.count('<tr class="status-open">') == 2
    assert "No fault matches" in c.get("/faults", params={"model": "STB-OTHER"}).text
    none = c.get("/faults", params={"q": "no such title at all"})
    assert "No fault matches" in none.text
    fault = c.get(f"/faults/{f1}")
    assert fault.status_code == 200
    assert re.search(r"<td>2\.1\.0</td><td>b210</td><td class=\"num\">1</td>", fault.text)
    assert re.search(r"<td>2\.2\.0</td><td>b220</td><td class=\"num\">1</td>", fault.text)
    img = re.search(r'<img src="(/artifacts/[0-9a-f]{64}/frame\.png)"', fault.text).group(1)
    got = c.get(img)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png" and got.content[:4] == b"\x89PNG"
    api = c.get(f"/api/faults/{f1}").json()
    assert api["id"] == f1 and {r["firmware"] for r in api["per_firmware"]} == {"2.1.0", "2.2.0"}
    assert "Change status" not in fault.text  # a viewer has no form for it


def test_triage_changes_a_fault_status_and_the_audit_log_names_them(login, lab_db) -> None:  # noqa: ANN001
    c = login("triage")
    f1 = lab_db["faults"][0]
    token = csrf_of(c.get(f"/faults/{f1}").text)
    r = c.post(f"/faults/{f1}/status", data={"csrf": token, "action": "fixed", "version": "2.3.0", "note": "patch"})
    assert r.status_code == 303
    assert c.get(f"/api/faults/{f1}").json()["status"] == "fixed"
    audit = c.get("/api/audit").json()
    assert audit["chain"]["ok"]
    assert any(e["actor"] == "triage" and e["entity"] == "fault" and e["entity_id"] == f1 for e in audit["entries"])
    page = c.get("/audit")
    assert "Hash chain holds" in page.text


def test_viewer_may_not_change_a_fault_nor_override_a_verdict(login, lab_db) -> None:  # noqa: ANN001
    c = login("viewer")
    token = csrf_of(c.get("/faults").text)
    r = c.post(f"/faults/{lab_db['faults'][0]}/status", data={"csrf": token, "action": "invalid", "note": "x"})
    assert r.status_code == 403
    r = c.post(f"/cases/{lab_db['case']}/override", data={"csrf": token, "verdict": "no_fault_found", "reason": "r"})
    assert r.status_code == 403
    assert c.get(f"/api/cases/{lab_db['case']}").json()["verdict"]["verdict"] == "user_damage"


def test_warranty_receives_a_unit_with_a_photo_overrides_and_resolves(login, lab_db) -> None:  # noqa: ANN001
    c = login("warranty")
    token = csrf_of(c.get("/cases/new").text)
    png = (lab_db["tmp"] / "k1.png").read_bytes()
    r = c.post(
        "/cases",
        data={"csrf": token, "serial": "SN-NEW01", "model": "STB-4K-X1", "complaint": "dead", "received": "2026-12-01"},
        files={"photos": ("front.png", png, "image/png")},
    )
    assert r.status_code == 303, r.text
    new = int(r.headers["location"].rsplit("/", 1)[1])
    case = c.get(f"/api/cases/{new}").json()
    assert case["device"] == "SN-NEW01" and case["photos"][0]["name"] == "front.png"
    assert c.get(f"/artifacts/{case['photos'][0]['sha256']}/front.png").content == png
    old = lab_db["case"]
    empty = c.post(f"/cases/{old}/override", data={"csrf": token, "verdict": "no_fault_found", "reason": "  "})
    assert empty.status_code == 400 and "reason" in empty.text
    ok = c.post(f"/cases/{old}/override", data={"csrf": token, "verdict": "no_fault_found", "reason": "PSU tested"})
    assert ok.status_code == 303
    shown = c.get(f"/api/cases/{old}").json()
    assert shown["verdict"]["verdict"] == "no_fault_found" and shown["verdict"]["decided_by"] == "warranty"
    assert shown["verdict"]["override_reason"] == "PSU tested"
    assert c.post(f"/cases/{old}/resolve", data={"csrf": token, "state": "closed"}).status_code == 303
    assert c.get(f"/api/cases/{old}").json()["state"] == "closed"
    report = c.get(f"/cases/{old}/report")
    assert "NO FAULT FOUND" in report.text and "PSU tested" in report.text


def test_upload_that_is_not_an_image_is_refused(login) -> None:  # noqa: ANN001
    c = login("warranty")
    token = csrf_of(c.get("/cases/new").text)
    r = c.post(
        "/cases",
        data={"csrf": token, "serial": "SN-X", "complaint": "dead"},
        files={"photos": ("x.html", b"<script>alert(1)</script>", "text/html")},
    )
    assert r.status_code == 400 and "not a PNG" in r.text


def test_runs_page_links_runs_to_their_faults(login, lab_db) -> None:  # noqa: ANN001
    c = login("viewer")
    page = c.get("/runs")
    assert page.status_code == 200
    assert f'href="/faults/{lab_db["faults"][0]}"' in page.text
    assert len(c.get("/api/runs").json()["runs"]) == 3


def test_dashboard_counts_faults_per_firmware_and_verdicts_per_model(login, lab_db) -> None:  # noqa: ANN001
    c = login("viewer")
    page = c.get("/dashboard")
    assert page.status_code == 200 and 'id="chart-firmware"' in page.text
    d = c.get("/api/dashboard").json()
    assert {r["version"]: r["seen"] for r in d["per_firmware"]} == {"2.1.0": 2, "2.2.0": 1}
    assert d["verdict_mix"][0]["model"] == "STB-4K-X1" and d["verdict_mix"][0]["counts"] == {"user_damage": 1}
    assert sum(d["rates"]) + d["unmeasured"] == 2


@pytest.mark.real_peer
def test_verdict_report_pdf_is_printed_by_chromium_with_the_photo_inside(login, lab_db) -> None:  # noqa: ANN001
    import shutil

    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    c = login("warranty")
    token = csrf_of(c.get("/cases/new").text)
    png = (lab_db["tmp"] / "k1.png").read_bytes()
    r = c.post(
        "/cases",
        data={"csrf": token, "serial": "SN-PDF01", "complaint": "no picture"},
        files={"photos": ("front.png", png, "image/png")},
    )
    case = int(r.headers["location"].rsplit("/", 1)[1])
    pdf = c.get(f"/cases/{case}/report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content[:5] == b"%PDF-" and b"/Image" in pdf.content  # the photo is in it
    assert f'filename="verdict-case-{case}.pdf"' in pdf.headers["content-disposition"]


def test_openapi_describes_the_api_behind_the_login(login) -> None:  # noqa: ANN001
    spec = login("viewer").get("/api/openapi.json").json()
    assert {"/api/faults", "/api/faults/{fault_id}", "/api/cases/{case_id}", "/api/audit"} <= set(spec["paths"])
    assert spec["paths"]["/api/faults"]["get"]["summary"]
