from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from blurcam import BackgroundBlur, Settings, SettingsError
from blurcam.frame import as_bgr
from blurcam.nodes import follow
from blurcam.pipeline import Stream
from blurcam.settings import EffectSettings, MaskSettings
from blurcam.testing import FakeFaceDetector, FakeSegmenter, disc_mask, synthetic_frame


def test_person_pixels_exact_background_changed(frame: np.ndarray) -> None:
    bb = BackgroundBlur(strength=0.8, segmenter=FakeSegmenter())
    out = bb.process(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    alpha = bb.last_alpha
    assert alpha is not None and alpha.shape == frame.shape[:2] and alpha.dtype == np.uint8
    person = alpha == 255
    back = alpha == 0
    assert person.mean() > 0.15 and back.mean() > 0.3
    assert np.array_equal(out[person], frame[person])
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    assert (diff[back] > 0).mean() > 0.5  # the striped background is blurred


def test_alpha_matches_true_mask(frame: np.ndarray) -> None:
    bb = BackgroundBlur(segmenter=FakeSegmenter())
    bb.process(frame)
    truth = disc_mask() > 127
    pred = bb.last_alpha > 127
    iou = (truth & pred).sum() / (truth | pred).sum()
    assert iou > 0.95


def test_strength_zero_is_identity(frame: np.ndarray) -> None:
    bb = BackgroundBlur(strength=0.0, segmenter=FakeSegmenter())
    assert np.array_equal(bb.process(frame), frame)


def test_stronger_blur_removes_more_detail(frame: np.ndarray) -> None:
    import cv2

    def detail(s: float) -> float:
        out = BackgroundBlur(strength=s, segmenter=FakeSegmenter()).process(frame)
        back = disc_mask() == 0
        lap = cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.CV_32F)
        return float(np.abs(lap[back]).mean())

    assert detail(0.2) > detail(0.5) > detail(1.0)


def test_reset_forgets_history(frame: np.ndarray) -> None:
    st = Stream(Settings(mask=MaskSettings(smoothing=0.9)), FakeSegmenter())
    st.process(frame)
    assert st.frames == 1
    st.reset()
    assert st.frames == 0 and st.last_alpha is None


def test_follow_reuses_mask_without_the_model(frame: np.ndarray) -> None:
    seg = FakeSegmenter()
    st = Stream(Settings(), seg)
    packet = st.mask_packet(frame)
    first = st.render(frame, packet).copy()
    carried = follow(packet, frame, st.settings)
    assert not carried.inferred and carried.prob is packet.prob
    assert np.array_equal(st.render(frame, carried), first)
    assert seg.calls == 1


def test_settings_validation() -> None:
    with pytest.raises(SettingsError):
        EffectSettings(strength=1.5)
    with pytest.raises(SettingsError):
        EffectSettings(kind="sparkles")
    with pytest.raises(SettingsError):
        MaskSettings(smoothing=1.0)
    with pytest.raises(ValueError):  # SettingsError is a ValueError
        BackgroundBlur(strength=-0.1)


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((7, 9), np.uint8),
        np.zeros((7, 9, 1), np.uint8),
        np.zeros((7, 9, 4), np.uint8),
        np.full((7, 9, 3), 4096, np.uint16),
        np.zeros((7, 9, 3), np.float32),
    ],
)
def test_as_bgr_accepts_odd_inputs(img: np.ndarray) -> None:
    out = as_bgr(img)
    assert out.shape == (7, 9, 3) and out.dtype == np.uint8


def test_odd_sizes_keep_shape() -> None:
    for w, h in [(1, 1), (3, 5), (33, 17)]:
        f = synthetic_frame(max(w, 8), max(h, 8))[:h, :w]
        out = BackgroundBlur(segmenter=FakeSegmenter()).process(f)
        assert out.shape == (h, w, 3)


def test_main_person_survives_frames_without_inference() -> None:
    import cv2

    from blurcam.settings import GuardSettings

    f = synthetic_frame(320, 240, cx=0.45, r=0.3)
    cv2.circle(f, (300, 40), 15, (40, 90, 200), -1)  # a second, small "person" in a corner
    st = Stream(Settings(guards=GuardSettings(face=False, people="main")), FakeSegmenter())
    st.process(f)
    assert st.last_alpha is not None and st.last_alpha[40, 300] == 0
    st.render(f, follow(st.mask_packet(f), f, st.settings))
    assert st.last_alpha[40, 300] == 0  # the carried mask keeps only the main person
    assert st.last_alpha[120, 144] == 255


