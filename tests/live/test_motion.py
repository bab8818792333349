"""The motion gate (vd/live/motion.py) on real encoded synthetic video, decoded by vd's
FrameSource and sampled like `vd watch` samples it (window 2 s, stride 1 s, 20 frames a window,
:func:`vd.score.timeline.plan_windows`): still footage (sensor noise, a dark noisy night, and
still footage whose brightness jumps) is gated; walking, a fight, camera shake, brightness
flicker over walkers and running are not, window by window; a fight that starts in still footage
is never gated; motion inside a mask does not count. No backbone."""

import numpy as np
import pytest

from footage import write_still
from vd.errors import UserError
from vd.extract.frames import FrameSource
from vd.live.motion import MotionConfig, MotionMeter, SourceGate, window_still
from vd.live.zones import Regions
from vd.score.timeline import plan_windows

FPS, SIZE = 25.0, (320, 240)
CFG = MotionConfig()


def _decoded(path):
    with FrameSource(path) as src:
        return [f.bgr() for f in src]


def gated(path, cfg=CFG, regions=None):
    """Per window (plan_windows): (start_s, end_s, still?) -- each sampled frame measured in
    order, as the live engine retrieves them."""
    frames = _decoded(path)
    wins = plan_windows(len(frames), FPS, 2.0, 1.0)
    gate, out = SourceGate(cfg), []
    for i in sorted({int(i) for w in wins for i in w.indices}):
        f = frames[i]
        keep = None
        if regions is not None:
            lay = regions.for_size(f.shape[1], f.shape[0])
            f, keep = lay.apply(f), lay.keep
        gate.frame(i, f, keep)
        while wins and wins[0].indices[-1] <= i:   # a window whose frames are all measured
            w = wins.pop(0)
            out.append((w.start / FPS, w.stop / FPS, gate.still(w.indices)))
            gate.forget_before(min([int(x.indices[0]) for x in wins], default=i + 1))
    assert len(gate.values) <= 2 * 20   # only the open windows' frames are remembered
    return out


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    from vd.synthetic import write_long_clip

    d = tmp_path_factory.mktemp("motion")
    paths = {}
    for kind in ("calm", "violent", "shake", "flicker", "run"):
        paths[kind] = d / f"{kind}.mp4"
        write_long_clip(paths[kind], [(kind, 5.0)], fps=FPS, size=SIZE, seed=1)
    write_still(d / "still.mp4", SIZE)
    write_still(d / "night.mp4", SIZE, seed=2, noise=4.0, gain=0.3)
    # a scene that the brightest jump does not saturate (a jump that clips part of the picture
    # may count as motion: see vd/live/motion.py)
    write_still(d / "still_flicker.mp4", SIZE, seed=0, flicker=True)
    paths.update({k: d / f"{k}.mp4" for k in ("still", "night", "still_flicker")})
    return paths


@pytest.mark.parametrize("kind", ["still", "night", "still_flicker"])
def test_still_footage_is_gated_after_its_first_window(footage, kind):
    wins = gated(footage[kind])
    assert len(wins) == 4
    # the first window holds the connection's first frame (no predecessor): scored
    assert [w[2] for w in wins] == [False, True, True, True], wins


@pytest.mark.parametrize("kind", ["calm", "violent", "shake", "flicker", "run"])
def test_moving_footage_is_never_gated(footage, kind):
    wins = gated(footage[kind])
    assert wins and not any(w[2] for w in wins), wins


def test_a_fight_that_starts_in_still_footage_is_never_gated(footage, tmp_path):
    """Still for 4 s (the fight's first frame, held, with noise), then the fight: the windows
    wholly before it are gated, every window that reaches into it is scored."""
    from vd.synthetic import ClipWriter

    fight = _decoded(footage["violent"])
    path = tmp_path / "still_then_fight.mp4"
    rng = np.random.default_rng(0)
    with ClipWriter(path, FPS, SIZE, None) as w:
        for _ in range(100):
            w.write(np.clip(fight[0] + rng.normal(0, 2.0, fight[0].shape), 0, 255).astype(np.uint8))
        for f in fight:
            w.write(f)
    wins = gated(path)
    before = [w for w in wins if w[1] <= 4.0]
    into = [w for w in wins if w[1] > 4.0]
    assert [w[2] for w in before] == [False, True, True], wins
    assert into and not any(w[2] for w in into), wins


def test_recordings_with_fights_and_nuisances_gate_no_fight(tmp_path):
    """vd.synthetic's untrimmed recordings (people walking throughout, a fight, shake, flicker,
    running): no window that overlaps a fight is gated (here none at all: people always walk)."""
    from vd.synthetic import write_recording

    path = tmp_path / "rec.mp4"
    fights = write_recording(path, 16.0, [("violent", 2.0, 4.0), ("flicker", 8.0, 3.0),
                                          ("shake", 12.0, 2.0)], fps=FPS, seed=5)
    wins = gated(path)
    hit = [w for w in wins if any(w[0] < b and w[1] > a for a, b in fights)]
    assert hit and not any(w[2] for w in hit), wins
    assert not any(w[2] for w in wins)


def test_motion_inside_a_mask_does_not_count_outside_it_does(tmp_path):
    """A square moving on a still noisy background: in a masked area the windows are still; the
    same square with the mask elsewhere moves the windows. Masks cost the measure nothing."""
    from vd.synthetic import ClipWriter, render_clip

    base = render_clip("calm", 1, SIZE, seed=6)[0]
    rng = np.random.default_rng(1)
    path = tmp_path / "square.mp4"
    with ClipWriter(path, FPS, SIZE, None) as w:
        for i in range(100):
            f = np.clip(base + rng.normal(0, 2.0, base.shape), 0, 255).astype(np.uint8)
            x = 40 + (i * 3) % 80
            f[40:70, x:x + 30] = (30, 30, 220)   # a red square pacing in the top-left
            w.write(f)
    over = Regions.parse(masks=["0,0 0.6,0 0.6,0.5 0,0.5"])
    elsewhere = Regions.parse(masks=["0.6,0.5 1,0.5 1,1 0.6,1"])
    assert [w[2] for w in gated(path, regions=over)] == [False, True, True]
    assert not any(w[2] for w in gated(path, regions=elsewhere))
    assert not any(w[2] for w in gated(path))
    # a zone on the other half: the square is outside what is analysed
    right = Regions.parse(zones=["0.5,0 1,0 1,1 0.5,1"])
    assert [w[2] for w in gated(path, regions=right)] == [False, True, True]


def test_the_gate_off_scores_everything_and_settings_are_checked(footage):
    assert not any(w[2] for w in gated(footage["still"], MotionConfig(mode="off")))
    # a duller gate (only large changes count) gates walking too: the sensitivity is the setting
    assert all(w[2] for w in gated(footage["calm"], MotionConfig(min_area=0.5))[1:])
    for bad in ({"mode": "on"}, {"min_area": 0}, {"min_area": 1.5}, {"pixel_delta": 0},
                {"width": 4}, {"width": 10_000}):
        with pytest.raises(UserError):
            MotionConfig(**bad)
    m = MotionMeter()
    f = np.zeros((240, 320, 3), np.uint8)
    assert m.measure(f) is None and m.measure(f) == 0.0
    m.reset()
    assert m.measure(f) is None
    assert m.measure(np.zeros((120, 160, 3), np.uint8)) is None  # a new size: no predecessor
    assert not window_still([], CFG) and not window_still([0.0, None], CFG)
