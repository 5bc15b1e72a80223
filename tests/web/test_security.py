"""Security of the web app: nothing without a session, CSRF on every POST, escaping of device and user
text, no path traversal to files, cookie flags, login rate limiting, no secret in logs or pages."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route

from tests.web.conftest import NASTY, PASSWORD, csrf_of, login_csrf

OPEN = {"/login", "/static"}


def _routes(app, method: str) -> list[str]:  # noqa: ANN001
    out = []
    for r in app.routes:
        if isinstance(r, Route) and method in (r.methods or set()) and r.path not in OPEN:
            out.append(re.sub(r"\{sha256\}", "a" * 64, re.sub(r"\{[a-z_]+\}", "1", r.path)))
    return out


def test_every_route_without_a_session_redirects_to_login_or_answers_401(app) -> None:  # noqa: ANN001
    client = TestClient(app, follow_redirects=False)
    gets, posts = _routes(app, "GET"), _routes(app, "POST")
    assert len(gets) >= 15 and len(posts) >= 6
    for path in gets:
        r = client.get(path)
        if path.startswith("/api/"):
            assert r.status_code == 401, path
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for path in posts:
        assert client.post(path, data={"csrf": "x"}).status_code == 401, path
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 404


def test_every_post_without_the_csrf_token_is_refused(login, app, lab_db) -> None:  # noqa: ANN001
    c = login("admin")
    for path in _routes(app, "POST"):
        if path == "/login":
            continue
        assert c.post(path, data={"action": "reopen", "state": "closed"}).status_code == 403, path
        assert c.post(path, data={"csrf": "forged-token", "state": "closed"}).status_code == 403, path
    assert c.get(f"/api/cases/{lab_db['case']}").json()["state"] == "diagnosed"  # nothing happened
    # a session's token from another session does not work either
    other = login("warranty")
    foreign = csrf_of(other.get("/cases/new").text)
    assert c.post(f"/cases/{lab_db['case']}/resolve", data={"csrf": foreign, "state": "closed"}).status_code == 403


def test_login_form_needs_its_csrf_cookie(app) -> None:  # noqa: ANN001
    client = TestClient(app, follow_redirects=False)
    r = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": "guess"})
    assert r.status_code == 403 and "stblab_session" not in r.cookies


def test_injection_in_text_fields_is_stored_verbatim_and_rendered_escaped(login, lab_db) -> None:  # noqa: ANN001
    c = login("warranty")
    token = csrf_of(c.get("/cases/new").text)
    r = c.post("/cases", data={"csrf": token, "serial": NASTY, "model": "STB-4K-X1", "complaint": NASTY})
    assert r.status_code == 303
    case = int(r.headers["location"].rsplit("/", 1)[1])
    stored = c.get(f"/api/cases/{case}").json()
    assert stored["device"] == NASTY and stored["complaint"] == NASTY
    for page in (f"/cases/{case}", "/cases", f"/cases/{case}/report", "/audit"):
        html = c.get(page).text
        assert "<script>alert" not in html, page
        assert "\x1b" not in html and "\x07" not in html, page
        assert "&lt;script&gt;alert(" in html or "\\u003cscript\\u003e" in html, page
    tri = login("triage")
    f1 = lab_db["faults"][0]
    tok = csrf_of(tri.get(f"/faults/{f1}").text)
    assert tri.post(f"/faults/{f1}/status", data={"csrf": tok, "action": "invalid", "note": NASTY}).status_code == 303
    assert NASTY in [e["detail"].get("reason") for e in tri.get("/api/audit").json()["entries"]]
    assert tri.get("/faults", params={"q": "'; DROP TABLE faults; --"}).status_code == 200
    assert tri.get("/faults", params={"q": "%"}).text.count('href="/faults/') == 0  # LIKE wildcards are literal
    assert len(tri.get("/api/faults").json()["faults"]) == 2


def test_device_text_in_fault_titles_and_excerpts_is_escaped(login, lab_db) -> None:  # noqa: ANN001
    from lab.rma import RmaStore
    from tests.web.conftest import file_fault

    store = RmaStore(lab_db["db"], artifact_root=lab_db["artifacts"])
    fid = file_fault(store, "evil", lab_db["tmp"], message=NASTY, log="segfault_dvbd.log")
    store.close()
    c = login("viewer")
    html = c.get(f"/faults/{fid}").text
    assert "<script>alert" not in html and "&lt;script&gt;alert(" in html and "\\x1b]0;pwned" in html


@pytest.mark.parametrize(
    "path",
    [
        "/artifacts/..%2F..%2F..%2Fetc%2Fpasswd/x",
        "/artifacts/" + "0" * 64 + "/x",  # a hash the database does not know
        "/artifacts/" + "A" * 64 + "/x",
        "/artifacts/%2E%2E/passwd",
        "/artifacts/../../etc/passwd",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
    ],
)
def test_path_traversal_in_evidence_urls_is_refused(login, path: str) -> None:  # noqa: ANN001
    c = login("admin")
    r = c.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "root:" not in r.text and "create_app" not in r.text


def test_artifact_name_does_not_choose_the_file(login, lab_db) -> None:  # noqa: ANN001
    c = login("viewer")
    html = c.get(f"/faults/{lab_db['faults'][0]}").text
    sha = re.search(r"/artifacts/([0-9a-f]{64})/frame\.png", html).group(1)
    assert c.get(f"/artifacts/{sha}/..%2F..%2Fetc%2Fpasswd").status_code == 404  # a slash never reaches it
    r = c.get(f"/artifacts/{sha}/a%22%3B%20filename%3Devil.html")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"  # the hash picks the file, the name is a label
    assert r.headers["content-type"] == "image/png"
    assert 'filename="a___filename_evil.html"' in r.headers["content-disposition"]


def test_session_cookie_flags_and_logout(app) -> None:  # noqa: ANN001
    client = TestClient(app, follow_redirects=False)
    token = login_csrf(client)
    r = client.post("/login", data={"name": "viewer", "password": PASSWORD, "csrf": token, "next": "//evil.example"})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("stblab_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    session = client.cookies.get("stblab_session")
    csrf = csrf_of(client.get("/faults").text)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    again = TestClient(app, follow_redirects=False, cookies={"stblab_session": session})
    assert again.get("/faults").status_code == 303  # the old cookie no longer opens anything


def test_login_is_rate_limited_even_for_the_right_password(app) -> None:  # noqa: ANN001
    client = TestClient(app, follow_redirects=False)
    token = login_csrf(client)
    for _ in range(5):
        r = client.post("/login", data={"name": "admin", "password": "wrong password", "csrf": token})
        assert r.status_code == 401
    r = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": token})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "stblab_session" not in client.cookies


def test_no_password_or_hash_in_logs_or_pages(login, app, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    client = TestClient(app, follow_redirects=False)
    token = login_csrf(client)
    client.post("/login", data={"name": "admin", "password": "wrong-secret-xyz", "csrf": token})
    c = login("admin")
    pages = [c.get(p).text for p in ("/faults", "/cases", "/runs", "/audit", "/api/me", "/api/audit")]
    everything = caplog.text + "".join(pages)
    assert "wrong-secret-xyz" not in everything and PASSWORD not in everything
    assert "$argon2" not in everything
    assert c.get("/api/me").json()["role"] == "admin"