def _moving(n: int) -> list[np.ndarray]:
    """A disc crossing the frame, 6 px a frame (a person walking)."""
    return [synthetic_frame(cx=0.3 + 0.02 * i) for i in range(n)]


def test_still_frames_skip_the_model_moving_ones_do_not() -> None:
    frame = synthetic_frame()
    seg = FakeSegmenter()
    st = Stream(Settings(), seg)
    for _ in range(9):
        st.process(frame)
    # still: the model runs on frame 1, then at most every third frame (still_reuse 2)
    assert seg.calls == 3
    ref = Stream(Settings(mask=MaskSettings(still_reuse=0)), FakeSegmenter())
    for _ in range(9):
        ref.process(frame)
    assert np.array_equal(st.last_alpha, ref.last_alpha)  # the carried mask is the mask
    moving = FakeSegmenter()
    st = Stream(Settings(), moving)
    for f in _moving(9):
        st.process(f)
        assert st.last_inferred
    assert moving.calls == 9
    # the mask follows the moving disc on every frame: no lag from the gate
    truth = disc_mask(cx=0.3 + 0.02 * 8) > 127
    pred = st.last_alpha > 127
    assert (truth & pred).sum() / (truth | pred).sum() > 0.95


def test_carried_mask_is_refined_on_the_new_image() -> None:
    """When the gate skips the model, the last fit of the edge refinement is
    applied to the new frame, so the edge moves with what moved a little."""
    from blurcam.settings import GuardSettings

    # the refinement in full (the disc is a little thin for it to fade in all the way)
    ms = MaskSettings(still_moved=1.0, refine_thick_low=0.0, refine_thick_high=0.0)
    s = Settings(mask=ms, guards=GuardSettings(face=False))
    st = Stream(s, seg := FakeSegmenter())
    st.process(synthetic_frame(cx=0.5))
    assert st.last_alpha is not None
    before = st.last_alpha > 127
    st.process(synthetic_frame(cx=0.5 + 2 / 320))  # the disc moved 2 px to the right
    assert seg.calls == 1 and not st.last_inferred  # carried
    gained = (disc_mask(cx=0.5 + 2 / 320) > 127) & ~(disc_mask(cx=0.5) > 127)
    after = st.last_alpha > 127
    assert after[gained].mean() > before[gained].mean() + 0.1  # 0.25 -> 0.42


@pytest.mark.parametrize(
    ("kind", "fn"),
    [
        ("blur", "blur_layer"),
        ("bokeh", "bokeh_layer"),
        ("depth", "depth_layer"),
        ("replace", "light_wrap"),
    ],
)
def test_still_frames_reuse_the_effect_layer(
    monkeypatch: pytest.MonkeyPatch, kind: str, fn: str
) -> None:
    """On frames the gate carries, the background layer (for the blur, its small
    layer) is reused too: made on 3 of 9 still frames, and every output is
    what making it again gives; moving frames make it every time."""
    from blurcam import effects

    made = []
    real = getattr(effects, fn)

    def counting(*args: object, **kw: object) -> object:
        made.append(1)
        return real(*args, **kw)

    frame = synthetic_frame()
    e = EffectSettings(kind=kind)
    ref = Stream(Settings(effect=e, mask=MaskSettings(still_reuse=0)), FakeSegmenter())
    expected = [ref.process(frame).copy() for _ in range(9)]
    monkeypatch.setattr(effects, fn, counting)
    st = Stream(Settings(effect=e), FakeSegmenter())
    for want in expected:
        assert np.array_equal(st.process(frame), want)
    assert len(made) == 3
    made.clear()
    for f in _moving(4):
        st.process(f)
    assert len(made) == 4


def test_video_background_is_never_reused(tmp_path: Path) -> None:
    """A video background moves on every frame, camera still or not."""
    import cv2

    from blurcam.io.background import BackgroundSource

    path = tmp_path / "bg.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(12):
        vw.write(np.full((48, 64, 3), 20 * i, np.uint8))
    vw.release()
    st = Stream(Settings(effect=EffectSettings(kind="replace")), FakeSegmenter())
    st.set_background(BackgroundSource(str(path)))
    frame = synthetic_frame()
    corner = [int(st.process(frame)[2, 2].mean()) for _ in range(6)]
    assert len(set(corner)) == 6  # a new background frame every time


def test_still_gate_off_runs_every_frame() -> None:
    seg = FakeSegmenter()
    st = Stream(Settings(mask=MaskSettings(still_reuse=0)), seg)
    for _ in range(5):
        st.process(synthetic_frame())
    assert seg.calls == 5


