"""The web app in a real headless Chromium (Debian's package, driven by Playwright) over a real
socket served by uvicorn, with warranty checks run on emulated returned units.

Screenshots of each page go to the test's folder (``tmp_path``); ``STBLAB_WEB_SHOTS=docs/web`` also
copies them there (how the README's pictures were made).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from support import FAST_BOOT

from lab.emulator.testing import EmulatedLab, free_port, rig_entry
from lab.rma import RmaStore
from tests.web.conftest import PASSWORD, file_fault

pytestmark = [pytest.mark.slow, pytest.mark.real_peer]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CATALOGUE = {"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 3}]}


def make_clip(path: Path, frames: int = 50) -> Path:
    """A 2 s Motion-JPEG AVI, as the capture ring writes them."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 180))
    for i in range(frames):
        img = np.zeros((180, 320, 3), np.uint8)
        cv2.rectangle(img, (i * 5, 40), (i * 5 + 60, 140), (40, 200, 240), -1)
        out.write(img)
    out.release()
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Emulated returned unit and reference unit, a database with a fault that has a clip, accounts."""
    from lab.web.accounts import add_user

    d = tmp_path_factory.mktemp("webbench")
    units = [
        rig_entry(
            d,
            "rma-fwbug",
            firmware={"version": "2.1.0", "build_id": "b210"},
            defects=CATALOGUE,
            serial_number="SN-FWBUG01",
            boot=FAST_BOOT,
        ),
        rig_entry(
            d,
            "ref-210",
            firmware={"version": "2.1.0", "build_id": "b210"},
            defects=CATALOGUE,
            serial_number="SN-REF210",
            features=["hdmi", "ir", "ssh", "reference"],
            boot=FAST_BOOT,
        ),
    ]
    rig_file = d / "rigs.yaml"
    rig_file.write_text(yaml.safe_dump({"rigs": units}, sort_keys=False))
    db = d / "rma.sqlite"
    store = RmaStore(db, artifact_root=d / "artifacts")
    clip = make_clip(d / "clip.avi")
    from lab.rma import FaultReport

    frame = d / "frame.png"
    cv2.imwrite(str(frame), np.full((180, 320, 3), 8, np.uint8))
    report = FaultReport(
        rig="stb-b",
        device_serial="SN-B0002",
        model="STB-4K-X1",
        firmware_version="2.1.0",
        firmware_build_id="b210",
        test_id="scenarios/test_standby.py::test_standby_and_resume[stb-b]",
        occurrence_key="clip-1",
        started=time.time(),
        check={"scenario": "test_standby_and_resume", "check": "black", "target": "resume"},
        symptom="black-screen",
        message="screen stayed black 10 s after resume",
        artifacts={"frame.png": frame, "clip.avi": clip},
    )
    fault = store.file(report).fault_id
    file_fault(store, "b2", d, log="oom_epg.log", firmware="2.0.0")
    with store.session() as s, s.begin():
        add_user(s, "wanda", "warranty", PASSWORD)
        add_user(s, "vic", "viewer", PASSWORD)
        add_user(s, "tess", "triage", PASSWORD)
    store.close()
    with EmulatedLab(rig_file):
        yield {"dir": d, "rigs": rig_file, "db": db, "fault": fault}


@pytest.fixture(scope="module")
def server(bench) -> Iterator[str]:  # noqa: ANN001
    """The app served by uvicorn on a free loopback port."""
    import uvicorn

    from lab.web.app import WebConfig, create_app

    app = create_app(
        WebConfig(db=str(bench["db"]), artifact_root=bench["dir"] / "artifacts", rigs=bench["rigs"], emulate="never")
    )
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start in 20 s"
        t.join(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)
    app.state.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def shoot(page, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("STBLAB_WEB_SHOTS"):
        dest = Path(os.environ["STBLAB_WEB_SHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / path.name)


def log_in(browser, server: str, name: str):  # noqa: ANN001, ANN201
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{server}/cases")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/cases")
    return page


def test_warranty_desk_receives_a_unit_checks_it_overrides_and_prints(browser, server, bench, tmp_path) -> None:  # noqa: ANN001
    page = log_in(browser, server, "wanda")
    page.click("text=Receive a unit")
    page.fill("input[name=serial]", "SN-FWBUG01")
    page.fill("input[name=model]", "STB-4K-X1")
    page.fill("textarea[name=complaint]", "the picture freezes after changing channels")
    photo = bench["dir"] / "photo.png"
    cv2.imwrite(str(photo), np.full((240, 320, 3), (90, 90, 90), np.uint8))
    page.set_input_files("input[name=photos]", str(photo))
    shoot(page, tmp_path, "receive")
    page.click("#receive-form button[type=submit]")
    page.wait_for_url("**/cases/*")
    assert page.locator("#case-state").inner_text() == "received"
    page.select_option("#check-form select[name=rig]", "rma-fwbug")
    page.click("#check-form button[type=submit]")
    page.wait_for_selector("section.job .job-log:not(:empty)", timeout=60_000)  # the log streams in
    shoot(page, tmp_path, "check-running")
    page.wait_for_selector("#verdict .big", timeout=280_000)  # the page reloads when the check ends
    assert page.locator("#verdict .big").inner_text() == "FIRMWARE DEFECT"
    assert page.locator("section.job .job-state").first.inner_text() == "done"
    assert "reference unit ref-210" in page.locator("#evidence").inner_text()
    shoot(page, tmp_path, "case")
    page.select_option("#override-form select[name=verdict]", "no_fault_found")
    page.fill("#override-form textarea[name=reason]", "customer's unit runs beta firmware by agreement")
    page.click("#override-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#verdict .big").inner_text() == "NO FAULT FOUND"
    assert "by agreement" in page.locator("#verdict").inner_text()
    page.click("text=Printable verdict report")
    page.wait_for_load_state()
    assert "NO FAULT FOUND" in page.inner_text("body")
    page.emulate_media(media="print")
    pdf = tmp_path / "verdict-report.pdf"
    page.pdf(path=str(pdf), format="A4")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000
    shoot(page, tmp_path, "report")
    page.context.close()


def test_viewer_sees_no_override_form_and_a_forged_post_is_refused(browser, server, bench) -> None:  # noqa: ANN001
    page = log_in(browser, server, "vic")
    page.goto(f"{server}/cases/1")
    assert page.locator("#override-form").count() == 0
    csrf = page.locator("form.logout input[name=csrf]").get_attribute("value")
    r = page.request.post(f"{server}/cases/1/override", form={"csrf": csrf, "verdict": "user_damage", "reason": "x"})
    assert r.status == 403
    page.context.close()


def test_engineer_filters_faults_opens_one_and_the_clip_plays(browser, server, bench, tmp_path) -> None:  # noqa: ANN001
    page = log_in(browser, server, "tess")
    page.goto(f"{server}/faults")
    assert page.locator("#faults tbody tr").count() >= 2  # 3 when the warranty check above filed its fault
    shoot(page, tmp_path, "faults")
    page.select_option("select[name=firmware]", "2.0.0")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#faults tbody tr").count() == 1
    page.goto(f"{server}/faults/{bench['fault']}")
    video = page.locator("video").first
    video.scroll_into_view_if_needed()
    # the page's CSP forbids eval, so no wait_for_function: one promise that settles on loadeddata or in 60 s
    state = video.evaluate(
        """v => new Promise(done => {
            if (v.readyState >= 2) return done(v.readyState);
            v.addEventListener("loadeddata", () => done(v.readyState));
            v.addEventListener("error", () => done(-1));
            setTimeout(() => done(v.readyState), 60000);
        })"""
    )
    assert state >= 2, f"video readyState {state}"
    assert page.evaluate("document.querySelector('video').duration") > 1.5
    assert page.evaluate("document.querySelector('img[alt=\"frame.png\"]').naturalWidth") == 320
    shoot(page, tmp_path, "fault")
    page.click("text=Dashboard")
    page.wait_for_selector("#chart-firmware rect")
    assert page.locator("#chart-firmware rect").count() == 4  # seen and fixed bars of 2.0.0 and 2.1.0
    shoot(page, tmp_path, "dashboard")
    page.context.close()
