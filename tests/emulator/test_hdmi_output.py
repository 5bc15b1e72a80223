"""The emulated box's HDMI output, seen as a capture card sees it: over HTTP, through
``cv2.VideoCapture`` (OpenCV's FFmpeg backend), urllib and plain sockets.

The server runs in-process with a state holder standing in for the box core, so each test sets
exactly the screen it needs.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from support import eventually

from lab.emulator.hdmi import BANNER_BOX, LOGO_BOX, Renderer, logo_image
from lab.emulator.mjpeg import HdmiServer
from lab.emulator.screen import CHANNELS, ScreenState

W, H = 640, 360  # small output keeps the suite cheap; one test runs the 720p default


class Box:
    """Stands in for the box core: holds the current screen state, swapped atomically."""

    def __init__(self, state: ScreenState) -> None:
        self.state = state

    def get(self) -> ScreenState:
        return self.state


@pytest.fixture
def box() -> Box:
    return Box(ScreenState(kind="live", channel=1))


@pytest.fixture
def hdmi(box: Box) -> Iterator[HdmiServer]:
    server = HdmiServer("127.0.0.1", 0, box.get, W, H, 25)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _url(server: HdmiServer, path: str = "/stream.mjpg") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def _capture(url: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(
        url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000]
    )
    assert cap.isOpened(), f"OpenCV could not open {url}"
    return cap


def _snapshot(server: HdmiServer) -> np.ndarray:
    with urllib.request.urlopen(_url(server, "/snapshot.jpg"), timeout=5) as resp:
        assert resp.headers["Content-Type"] == "image/jpeg"
        data = resp.read()
        assert int(resp.headers["Content-Length"]) == len(data)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def _read_parts(resp, count: int) -> list[tuple[float, dict[str, str], bytes]]:  # type: ignore[no-untyped-def]
    """Read ``count`` multipart parts from an open /stream.mjpg response: (arrival, headers, body)."""
    parts = []
    for _ in range(count):
        line = resp.readline()
        while line in (b"\r\n", b"\n"):
            line = resp.readline()
        assert line.strip() == b"--frame", line
        headers: dict[str, str] = {}
        while True:
            line = resp.readline().strip()
            if not line:
                break
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = resp.read(int(headers["content-length"]))
        parts.append((time.monotonic(), headers, body))
    return parts


def _region(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    sx, sy = img.shape[1] / 1280, img.shape[0] / 720
    x0, y0, x1, y1 = box
    return img[round(y0 * sy) : round(y1 * sy), round(x0 * sx) : round(x1 * sx)]


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.absdiff(a, b).mean())


# --------------------------------------------------------------------------- the stream


def test_opencv_reads_720p_at_the_rig_frame_rate(box: Box) -> None:
    """A capture opened on the default 1280x720@25 stream gets full-size frames at ~25 fps."""
    server = HdmiServer("127.0.0.1", 0, box.get)  # defaults: 1280x720, 25 fps
    server.start()
    try:
        cap = _capture(server.url)
        try:
            ok, frame = cap.read()
            assert ok and frame.shape == (720, 1280, 3)
            start, n = time.monotonic(), 0
            while time.monotonic() - start < 2.0:
                ok, frame = cap.read()
                assert ok, "stream stopped while the box is on"
                n += 1
            rate = n / (time.monotonic() - start)
        finally:
            cap.release()
    finally:
        server.stop()
    # Paced to 25 fps: never faster (no bursts), and not starved on a busy 2-core machine.
    assert 12 <= rate <= 27.5, f"{rate:.1f} fps"


def test_multipart_parts_are_well_formed_and_paced_without_drift(hdmi: HdmiServer) -> None:
    """Each part is a JPEG with Content-Type and exact Content-Length; arrivals follow 1/fps."""
    with urllib.request.urlopen(_url(hdmi), timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        parts = _read_parts(resp, 26)
    for _, headers, body in parts:
        assert headers["content-type"] == "image/jpeg"
        assert body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9"
        img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (H, W, 3)
    span = parts[-1][0] - parts[1][0]
    # 24 intervals at 40 ms = 0.96 s; a fixed monotonic grid keeps the total from drifting.
    assert 0.85 <= span <= 2.5, span
    # Frame stamps sit on the 1/fps grid (a late producer skips slots, never shifts them) and
    # sequence numbers tell a reader which frames it missed.
    stamps = [float(h["x-timestamp"]) for _, h, _ in parts]
    seqs = [int(h["x-frame-seq"]) for _, h, _ in parts]
    for i in range(1, len(parts)):
        slots = (stamps[i] - stamps[i - 1]) * 25
        assert seqs[i] > seqs[i - 1] and slots >= 0.99 and abs(slots - round(slots)) < 0.01, stamps[i - 1 : i + 1]
    assert abs(time.time() - stamps[-1]) < 1.0


def test_snapshot_returns_one_frame_of_the_current_screen(hdmi: HdmiServer, box: Box) -> None:
    img = _snapshot(hdmi)
    assert img.shape == (H, W, 3)
    box.state = ScreenState(kind="standby")
    assert _snapshot(hdmi).max() < 20  # standby: a black picture, but a picture


def test_a_snapshot_right_after_a_state_change_never_shows_the_frame_in_flight() -> None:
    # A busy host: each frame's rendering starts long before it is published. A snapshot asked
    # after the change must not get the frame whose state was read before it (it once did).
    class SlowBox(Box):
        def get(self) -> ScreenState:
            state = self.state
            time.sleep(0.15)  # stands in for a render slowed by a loaded CPU
            return state

    box = SlowBox(ScreenState(kind="live", channel=1))
    server = HdmiServer("127.0.0.1", 0, box.get, W, H, 25)
    server.start()
    try:
        with urllib.request.urlopen(_url(server), timeout=5) as stream:  # keeps the producer busy
            _read_parts(stream, 2)
            for _ in range(3):
                box.state = ScreenState(kind="standby")
                assert _snapshot(server).max() < 20
                box.state = ScreenState(kind="live", channel=1)
                assert _snapshot(server).max() > 100
    finally:
        server.stop()


def test_unknown_path_is_404_and_garbage_requests_do_not_hurt(hdmi: HdmiServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(_url(hdmi, "/nope"), timeout=5)
    assert err.value.code == 404
    for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET\r\n\r\n", b"A" * 70000 + b"\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", hdmi.port), timeout=5) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        # An error answer (HTTP/0.9-style requests get a bare error page) or a closed connection.
        assert answer == b"" or b"Error code: 4" in answer or answer.split(b" ", 2)[1].startswith(b"4"), answer[:80]
    assert _snapshot(hdmi).shape == (H, W, 3)


# --------------------------------------------------------------------------- power


def test_powered_off_box_gives_no_stream_at_all(hdmi: HdmiServer, box: Box) -> None:
    """Off: new requests get 503; an open stream is closed; no black frames are ever sent."""
    cap = _capture(hdmi.url)
    frames = []
    try:
        for _ in range(5):
            ok, frame = cap.read()
            assert ok
            frames.append(frame)
        box.state = ScreenState(kind="off")
        t_off = time.monotonic()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
            assert time.monotonic() - t_off < 3, "stream still delivering after power off"
    finally:
        cap.release()
    assert all(f.mean() > 30 for f in frames), "a black frame was sent instead of no frame"
    assert time.monotonic() - t_off < 2
    for path in ("/stream.mjpg", "/snapshot.jpg"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(_url(hdmi, path), timeout=5)
        assert err.value.code == 503
    # Power back on: the stream comes back.
    box.state = ScreenState(kind="boot", boot_progress=0.3, firmware_version="2.0.0")
    assert _snapshot(hdmi).shape == (H, W, 3)


def test_nothing_is_encoded_without_a_client_and_one_encode_serves_all(hdmi: HdmiServer) -> None:
    time.sleep(0.3)  # a window in which nothing may be encoded (asserting an absence, not waiting)
    assert hdmi.frames_encoded == 0
    with (
        urllib.request.urlopen(_url(hdmi), timeout=5) as a,
        urllib.request.urlopen(_url(hdmi), timeout=5) as b,
    ):
        results: dict[str, list] = {}
        ta = threading.Thread(target=lambda: results.__setitem__("a", _read_parts(a, 20)))
        ta.start()
        results["b"] = _read_parts(b, 20)
        ta.join(5)
        encoded = hdmi.frames_encoded
    bodies_a = {p[2] for p in results["a"]}
    assert len(bodies_a & {p[2] for p in results["b"]}) >= 15  # the same JPEGs went to both
    assert encoded <= 26, f"{encoded} encodes for 20 frames to two clients"
    eventually(lambda: hdmi.resting, timeout=3, what="the encoder resting once both clients are gone")
    idle = hdmi.frames_encoded
    time.sleep(0.4)  # a window in which nothing may be encoded (asserting an absence, not waiting)
    assert hdmi.frames_encoded == idle  # clients gone: the encoder rests


# --------------------------------------------------------------------------- what is on screen


def test_live_tv_moves_and_a_decoder_freeze_stops_picture_and_clock(hdmi: HdmiServer, box: Box) -> None:
    cap = _capture(hdmi.url)
    try:
        frames = [cap.read()[1] for _ in range(6)]
        moving = [_diff(a, b) for a, b in zip(frames, frames[1:], strict=False)]
        assert min(moving) > 1.0, moving
        box.state = box.state.replace(frozen=True)
        # Let the freeze reach the capture (frames already in flight still move)...
        deadline = time.monotonic() + 3
        prev = cap.read()[1]
        while not np.array_equal(cur := cap.read()[1], prev):
            prev = cur
            assert time.monotonic() < deadline, "picture never stopped moving"
        frozen = [cap.read()[1] for _ in range(8)]  # 8 frames = 320 ms: the clock's 1/25 s digit would change
    finally:
        cap.release()
    still = [_diff(a, b) for a, b in zip(frozen, frozen[1:], strict=False)]
    assert max(still) < 0.2, still
    assert np.array_equal(_region(frozen[0], (40, 30, 300, 90)), _region(frozen[-1], (40, 30, 300, 90)))


def test_each_channel_is_recognisable_by_its_logo(hdmi: HdmiServer, box: Box) -> None:
    """Template-matching every channel's logo tile against the picture picks the tuned channel."""
    lw, lh = round(160 * W / 1280), round(100 * H / 720)
    refs = {ch.number: logo_image(ch, lw, lh) for ch in CHANNELS}
    for ch in CHANNELS[:8]:
        box.state = ScreenState(kind="live", channel=ch.number)
        img = _snapshot(hdmi)
        corner = _region(img, (1040, 0, 1280, 170))
        scores = {n: float(cv2.matchTemplate(corner, ref, cv2.TM_CCOEFF_NORMED).max()) for n, ref in refs.items()}
        best = max(scores, key=lambda n: scores[n])
        assert best == ch.number, (ch.number, scores)
        others = sorted((s for n, s in scores.items() if n != ch.number), reverse=True)
        assert scores[ch.number] > 0.9 and others[0] < scores[ch.number] - 0.1, scores