def _clip_hash(outs: Iterable[np.ndarray]) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for o in outs:
        h.update(np.ascontiguousarray(o).tobytes())
        n += 1
    return h.hexdigest(), n


@pytest.mark.parametrize("kind", ["blur", "bokeh", "replace", "depth"])
def test_process_iter_gives_exactly_what_process_gives(kind: str) -> None:
    """A hash over a clip (moving, then still, with a kept region and the face guard):
    the mask node a frame or two ahead on its own thread changes no byte."""
    frames = _moving(6) + [synthetic_frame(cx=0.42)] * 4  # moving, then still
    s = Settings(effect=EffectSettings(kind=kind, keep_box=(10.0, 10.0, 40.0, 30.0)))
    face = (0.45, 0.35, 0.55, 0.55)
    one = Stream(s, FakeSegmenter(), face_detector=FakeFaceDetector(face))
    expected = _clip_hash(one.process(f) for f in frames)
    seg = FakeSegmenter()
    many = Stream(s, seg, face_detector=FakeFaceDetector(face))
    assert _clip_hash(many.process_iter(iter(frames))) == expected
    assert expected[1] == len(frames)
    assert seg.calls < len(frames)  # the still tail reused the mask there too
    assert list(many.process_iter([])) == []


def test_process_iter_raises_model_errors_in_the_caller() -> None:
    class Broken(FakeSegmenter):
        def __call__(self, frame: np.ndarray) -> np.ndarray:
            if self.calls >= 2:
                raise RuntimeError("model died")
            return super().__call__(frame)

    st = Stream(Settings(mask=MaskSettings(still_reuse=0)), Broken())
    got = 0
    with pytest.raises(RuntimeError, match="model died"):
        for _ in st.process_iter(_moving(5)):
            got += 1
    assert got in (1, 2)  # frames whose mask was made before the failure


def test_background_blur_process_iter_yields_owned_copies() -> None:
    frames = _moving(4)
    bb = BackgroundBlur(segmenter=FakeSegmenter())
    outs = list(bb.process_iter(frames))
    one = BackgroundBlur(segmenter=FakeSegmenter())
    for f, got in zip(frames, outs, strict=True):
        assert np.array_equal(one.process(f), got)
    assert len({id(o) for o in outs}) == 4


def test_opencv_threads_is_restored_even_on_error() -> None:
    import cv2

    from blurcam.pool import opencv_threads

    before = cv2.getNumThreads()
    with pytest.raises(RuntimeError), opencv_threads(1):
        assert cv2.getNumThreads() == 1
        raise RuntimeError("job failed")
    assert cv2.getNumThreads() == before


