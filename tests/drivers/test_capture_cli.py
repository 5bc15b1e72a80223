"""``stblab capture``: snapshot, clip and watch of a rig's HDMI stream over real HTTP MJPEG."""

from __future__ import annotations

from pathlib import Path

import cv2
from test_capture import Encoder
from typer.testing import CliRunner

from lab.drivers.capture_cli import app

runner = CliRunner()


def test_snapshot_clip_watch_and_no_signal(tmp_path: Path) -> None:
    # the encoder stamps its parts (X-Timestamp, X-Frame-Seq), so `watch`'s dropped=0 is the source's own
    # count, not a guess from arrival times that a busy host can upset
    enc = Encoder(stamped=True)
    try:
        rig_file = tmp_path / "rigs.yaml"
        rig_file.write_text(f"rigs:\n  - name: v1\n    model: M\n    video: {{url: '{enc.url}', fps: 25}}\n")
        args = ["--rigs", str(rig_file), "--rig", "v1"]
        res = runner.invoke(app, ["snapshot", *args, str(tmp_path / "s.png")])
        assert res.exit_code == 0, res.output
        assert cv2.imread(str(tmp_path / "s.png")).shape == (240, 320, 3)
        res = runner.invoke(app, ["clip", *args, "--seconds", "1", str(tmp_path / "c.avi")])
        assert res.exit_code == 0, res.output
        reader = cv2.VideoCapture(str(tmp_path / "c.avi"))
        n = 0
        while reader.read()[0]:
            n += 1
        assert 20 <= n <= 27
        res = runner.invoke(app, ["watch", *args, "--seconds", "1"])
        assert res.exit_code == 0 and res.output.startswith("signal") and "dropped=0" in res.output
        enc.power(False)
        res = runner.invoke(app, ["snapshot", *args, "--timeout", "1", str(tmp_path / "off.png")])
        assert res.exit_code == 1 and "no-signal" in res.output
        assert not (tmp_path / "off.png").exists()
        res = runner.invoke(app, ["snapshot", "--rigs", str(rig_file), "--rig", "nope", str(tmp_path / "x.png")])
        assert res.exit_code == 2
    finally:
        enc.kill()


def test_a_capture_source_that_is_not_there_is_exit_3(tmp_path: Path) -> None:
    rig_file = tmp_path / "rigs.yaml"
    rig_file.write_text(f"rigs:\n  - name: v1\n    model: M\n    video: {{url: '{tmp_path / 'gone.mkv'}'}}\n")
    res = runner.invoke(app, ["snapshot", "--rigs", str(rig_file), "--rig", "v1", str(tmp_path / "s.png")])
    assert res.exit_code == 3 and "does not exist" in res.output