def test_channel_banner_shows_after_a_zap_and_goes_away(hdmi: HdmiServer, box: Box) -> None:
    now = time.monotonic()
    box.state = ScreenState(kind="live", channel=3, banner_until=now + 0.6)
    with_banner = _region(_snapshot(hdmi), BANNER_BOX)

    def banner_gone() -> list[np.ndarray] | None:
        region = _region(_snapshot(hdmi), BANNER_BOX)
        return [region] if _diff(with_banner, region) > 20 else None

    [without] = eventually(banner_gone, timeout=3, what="the banner going away")
    # The banner is the box's dark OSD panel; without it the live picture shows through.
    assert with_banner.mean() < without.mean()


def test_zap_time_shows_black_video_under_the_banner(hdmi: HdmiServer, box: Box) -> None:
    """While the decoder acquires the new channel the video is black but the OSD banner is up."""
    now = time.monotonic()
    box.state = ScreenState(kind="live", channel=4, banner_until=now + 3, tuning_until=now + 0.5)
    tuning = _snapshot(hdmi)
    assert _region(tuning, (0, 140, 1280, 420)).max() < 20  # no picture yet
    assert _region(tuning, BANNER_BOX).max() > 150  # the banner's text is there

    def picture() -> list[np.ndarray] | None:
        img = _snapshot(hdmi)
        return [img] if _region(img, (0, 140, 1280, 420)).mean() > 40 else None

    [playing] = eventually(picture, timeout=3, what="the picture after tuning")
    assert _diff(_region(tuning, BANNER_BOX), _region(playing, BANNER_BOX)) < 3  # same banner throughout


