"""Single-frame checks: black, motion, freeze, match (with colour confirmation), blockiness, screens."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from video_clips import lavfi_frames

from lab.errors import DeviceFault
from lab.video import (
    Frame,
    FreezeDetector,
    MotionDetector,
    Region,
    VideoCheckFailed,
    blockiness,
    detect_freeze,
    detect_motion,
    is_black,
    is_colour_bars,
    is_no_signal,
    match,
    ocr_available,
)


def _logo() -> np.ndarray:
    logo = np.zeros((100, 200, 3), np.uint8)
    logo[:] = (40, 160, 230)  # orange ground
    cv2.circle(logo, (45, 50), 32, (200, 60, 20), -1)
    cv2.putText(logo, "TV5", (85, 72), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (255, 255, 255), 5)
    return logo


def _recolour_same_luma(image: np.ndarray) -> np.ndarray:
    """The same picture with its luma kept and its colour turned blue (what a grey-only check cannot see)."""
    ycc = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    ycc[:, :, 1] = 110  # Cr: less red
    ycc[:, :, 2] = 190  # Cb: blue
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    return lavfi_frames("testsrc2", 1, 1280, 720)[0].copy()


def _jpeg(image: np.ndarray, quality: int = 55) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def test_black_max_mode_is_strict_and_ratio_mode_tolerates_a_small_logo() -> None:
    frame = np.full((360, 640, 3), 8, np.uint8)
    assert is_black(frame) and is_black(frame, mode="ratio")
    frame[10:30, 10:60] = 230  # a small "REC" logo on black: 0.4 % of the picture
    assert not is_black(frame)
    result = is_black(frame, mode="ratio")
    assert result and result.score == pytest.approx(1 - 1000 / (640 * 360))
    dim = np.full((360, 640, 3), 40, np.uint8)  # dark grey is not black in either mode
    assert not is_black(dim) and not is_black(dim, mode="ratio")


def test_black_letterbox_bar_next_to_the_picture() -> None:
    # 2.39:1 film on a 1080p screen: black bars above row 138 and from row 941 down, picture between
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[138:941] = 200
    assert is_black(frame, region=Region(0, 941, 1920, 139))  # the picture's last row is not in the bar
    assert is_black(frame, region=Region(0, 0, 1920, 138))
    assert not is_black(frame, region=Region(0, 940, 1920, 140))
    frame[1079, 1919] = 200  # one lit pixel the sampling skips: the full check still finds it
    assert not is_black(frame, region=Region(0, 941, 1920, 139))


def test_motion_sees_colour_change_at_equal_brightness_and_ignores_noise() -> None:
    rng = np.random.default_rng(3)
    base = np.full((270, 480, 3), 120, np.uint8)
    noisy = np.clip(base.astype(int) + rng.integers(-10, 11, base.shape), 0, 255).astype(np.uint8)
    assert not detect_motion(noisy, base)
    changed = base.copy()
    patch = np.full((40, 40, 3), 120, np.uint8)
    changed[100:140, 200:240] = _recolour_same_luma(patch)
    assert cv2.cvtColor(changed, cv2.COLOR_BGR2GRAY)[120, 220] == pytest.approx(120, abs=3)
    result = detect_motion(changed, base)
    assert result and result.region.contains(Region(204, 104, 32, 32)) and result.region.area < 60 * 60
    tiny = base.copy()
    tiny[10:12, 10:12] = 255
    assert not detect_motion(tiny, base, min_size=(8, 8))
    assert detect_motion(tiny, base, min_size=(1, 1))


def test_motion_x_of_last_y_frames() -> None:
    still = np.zeros((120, 160, 3), np.uint8)
    moving = still.copy()
    moving[40:80, 40:80] = 200
    detector = MotionDetector(consecutive="3/5")
    pattern = [still, moving, moving, still, moving, still, moving]  # changes at frames 1, 3, 4, 5, 6
    results = [detector.update(Frame(img, i * 0.04, i)) for i, img in enumerate(pattern)]
    assert [bool(r) for r in results] == [False, False, False, False, True, True, True]
    assert results[3].details["moving_frames"] == 2 and results[4].details["moving_frames"] == 3
    with pytest.raises(ValueError, match="10/20"):
        MotionDetector(consecutive="ten")


def test_freeze_needs_the_duration_and_catches_slow_fades() -> None:
    image = lavfi_frames("testsrc2", 1)[0]
    frames = [Frame(image, i / 25, i) for i in range(30)]
    assert not detect_freeze(frames[:20], duration=1.0)  # 0.8 s still
    result = detect_freeze(frames[:25], duration=1.0)  # 25 frames at 25 fps: 1.0 s on screen
    assert result and result.details["since"] == 0.0
    # a fade whose neighbouring frames differ by less than the noise is not a freeze
    fade = [Frame((image * (1 - i / 60)).astype(np.uint8), i / 25, i) for i in range(50)]
    detector = FreezeDetector(duration=1.0)
    assert not any(detector.update(f) for f in fade)
    assert all(int(np.abs(fade[i + 1].image.astype(int) - fade[i].image).max()) <= 12 for i in range(49))


def test_match_finds_logo_under_jpeg_noise(background: np.ndarray) -> None:
    logo = _logo()
    scene = background.copy()
    scene[400:500, 900:1100] = logo
    result = match(logo, _jpeg(scene))
    assert result, result.describe()
    assert result.region == Region(900, 400, 200, 100)
    assert result.score > 0.95
    assert not match(logo, _jpeg(background))  # not there: no match


def test_match_rejects_the_same_logo_recoloured_grey_on_blue(background: np.ndarray) -> None:
    logo = _logo()
    scene = background.copy()
    scene[400:500, 900:1100] = _recolour_same_luma(logo)
    result = match(logo, _jpeg(scene))
    # the grey passes find it (same luma) -- only the colour confirmation says no
    assert result.score > 0.9 and result.region == Region(900, 400, 200, 100)
    assert not result
    assert "colour differs" in result.details["why"]
    with pytest.raises(VideoCheckFailed) as raised:
        result.check("channel 5 logo", rig="stb-a")
    assert isinstance(raised.value, DeviceFault) and raised.value.rig == "stb-a"


def test_match_anywhere_off_the_jpeg_grid(background: np.ndarray) -> None:
    """JPEG keeps colour at half resolution in 8/16-pixel blocks: odd positions must confirm too."""
    logo, recoloured = _logo(), _recolour_same_luma(_logo())
    rng = np.random.default_rng(7)
    for _ in range(12):
        x, y = int(rng.integers(0, 1080)), int(rng.integers(0, 620))
        for picture, wanted in ((logo, True), (recoloured, False)):
            scene = background.copy()
            scene[y : y + 100, x : x + 200] = picture
            result = match(logo, _jpeg(scene, 60))
            assert bool(result) is wanted, (x, y, result.describe())
            assert result.region == Region(x, y, 200, 100)


def test_match_transparent_reference_ignores_what_is_behind(background: np.ndarray, tmp_path) -> None:
    logo = _logo()
    alpha = np.zeros(logo.shape[:2], np.uint8)
    cv2.circle(alpha, (45, 50), 30, 255, -1)  # only the disc is the reference
    cv2.imwrite(str(tmp_path / "disc.png"), np.dstack([logo, alpha]))
    scene = background.copy()
    disc = alpha > 0
    scene[200:300, 300:500][disc] = logo[disc]  # the disc over whatever the background shows
    result = match(tmp_path / "disc.png", _jpeg(scene, 70))
    assert result, result.describe()
    assert result.region == Region(300, 200, 200, 100)


def test_match_within_region_and_saves_evidence(background: np.ndarray, tmp_path) -> None:
    logo = _logo()
    scene = background.copy()
    scene[50:150, 50:250] = logo
    assert match(logo, scene, region=Region(0, 0, 400, 300))
    assert not match(logo, scene, region=Region(640, 0, 640, 720))
    path = match(logo, scene).save_png(tmp_path / "evidence" / "match.png")
    picture = cv2.imread(str(path))
    assert picture.shape[1] == scene.shape[1] and picture.shape[0] > scene.shape[0]  # caption band below
    assert (picture[: scene.shape[0], 300:] == scene[:, 300:]).all()  # the picture itself untouched
    assert tuple(picture[100, 50]) == (0, 200, 0)  # the green outline on the left edge of the match


def test_match_in_a_region_smaller_than_the_reference_names_the_reference(tmp_path) -> None:
    path = tmp_path / "tv5-logo.png"
    cv2.imwrite(str(path), _logo())
    result = match(path, np.zeros((720, 1280, 3), np.uint8), region=Region(0, 0, 100, 50))
    assert not result and result.details["why"] == "region smaller than reference"
    assert result.symptom == "no-match:tv5-logo.png"  # the fault title says which reference was missing


def test_blockiness_rises_with_quantisation(clip_dir) -> None:
    frames = lavfi_frames("testsrc2", 6, 352, 288)
    scores = []
    for q in (2, 10, 31):
        path = clip_dir / f"q{q}.ts"
        cmd = ["-c:v", "mpeg2video", "-q:v", str(q), "-g", "1", "-f", "mpegts"]
        from video_clips import encode

        encode(frames, path, *cmd)
        from lab.video import FileSource

        scores.append(np.mean([blockiness(f).score for f in FileSource(path)]))
    assert scores[0] < scores[1] < scores[2], scores
    assert scores[2] > 1.5 * scores[0]


@pytest.mark.parametrize("source", ["smptebars", "smptehdbars", "pal75bars"])
def test_colour_bars_recognised(source: str) -> None:
    frame = lavfi_frames(source, 1, 640, 360)[0]
    result = is_colour_bars(_jpeg(frame, 60))
    assert result and result.score > 0.6


@pytest.mark.parametrize("source", ["testsrc2", "rgbtestsrc", "mandelbrot"])
def test_other_pictures_are_not_colour_bars(source: str) -> None:
    assert not is_colour_bars(lavfi_frames(source, 1, 640, 360)[0])


def test_no_signal_screens() -> None:
    blue = np.zeros((480, 640, 3), np.uint8)
    blue[:] = (160, 30, 20)
    cv2.putText(blue, "NO SIGNAL", (200, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    assert is_no_signal(blue)
    panel = np.full((480, 640, 3), 45, np.uint8)
    cv2.rectangle(panel, (150, 160), (490, 320), (90, 60, 40), -1)
    cv2.putText(panel, "No signal", (200, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    assert is_no_signal(panel)
    assert not is_no_signal(np.zeros((480, 640, 3), np.uint8))  # black is is_black's business
    assert not is_no_signal(lavfi_frames("testsrc2", 1, 640, 480)[0])
    assert not is_no_signal(lavfi_frames("smptebars", 1, 640, 480)[0])
    # with the rig's own reference picture
    reference = panel[160:320, 150:490].copy()
    assert is_no_signal(panel, reference=reference)
    assert not is_no_signal(blue, reference=reference)
    # a region is judged on its own: one quadrant of a multiviewer has no signal, the rest is live
    wall = lavfi_frames("testsrc2", 1, 1280, 960)[0].copy()
    wall[:480, :640] = blue
    assert is_no_signal(wall, region=Region(0, 0, 640, 480))
    assert not is_no_signal(wall, region=Region(640, 0, 640, 480))


def test_emulated_box_screens() -> None:
    hdmi = pytest.importorskip("lab.emulator.hdmi")
    screen = pytest.importorskip("lab.emulator.screen")
    renderer = hdmi.Renderer()
    kinds = {k: renderer.render(screen.ScreenState(kind=k, channel=1), 0.0) for k in ("no_channel", "live", "home")}
    assert is_no_signal(kinds["no_channel"])
    assert not is_no_signal(kinds["live"]) and not is_no_signal(kinds["home"])
    assert not is_black(kinds["live"]) and is_black(renderer.render(screen.ScreenState(kind="standby"), 0.0))


def test_ocr_reads_text_when_available() -> None:
    reason = ocr_available()
    if reason:
        pytest.skip(reason)
    from lab.video import match_text, ocr

    frame = np.full((200, 800, 3), 255, np.uint8)
    cv2.putText(frame, "Settings", (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (0, 0, 0), 5)
    assert "Settings" in ocr(frame).text
    assert match_text("settings", frame)


def test_bad_input_is_refused_clearly(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot read reference image"):
        match(tmp_path / "nope.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="8-bit BGR"):
        is_black(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="frames differ in size"):
        detect_motion(np.zeros((10, 10, 3), np.uint8), np.zeros((20, 10, 3), np.uint8))


def test_ocr_reads_the_emulated_box_no_signal_message() -> None:
    reason = ocr_available()
    if reason:
        pytest.skip(reason)
    hdmi = pytest.importorskip("lab.emulator.hdmi")
    screen = pytest.importorskip("lab.emulator.screen")
    from lab.video import match_text

    frame = hdmi.Renderer().render(screen.ScreenState(kind="no_channel", channel=3), 0.0)
    assert match_text("No signal on this channel", _jpeg(frame, 70), region=Region(290, 250, 700, 220))
    assert not match_text("Settings", frame, region=Region(290, 250, 700, 220))


def test_match_with_a_region_mask_of_the_reference(background: np.ndarray) -> None:
    """Part of the logo is covered (a volume bar over it): mask that part of the reference out."""
    logo = _logo()
    scene = background.copy()
    scene[300:400, 500:700] = logo
    scene[300:400, 500:580] = (0, 255, 0)
    assert not match(logo, scene)
    result = match(logo, scene, mask=Region(80, 0, 120, 100))
    assert result and result.region == Region(500, 300, 200, 100)


def test_match_skips_a_grey_lookalike_to_find_the_real_logo(background: np.ndarray) -> None:
    """A recoloured copy that looks the same in grey must not hide the real logo elsewhere."""
    logo = _logo()
    scene = background.copy()
    scene[100:200, 100:300] = _recolour_same_luma(logo)  # the decoy: a perfect grey likeness
    scene[500:600, 900:1100] = logo
    scene[520:522, 900:1100] = 0  # a thin line drawn over the real logo makes it the second-best grey candidate
    result = match(logo, _jpeg(scene, 80))
    assert result and result.region == Region(900, 500, 200, 100), result.describe()


def test_match_all_finds_every_copy_but_not_the_recoloured_one(background: np.ndarray) -> None:
    from lab.video import match_all

    logo = _logo()
    scene = background.copy()
    places = [(40, 60), (700, 60), (300, 400), (1000, 550)]
    for x, y in places[:3]:
        scene[y : y + 100, x : x + 200] = logo
    x, y = places[3]
    scene[y : y + 100, x : x + 200] = _recolour_same_luma(logo)
    found = match_all(logo, _jpeg(scene, 70))
    assert [r.region for r in found] == [Region(x, y, 200, 100) for x, y in sorted(places[:3], key=lambda p: p[::-1])]
    assert all(found)
    assert match_all(logo, background) == []