@pytest.mark.parametrize("ahead", [1, 3])
def test_process_iter_depth_does_not_change_the_output(ahead: int) -> None:
    frames = _moving(5) + [synthetic_frame(cx=0.4)] * 3
    one = Stream(Settings(), FakeSegmenter())
    expected = [one.process(f).copy() for f in frames]
    st = Stream(Settings(), FakeSegmenter())
    got = [o.copy() for o in st.process_iter(frames, ahead=ahead)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    with pytest.raises(SettingsError):
        next(st.process_iter(frames, ahead=0))


def test_process_image_runs_the_model_on_the_photo_and_its_mirror() -> None:
    class LeftBiased(FakeSegmenter):
        """Sees the person only in the left half of what it is shown (a lopsided model)."""

        def __call__(self, frame: np.ndarray) -> np.ndarray:
            p = super().__call__(frame)
            p[:, p.shape[1] // 2 :] *= 0.5
            return p

    frame = synthetic_frame()
    seg = LeftBiased()
    st = Stream(Settings(), seg)
    st.process(frame)
    st.process(frame)
    video_alpha = st.last_alpha.copy()
    calls = seg.calls
    st.process_image(frame)
    assert seg.calls == calls + st.settings.mask.photo_views  # all views, no history carried in
    photo_alpha = st.last_alpha
    # averaging with the mirror evens out the lopsided model: the disc comes out symmetric
    left, right = photo_alpha[:, :160], photo_alpha[:, 160:][:, ::-1]
    v_left, v_right = video_alpha[:, :160], video_alpha[:, 160:][:, ::-1]
    assert np.abs(left.astype(int) - right).mean() < np.abs(v_left.astype(int) - v_right).mean()
    truth = disc_mask() > 127
    pred = photo_alpha > 127
    assert (truth & pred).sum() / (truth | pred).sum() > 0.9


def test_blur_file_uses_the_photo_path_for_images(tmp_path: Path) -> None:
    import cv2

    from blurcam.jobs import blur_file

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame())
    seg = FakeSegmenter()
    st = Stream(Settings(), seg)
    blur_file(src, tmp_path / "out.png", Settings(), stream=st)
    assert seg.calls == Settings().mask.photo_views


class TwoPeople(FakeSegmenter):
    """A model that is sure of the blue person and barely sees a second one in dark clothes,
    and only in the left half of what it is shown (a lopsided model: a mirror view misses
    them). ``blind`` frames pass before it sees the dark one at all."""

    DARK = (30, 30, 30)

    def __init__(self, blind: int = 0) -> None:
        super().__init__()
        self.blind = blind

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        p = super().__call__(frame) * np.float32(0.95)
        dark = (np.abs(frame.astype(np.int16) - self.DARK).sum(axis=2) < 20).astype(np.float32)
        d = cv2.resize(dark, self.input_size, interpolation=cv2.INTER_AREA)
        d[:, self.input_size[0] // 2 :] *= 0.3
        if self.calls <= self.blind:
            d[:] = 0.0
        return np.maximum(p, d * np.float32(0.58)).astype(np.float32)


def _scene_two(dark: bool = True) -> np.ndarray:
    import cv2

    f = synthetic_frame(cx=0.65, r=0.3)
    if dark:
        cv2.circle(f, (70, 130), 38, TwoPeople.DARK, -1)
    return f


def _kept(alpha: np.ndarray, region: np.ndarray) -> float:
    return float((alpha[region] >= 128).mean())


def test_no_stage_drops_a_person_the_raw_model_keeps() -> None:
    """The invariant: where the raw model gives a region above 0.5, the final alpha keeps it
    (photo path: whatever the mirror view says; video: a person stepping in at once, one the
    model starts seeing in a still scene from its second frame), unless people=main."""
    import cv2

    frame = _scene_two()
    raw = cv2.resize(TwoPeople()(frame), (320, 240), interpolation=cv2.INTER_LINEAR) > 0.5
    dark = np.zeros((240, 320), bool)
    cv2.circle(dark.view(np.uint8), (70, 130), 38, 1, -1)
    dark &= raw
    assert dark.sum() > 2000  # the raw model keeps the dark person
    # photo: the mirror view does not see them, the average would drop them
    st = Stream(Settings(), TwoPeople())
    st.process_image(frame)
    assert st.last_alpha is not None and _kept(st.last_alpha, dark) > 0.9
    assert _kept(st.last_alpha, disc_mask(cx=0.65) > 127) > 0.95
    # video: the dark person walks in (the image changes): kept on the first frame
    st = Stream(Settings(), TwoPeople())
    for f in (_scene_two(dark=False), _scene_two(dark=False), frame, frame):
        st.process(f)
    assert st.last_alpha is not None and _kept(st.last_alpha, dark) > 0.9
    # video: a still scene in which the model starts seeing them late: kept from its second
    # frame (a region seen on one frame only is the model's flicker, which smoothing removes);
    # the still gate off, so that the model runs on every frame
    seg = TwoPeople(blind=3)
    st = Stream(Settings(mask=MaskSettings(still_reuse=0)), seg)
    kept = []
    for _ in range(8):
        st.process(frame)
        kept.append(_kept(st.last_alpha, dark) > 0.9)
    assert kept[seg.blind + 1 :] == [True] * (len(kept) - seg.blind - 1)
    # people=main asks otherwise: the second person is blurred with the background
    from blurcam.settings import GuardSettings

    st = Stream(Settings(guards=GuardSettings(people="main")), TwoPeople())
    st.process_image(frame)
    assert st.last_alpha is not None and _kept(st.last_alpha, dark) < 0.1


def test_auto_picks_the_model_for_each_photo() -> None:
    """A BackgroundBlur reused across photos picks per photo: a tall photo after a wide one
    runs on the general model, not the landscape one the first photo chose."""
    bb = BackgroundBlur()
    try:
        bb.process_image(synthetic_frame(640, 360))
        assert bb.stream.segmenter is not None and bb.stream.segmenter.name == "landscape"
        bb.process_image(synthetic_frame(300, 400))
        assert bb.stream.segmenter is not None and bb.stream.segmenter.name == "selfie"
        bb.reset()
        bb.process_image(synthetic_frame(640, 360))
        assert bb.stream.segmenter is not None and bb.stream.segmenter.name == "landscape"
        fixed = BackgroundBlur(model="landscape")
        fixed.process_image(synthetic_frame(300, 400))
        assert fixed.stream.segmenter is not None and fixed.stream.segmenter.name == "landscape"
        fixed.close()
    finally:
        bb.close()