def test_menus_show_the_highlighted_item_and_are_told_apart(hdmi: HdmiServer, box: Box) -> None:
    shots = {}
    for kind in ("home", "guide", "settings", "no_channel", "boot"):
        box.state = ScreenState(kind=kind, channel=2, firmware_version="2.0.0", model="STB-4K-X1")
        shots[kind] = _snapshot(hdmi)
    kinds = list(shots)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1 :]:
            assert _diff(shots[a], shots[b]) > 5, (a, b)
    box.state = ScreenState(kind="home", menu_index=0)
    first = _snapshot(hdmi)
    box.state = ScreenState(kind="home", menu_index=2)
    third = _snapshot(hdmi)
    # The orange highlight bar moved down two rows.
    orange = np.array([0, 165, 255])

    def bar_rows(img: np.ndarray) -> np.ndarray:
        mask = (np.abs(img.astype(int) - orange).sum(axis=2) < 60).sum(axis=1) > W * 0.3
        return np.nonzero(mask)[0]

    assert bar_rows(third).mean() - bar_rows(first).mean() == pytest.approx(2 * 80 * H / 720, abs=4)


def test_black_screen_defect_is_black_but_still_a_signal(hdmi: HdmiServer, box: Box) -> None:
    box.state = ScreenState(kind="live", channel=4, black=True)
    img = _snapshot(hdmi)
    assert img.max() < 20


