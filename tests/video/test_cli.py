"""`stblab video scan`: the command lab engineers and warranty staff run on recorded clips."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from video_clips import Clip

STBLAB = [sys.executable, "-c", "from lab.cli import main; main()"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STBLAB, "video", *args], capture_output=True, text=True, timeout=120)


def test_scan_json_reports_intervals(segments_clip: Clip) -> None:
    done = _run("scan", str(segments_clip.path), "--json", "--freeze-duration", "1")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["frames"] == 263 and report["fps"] == 25.0 and report["dropped"] == 0
    black = report["intervals"]["black"]
    assert black[0] == {"start": 2.0, "end": 3.0, "duration": 1.0}
    assert {"start": 4.0, "end": 6.0, "duration": 2.0} in report["intervals"]["frozen"]
    assert set(report["intervals"]) == {"black", "frozen", "motion", "artifacts", "no_picture"}


def test_scan_table_and_missing_pictures(ts_pair) -> None:
    _, damaged, _ = ts_pair
    done = _run("scan", str(damaged))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "1 missing" in lines[0]
    assert any(line.startswith("no_picture") and "0.840" in line for line in lines), done.stdout
    assert any(line.startswith("artifacts") and "0.800" in line for line in lines), done.stdout
    quick = _run("scan", str(damaged), "--no-blockiness")  # the decoder's own damage flags still count
    assert any(line.startswith("artifacts") and "0.800" in line for line in quick.stdout.splitlines()), quick.stdout
    assert any(line.startswith("black") and "none" in line for line in lines)


def test_scan_refuses_bad_input_clearly(tmp_path) -> None:
    done = _run("scan", str(tmp_path / "nope.ts"))
    assert done.returncode == 2 and "no such file" in done.stderr
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"this is not video" * 100)
    done = _run("scan", str(junk))
    assert done.returncode == 2 and "junk.ts" in done.stderr and "Traceback" not in done.stderr
    assert junk.read_bytes() == b"this is not video" * 100  # input untouched
    done = _run("scan", str(junk), "--pix-th", "10")
    assert done.returncode == 2 and "between 0 and 1" in done.stderr


def test_match_command_for_tuning_reference_images(tmp_path) -> None:
    import cv2
    from video_clips import lavfi_frames

    scene = lavfi_frames("testsrc2", 1, 1280, 720)[0].copy()
    logo = lavfi_frames("smptebars", 1, 200, 100)[0].copy()
    scene[301:401, 503:703] = logo
    cv2.imwrite(str(tmp_path / "logo.png"), logo)
    cv2.imwrite(str(tmp_path / "shot.jpg"), scene, [cv2.IMWRITE_JPEG_QUALITY, 70])
    logo_png, shot = str(tmp_path / "logo.png"), str(tmp_path / "shot.jpg")
    done = _run("match", logo_png, shot, "--json", "--save", str(tmp_path / "a.png"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["region"] == {"x": 503, "y": 301, "width": 200, "height": 100}
    assert cv2.imread(str(tmp_path / "a.png")).shape[1] == 1280
    elsewhere = _run("match", str(tmp_path / "logo.png"), str(tmp_path / "shot.jpg"), "--region", "0,0,600,300")
    assert elsewhere.returncode == 1 and elsewhere.stdout.startswith("match no")
    bad = _run("match", str(tmp_path / "logo.png"), str(tmp_path / "shot.jpg"), "--region", "0,0")
    assert bad.returncode == 2 and "X,Y,WIDTH,HEIGHT" in bad.stderr


def test_check_command_on_a_screenshot(tmp_path) -> None:
    import cv2
    from video_clips import lavfi_frames

    cv2.imwrite(str(tmp_path / "bars.png"), lavfi_frames("smptebars", 1, 640, 360)[0])
    done = _run("check", str(tmp_path / "bars.png"), "--json")
    assert done.returncode == 0, done.stderr
    verdicts = {name: r["ok"] for name, r in json.loads(done.stdout).items()}
    assert verdicts["colour_bars"] and not any(v for k, v in verdicts.items() if k != "colour_bars")
    assert set(verdicts) == {"black", "black_ratio", "colour_bars", "no_signal", "blockiness"}
    missing = _run("check", str(tmp_path / "nope.png"))
    assert missing.returncode == 2 and "cannot read image" in missing.stderr


def test_scan_in_process_leaves_the_garbage_collector_as_it_found_it(segments_clip: Clip, capsys) -> None:
    """The scan imports with the collector off and freezes what the imports made; a caller in the same
    process (the typer entry, a script) gets its collector back, enabled or not, with nothing frozen."""
    import gc

    from lab.video.scan_cli import main

    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            main([str(segments_clip.path), "--json", "--freeze-duration", "1"])
            assert gc.isenabled() is enabled
            assert gc.get_freeze_count() == 0
        finally:
            gc.enable()
    assert json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")["frames"] == 263


def test_scan_ends_its_own_process_quickly_only(monkeypatch) -> None:
    """The command skips the interpreter's teardown only when it is the whole process (its arguments are
    the command line's); a caller's list in a longer-lived process returns normally (test above)."""
    from lab.video.scan_cli import _owns_process

    monkeypatch.setattr(sys, "argv", ["/usr/bin/stblab", "video", "scan", "clip.ts", "--json"])
    assert _owns_process(["clip.ts", "--json"]) and _owns_process(None)
    assert not _owns_process(["other.ts", "--json"])
    monkeypatch.setattr(sys, "argv", ["pytest", "tests/video"])
    assert not _owns_process(["clip.ts", "--json"])


def test_scan_report_is_whole_through_a_pipe_and_a_file(segments_clip: Clip, tmp_path) -> None:
    """The process ends without the interpreter's teardown, so its output must be flushed first
    (block-buffered here: PYTHONUNBUFFERED, set in some shells, would hide a missing flush)."""
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with out.open("w") as sink:
        done = subprocess.run(
            [*STBLAB, "video", "scan", str(segments_clip.path), "--json", "--freeze-duration", "1"],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["frames"] == 263
