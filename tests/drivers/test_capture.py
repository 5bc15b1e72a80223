"""Capture driver over real HTTP MJPEG (a small encoder written here), files, and its ring and clips."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import udp_bound

from lab.drivers.capture import LOST, NO_SIGNAL, SIGNAL, Capture, CaptureTimeout
from lab.errors import InfraError, TestError
from lab.video.frame import Frame

W, H = 320, 240
BITS = 10  # frame counter drawn as big black/white blocks, survives JPEG


def draw(counter: int, *, black: bool = False) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    if black:
        return img
    img[:, :] = (40, 90, 160)
    for b in range(BITS):
        if (counter >> b) & 1:
            img[20:60, 10 + b * 30 : 35 + b * 30] = 255
    return img


def read_counter(img: np.ndarray) -> int:
    value = 0
    for b in range(BITS):
        if img[40, 22 + b * 30].mean() > 200:
            value |= 1 << b
    return value


class Encoder:
    """An HDMI-to-IP encoder: ``GET /stream.mjpg`` multipart MJPEG paced at ``fps``; 503 when off.

    ``skip(n)`` makes the source lose the next n frames (the counter still advances);
    ``stall()`` keeps connections open but sends nothing; ``kill()`` closes the listening socket.
    ``stamped=True``: each part carries ``X-Timestamp`` (its frame slot) and ``X-Frame-Seq`` (the
    connection's frame slot number; skipped frames leave gaps), as the lab's emulated encoder and
    stamping HDMI encoders send them.
    """

    def __init__(self, fps: float = 25.0, *, stamped: bool = False) -> None:
        self.fps = fps
        self.stamped = stamped
        self.on = True
        self.black = False
        self.stalled = False
        self.counter = 0
        self.size = (W, H)
        self.sent: dict[int, bytes] = {}
        self._skip = 0
        self._lock = threading.Lock()
        self._streams: set[socket.socket] = set()
        enc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not enc.on:
                    self.send_error(503, "no signal")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                with enc._lock:
                    enc._streams.add(self.connection)
                try:
                    enc._serve(self.wfile)
                finally:
                    with enc._lock:
                        enc._streams.discard(self.connection)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _serve(self, wfile: object) -> None:
        t0 = time.monotonic()
        wall0 = time.time()
        k = 0
        while self.on:
            k += 1
            delay = t0 + k / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self.stalled:
                continue
            with self._lock:
                self.counter += 1
                n = self.counter
                if self._skip:
                    self._skip -= 1
                    continue
            img = draw(n, black=self.black)
            if self.size != (W, H):
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_NEAREST)
            ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            data = jpg.tobytes()
            self.sent[n] = data
            stamp = f"X-Timestamp: {wall0 + k / self.fps:.6f}\r\nX-Frame-Seq: {k}\r\n" if self.stamped else ""
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n{stamp}\r\n".encode()
            try:
                wfile.write(head + data + b"\r\n")  # type: ignore[attr-defined]
                wfile.flush()  # type: ignore[attr-defined]
            except OSError:
                return

    def skip(self, n: int) -> None:
        with self._lock:
            self._skip = n

    def power(self, on: bool) -> None:
        self.on = on
        if not on:
            with self._lock:
                for s in list(self._streams):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

    def kill(self) -> None:
        self.power(False)
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def encoder() -> Iterator[Encoder]:
    enc = Encoder()
    yield enc
    with contextlib.suppress(Exception):
        enc.kill()


def capture(url: str, **kw: object) -> Capture:
    kw.setdefault("rig_name", "stb-v")
    kw.setdefault("fps_hint", 25)
    kw.setdefault("open_timeout", 2.0)
    kw.setdefault("read_timeout", 1.0)
    return Capture(url, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- live


def test_frames_carry_capture_time_and_seq_and_the_sources_own_jpeg(encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        first = cap.next_frame(timeout=5)
        got = [first] + [cap.next_frame(timeout=2) for _ in range(20)]
        assert isinstance(first, Frame) and first.image.shape == (H, W, 3)
        seqs = [f.seq for f in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # consecutive frames are consecutive source frames (the drawn counter moves with seq)
        counters = [read_counter(f.image) for f in got]
        for i in range(1, len(got)):
            assert counters[i] - counters[i - 1] == seqs[i] - seqs[i - 1]
        assert abs(got[-1].time - time.monotonic()) < 1.0
        assert all(b.time >= a.time for a, b in zip(got, got[1:], strict=False))
        # the ring holds the encoder's bytes untouched
        newest = cap.ring.newest()
        assert newest is not None and cap.raw_jpeg
        counter = read_counter(cap.ring.newest().decode())  # type: ignore[union-attr]
        assert newest.jpeg == encoder.sent[counter]
        assert cap.signal == SIGNAL and cap.has_signal()
        assert cap.dropped == 0


def test_black_picture_is_signal_and_a_stopped_stream_is_no_signal(encoder: Encoder) -> None:
    with capture(encoder.url, no_signal_after=0.5) as cap:
        encoder.black = True
        cap.next_frame(timeout=5)
        time.sleep(0.2)
        frame = cap.next_frame(timeout=2)
        assert frame.image.max() < 20  # a black picture...
        assert cap.has_signal() and cap.signal == SIGNAL and cap.signal  # ...is still a signal
        encoder.power(False)  # box off: 503 and streams closed
        waited = cap.wait_for_no_signal(timeout=5)
        assert waited < 3
        assert not cap.has_signal() and cap.signal == NO_SIGNAL  # the encoder is there: not lost
        assert not cap.signal and str(cap.signal) == "no-signal"
        with pytest.raises(CaptureTimeout, match="no-signal"):
            cap.next_frame(timeout=0.5)
        last_seq = frame.seq
        encoder.black = False
        encoder.power(True)  # power on: the capture reopens by itself
        back = cap.wait_for_signal(timeout=10)
        assert back.seq > last_seq and back.image.max() > 200
        assert cap.has_signal() and cap.opens >= 2


def test_frames_the_source_lost_are_counted_and_leave_a_gap_in_seq(encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        cap.next_frame(timeout=5)
        frames = cap.frames(timeout=3)
        seen: list[Frame] = []
        for f in frames:
            seen.append(f)
            if len(seen) == 10:
                encoder.skip(6)
            if len(seen) >= 30:
                break
        gaps = [b.seq - a.seq - 1 for a, b in zip(seen, seen[1:], strict=False) if b.seq - a.seq > 1]
        assert sum(gaps) == cap.dropped
        assert 5 <= cap.dropped <= 7
        # the counter drawn by the source agrees with the seq gap
        jump = [(a, b) for a, b in zip(seen, seen[1:], strict=False) if b.seq - a.seq > 1][0]
        assert read_counter(jump[1].image) - read_counter(jump[0].image) == 7


def test_slow_consumer_skips_to_live_frames_and_counts_what_it_missed(encoder: Encoder) -> None:
    with capture(encoder.url, max_lag=0.2) as cap:
        cap.next_frame(timeout=5)
        it = cap.frames(timeout=5)
        a = next(it)
        time.sleep(1.0)  # a consumer busy for 1 s (25 frames at 25 fps)
        b = next(it)
        assert b.seq - a.seq >= 15
        assert time.monotonic() - b.time < 0.5  # what it gets next is live, not a second old
        assert cap.consumer_dropped >= 15
        assert cap.dropped == 0  # the source lost nothing


def test_resolution_change_mid_stream_is_followed(tmp_path: Path, encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        assert cap.next_frame(timeout=5).image.shape == (H, W, 3)
        encoder.size = (640, 360)  # the box switched output mode (same stream, bigger JPEGs)
        deadline = time.monotonic() + 3
        while cap.next_frame(timeout=2).image.shape != (360, 640, 3):
            assert time.monotonic() < deadline
        newest = cap.ring.newest()
        assert newest is not None and (newest.width, newest.height) == (640, 360)
        time.sleep(0.3)
        clip = cap.save_clip(tmp_path / "after.avi")
        reader = cv2.VideoCapture(str(clip))
        ok, img = reader.read()
        assert ok and img.shape == (360, 640, 3)  # the clip keeps the current mode only


def test_frames_timeout_ends_the_iteration_even_for_a_consumer_that_never_catches_up(encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        cap.next_frame(timeout=5)
        t0 = time.monotonic()
        n = 0
        for _ in cap.frames(timeout=1.0):
            n += 1
            time.sleep(0.06)  # slower than the 25 fps source: frames are always waiting
        elapsed = time.monotonic() - t0
        # Ends at the timeout (with slack for a loaded CI host), never runs on while frames keep waiting.
        assert elapsed >= 1.0, elapsed
        assert elapsed < 3.0, elapsed
        assert 5 <= n <= 18


def test_two_consumers_each_get_every_frame(encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        cap.next_frame(timeout=5)
        out: dict[str, list[int]] = {"a": [], "b": []}

        def consume(name: str) -> None:
            for f in cap.frames(timeout=1.0):
                out[name].append(f.seq)

        threads = [threading.Thread(target=consume, args=(n,)) for n in out]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(out["a"]) >= 15
        common = sorted(set(out["a"]) & set(out["b"]))
        assert len(common) >= len(out["a"]) - 2
        assert out["a"] == list(range(out["a"][0], out["a"][0] + len(out["a"])))


def test_encoder_gone_is_infra_error_naming_rig_and_instrument(encoder: Encoder) -> None:
    with capture(encoder.url, lost_after=1.0) as cap:
        cap.next_frame(timeout=5)
        encoder.kill()  # the instrument itself is gone: connection refused
        t0 = time.monotonic()
        with pytest.raises(InfraError) as info:
            while True:
                cap.next_frame(timeout=10)
        assert time.monotonic() - t0 < 8
        assert info.value.instrument == "video" and info.value.rig == "stb-v"
        assert "refused" in str(info.value)
        assert cap.signal == LOST


def test_waiting_for_no_signal_when_the_encoder_is_gone_is_an_infra_error(encoder: Encoder) -> None:
    # "the box's output went away" must not pass because the capture instrument itself died
    with capture(encoder.url, no_signal_after=0.3, lost_after=1.0) as cap:
        cap.next_frame(timeout=5)
        encoder.kill()
        with pytest.raises(InfraError) as info:
            cap.wait_for_no_signal(timeout=5)
        assert info.value.instrument == "video" and "refused" in str(info.value)
    # still unreachable at the timeout, not yet lost
    with capture(encoder.url, no_signal_after=0.3, lost_after=10.0) as cap, pytest.raises(InfraError, match="unreach"):
        cap.wait_for_no_signal(timeout=1.5)


def test_stalled_stream_does_not_hang_and_reads_as_no_signal(encoder: Encoder) -> None:
    with capture(encoder.url, no_signal_after=0.5, read_timeout=0.5) as cap:
        cap.next_frame(timeout=5)
        encoder.stalled = True  # connection stays open, nothing arrives
        t0 = time.monotonic()
        with pytest.raises(CaptureTimeout):
            while True:
                cap.next_frame(timeout=1.5)
        assert time.monotonic() - t0 < 5
        assert cap.signal == NO_SIGNAL
        encoder.stalled = False
        assert cap.wait_for_signal(timeout=10).seq > 0


def test_capture_that_cannot_reach_its_encoder_at_all() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with capture(f"http://127.0.0.1:{port}/stream.mjpg", lost_after=0.5) as cap:
        with pytest.raises(InfraError, match="unreachable"):
            cap.next_frame(timeout=5)
        assert cap.latest() is None


# ----------------------------------------------------------------------------------- ring, clips


def test_ring_keeps_only_the_last_seconds_compressed(encoder: Encoder) -> None:
    with capture(encoder.url, ring_seconds=1.0) as cap:
        cap.next_frame(timeout=5)
        time.sleep(2.0)
        entries = cap.ring.entries()
        assert entries[-1].time - entries[0].time <= 1.0
        assert 15 <= len(entries) <= 30
        assert cap.ring.nbytes == sum(len(e.jpeg) for e in entries)
        assert cap.ring.nbytes < len(entries) * W * H * 3 / 5  # compressed, not raw arrays


def test_save_clip_and_save_frame(tmp_path: Path, encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        cap.next_frame(timeout=5)
        time.sleep(1.2)
        for suffix in (".avi", ".mp4"):
            clip = cap.save_clip(tmp_path / f"sub/clip{suffix}", seconds=1.0)
            reader = cv2.VideoCapture(str(clip))
            n = 0
            while True:
                ok, img = reader.read()
                if not ok:
                    break
                n += 1
                assert img.shape == (H, W, 3)
            reader.release()
            assert 20 <= n <= 27
        jpg = cap.save_frame(tmp_path / "last.jpg")
        assert jpg.read_bytes()[:2] == b"\xff\xd8"
        png = cap.save_frame(tmp_path / "last.png")
        assert cv2.imread(str(png)).shape == (H, W, 3)
        f = cap.latest()
        assert f is not None
        cap.save_frame(tmp_path / "given.png", f)
        assert np.abs(cv2.imread(str(tmp_path / "given.png")).astype(int) - f.image).max() == 0
        with pytest.raises(TestError, match="clip must end in"):
            cap.save_clip(tmp_path / "clip.gif")


def test_a_clip_that_cannot_be_written_leaves_no_part_file(tmp_path: Path) -> None:
    from lab.drivers.ring import FrameRing

    ring = FrameRing(seconds=5)
    ok, jpeg = cv2.imencode(".jpg", draw(1))
    for i in range(5):
        ring.add(i, i / 25, jpeg.tobytes(), W, H)
    (tmp_path / "clip.avi").mkdir()  # the clip's name is taken by a folder: the final rename fails
    with pytest.raises(OSError):
        ring.save_clip(tmp_path / "clip.avi")
    assert [p.name for p in tmp_path.iterdir()] == ["clip.avi"]


def test_frames_since_replays_what_the_ring_still_holds(encoder: Encoder) -> None:
    with capture(encoder.url) as cap:
        cap.next_frame(timeout=5)
        mark = time.monotonic()
        time.sleep(1.0)  # longer than max_lag: a replay still gets every frame since the mark
        replay = []
        for f in cap.frames(timeout=1, since=mark):
            replay.append(f)
            if len(replay) == 40:
                break
        assert replay[0].time >= mark and replay[0].time - mark < 0.1
        assert [f.seq for f in replay] == list(range(replay[0].seq, replay[0].seq + 40))
        assert cap.consumer_dropped == 0


# ----------------------------------------------------------------------------------- files, rigs


def _write_file(path: Path, codec: str, missing: set[int]) -> None:
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height = W, H
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.time_base = Fraction(1, 25)
        for i in range(30):
            if i in missing:
                continue
            frame = av.VideoFrame.from_ndarray(draw(i)[:, :, ::-1].copy(), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("codec", ["mjpeg", "mpeg4"])
def test_file_source_times_from_pts_and_gaps_counted(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"rec_{codec}.mkv"
    _write_file(path, codec, missing={12, 13})
    with Capture(str(path), rig_name="f") as cap:
        got = list(cap.frames(timeout=5, since=-1e9))
        assert cap.ended
    assert len(got) == 28
    assert [round(f.time, 3) for f in got[:3]] == [0.0, 0.04, 0.08]
    assert got[12].seq == 14 and got[12].time == pytest.approx(0.56, abs=0.002)
    assert cap.dropped == 2
    assert [read_counter(f.image) for f in got[:3]] == [0, 1, 2]
    assert cap.raw_jpeg == (codec == "mjpeg")


def test_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="does not exist"):
        Capture(str(tmp_path / "nope.avi")).start()
    with pytest.raises(TestError):
        Capture("http://127.0.0.1:1/x", fps_hint=0)
    with pytest.raises(TestError):
        Capture("http://127.0.0.1:1/x", no_signal_after=0)


def test_from_rig(tmp_path: Path, encoder: Encoder) -> None:
    from lab.rig import load_rigs

    rig_file = tmp_path / "rigs.yaml"
    rig_file.write_text(
        "rigs:\n  - name: r9\n    model: M\n"
        f"    video: {{url: '{encoder.url}', fps: 25, no_signal_after: 0.7, ring_seconds: 3}}\n"
    )
    cap = Capture.from_rig(load_rigs(rig_file)["r9"])
    try:
        assert (cap.rig_name, cap.fps_hint, cap.no_signal_after, cap.ring.seconds) == ("r9", 25, 0.7, 3)
        assert cap.next_frame(timeout=5).image.shape == (H, W, 3)  # starts on first use
    finally:
        cap.close()


def test_udp_mpegts_stream_is_captured_and_its_end_reads_as_no_signal() -> None:
    """A non-MJPEG live source (MPEG-2 in MPEG-TS over UDP, as an IPTV encoder sends it)."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"udp://127.0.0.1:{port}?overrun_nonfatal=1&fifo_size=50000"
    # The stream lasts 10 s: FFmpeg's probe of a UDP source takes 1.6-4.5 s before the first frame even on
    # an idle host (measured), and a probe that outlasts the open timeout is retried; both must fit in it.
    cap = capture(url, fps_hint=25, no_signal_after=0.5, open_timeout=8.0, read_timeout=1.0).start()
    udp_bound(port)  # datagrams sent before the capture listens are lost, and the probe with them
    sender = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "20"]
        + ["-c:v", "mpeg2video", "-q:v", "5", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdin=subprocess.DEVNULL,
    )
    try:
        first = cap.next_frame(timeout=20)  # a first open that times out (8 s) is retried: room for both
        assert first.image.shape == (240, 320, 3)
        seqs = [f.seq for f in cap.frames(timeout=1.0)]
        assert len(seqs) >= 15 and seqs == sorted(seqs)
        assert not cap.raw_jpeg and cap.ring.newest() is not None  # re-encoded into the ring
        assert cap.ring.newest().jpeg[:2] == b"\xff\xd8"  # type: ignore[union-attr]
        sender.wait(timeout=30)
        cap.wait_for_no_signal(timeout=5)
        assert cap.signal == NO_SIGNAL  # nothing to probe on udp: silence is no signal, not lost
    finally:
        sender.kill()
        sender.wait()
        cap.close()