def test_zap_reaches_the_capture_quickly(hdmi: HdmiServer, box: Box) -> None:
    """The picture of the newly tuned channel reaches cv2.VideoCapture within a few frames."""
    cap = _capture(hdmi.url)
    try:
        for _ in range(3):
            cap.read()
        target = np.array(CHANNELS[1].background, float)  # channel 2's colour at the top edge
        box.state = ScreenState(kind="live", channel=2)
        t = time.monotonic()
        while True:
            ok, frame = cap.read()
            assert ok
            top = frame[2:8, W // 2 - 40 : W // 2 + 40].reshape(-1, 3).mean(axis=0)
            if np.abs(top - target).max() < 25:
                break
            assert time.monotonic() - t < 2.0, "zap not visible in the capture after 2 s"
    finally:
        cap.release()


# --------------------------------------------------------------------------- renderer


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720), (720, 576)])
def test_every_screen_renders_at_the_rig_resolution(size: tuple[int, int]) -> None:
    r = Renderer(*size)
    now = time.monotonic()
    for kind in ("boot", "home", "live", "guide", "settings", "standby", "no_channel"):
        img = r.render(ScreenState(kind=kind, channel=5, banner_until=now + 4, digits="1"), now)
        assert img.shape == (size[1], size[0], 3) and img.dtype == np.uint8
        assert (img.max() < 20) == (kind == "standby"), kind


def test_iptv_live_frame_hook_replaces_the_synthetic_picture() -> None:
    """The IPTV path hands decoded pictures (any size) to the screen; OSD is drawn on top."""
    r = Renderer(640, 360)
    decoded = np.full((270, 480, 3), (10, 200, 30), np.uint8)
    state = ScreenState(kind="live", channel=6, live_frame=lambda: decoded)
    img = r.render(state, time.monotonic())
    assert img.shape == (360, 640, 3)
    assert np.abs(img[200, 320].astype(int) - (10, 200, 30)).max() <= 2
    assert not np.array_equal(_region(img, LOGO_BOX), np.full_like(_region(img, LOGO_BOX), (10, 200, 30)))
    # Nothing decoded yet: black video, never a stale synthetic picture.
    blank = Renderer(640, 360).render(ScreenState(kind="live", live_frame=lambda: None), time.monotonic())
    assert blank[200, 320].max() < 10
    # A frozen decoder keeps showing its last picture even if the provider changes.
    decoded[:] = (200, 0, 0)
    frozen = r.render(state.replace(frozen=True), time.monotonic())
    assert np.abs(frozen[200, 320].astype(int) - (10, 200, 30)).max() <= 2


def test_port_in_use_and_stop_with_clients_attached(box: Box) -> None:
    server = HdmiServer("127.0.0.1", 0, box.get, W, H, 25)
    server.start()
    try:
        with pytest.raises(OSError):
            HdmiServer("127.0.0.1", server.port, box.get, W, H, 25).start()
        resp = urllib.request.urlopen(server.url, timeout=5)
        _read_parts(resp, 2)
        t = time.monotonic()
        server.stop()  # an emulator shutting down must not hang on a watching capture
        assert time.monotonic() - t < 3
        with pytest.raises((OSError, AssertionError, ValueError)):
            _read_parts(resp, 50)  # the stream ends
        resp.close()
        with pytest.raises(OSError):
            urllib.request.urlopen(server.url, timeout=2)  # nothing listens any more
    finally:
        server.stop()


def test_bad_settings_are_refused_up_front(box: Box) -> None:
    with pytest.raises(ValueError, match="fps"):
        HdmiServer("127.0.0.1", 0, box.get, W, H, 0)
    with pytest.raises(ValueError, match="too small"):
        HdmiServer("127.0.0.1", 0, box.get, 100, 50, 25)
    with pytest.raises(ValueError, match="unknown screen kind"):
        ScreenState(kind="menu")  # type: ignore[arg-type]
