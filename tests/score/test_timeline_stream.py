"""vd/score/timeline.py streaming on real encoded files, without VGG16.

The backbone and model are replaced by a reader of the frame number each sampled frame shows
(the numbered test clips print it into the pixels): what is under test is which frames the
streaming sampler takes, what times it gives windows, and how much it holds — the decoder,
the frame source and the timeline code are the real ones.
"""

import numpy as np
import pytest

import media
from vd.data.discover import Clip
from vd.extract.tta import TTAConfig
from vd.score.predict import Predictor
from vd.score.timeline import TimelineStats, plan_windows, score_timeline
from frame_numbers import read_frame_number


class FrameNumbers:
    """Stands in for a Predictor: a frame's 'feature' is the number it shows; a window's
    'probability' is its mean frame number / 1000 (monotone in time, so the peak is the last)."""

    frames = 20
    threshold = 0.5
    explain = False
    tta = TTAConfig(enabled=False)
    clip_score = Predictor.clip_score

    def __init__(self):
        self.calls = []

    def features(self, pixels, idx):
        shown = np.array([read_frame_number(p) for p in pixels], np.float32)
        assert shown.tolist() == np.asarray(idx).tolist()  # the pixels are the frames named
        self.calls.append(len(pixels))
        return shown[None, :, None]                              # (V=1, n, D=1)

    def view_probabilities(self, x):
        return x.mean(axis=(-2, -1)) / 1000.0                    # (W, V)

    def attention(self, feats):
        return None


def timeline(path, window, stride):
    pred, stats = FrameNumbers(), TimelineStats()
    clip = Clip(path=path, video=path.name, label=-1, split="")
    score, frames = score_timeline(pred, clip, window, stride, stats=stats)
    return score, frames, stats, pred


@pytest.fixture(scope="module")
def vfr(media_cache):
    if not media.have_ffmpeg():
        pytest.skip("no ffmpeg")
    return media.vfr_numbered(media_cache)


@pytest.mark.ffmpeg
@pytest.mark.parametrize("n, window, stride", [(300, 4.0, 2.0), (310, 2.0, 1.0), (30, 2.0, 1.0),
                                               (137, 1.2, 0.8)])
def test_constant_rate_windows_pick_stage_one_frames(media_cache, n, window, stride):
    path = media.cfr_numbered(n, 25.0, media_cache)
    score, frames, stats, pred = timeline(path, window, stride)
    plan = plan_windows(n, 25.0, window, stride)
    assert [(w.start_frame, w.stop_frame) for w in score.windows] == [(p.start, p.stop) for p in plan]
    assert [(w.start_s, w.end_s) for w in score.windows] == [
        pytest.approx((p.start / 25.0, p.stop / 25.0)) for p in plan]
    # each window's 'probability' is the mean of the frames it sampled: stage one's frames
    for w, p in zip(score.windows, plan):
        assert w.violent_probability == pytest.approx(p.indices.mean() / 1000.0, abs=1e-6)
    assert frames == len(np.unique(np.concatenate([p.indices for p in plan])))  # each once
    assert score.duration_s == pytest.approx(n / 25.0) and score.n_frames == n
    assert stats.passes == 1 and stats.late == 0


@pytest.mark.ffmpeg
def test_vfr_windows_take_the_frame_shown_at_each_midpoint(vfr):
    pts = np.array(media.vfr_pts())
    score, frames, stats, pred = timeline(vfr, 2.0, 1.0)
    duration = pts[-1] + (pts[-1] - pts[-2])
    assert score.duration_s == pytest.approx(duration, abs=1e-3)
    assert score.windows[-1].end_s == pytest.approx(duration, abs=1e-3)
    for w in score.windows:
        mids = w.start_s + (np.arange(20) + 0.5) * (w.end_s - w.start_s) / 20
        shown = np.searchsorted(pts, mids + 1e-6, side="right") - 1   # last frame at or before
        # the window's sampled frames: the frames really on screen at its midpoints (the one
        # sudden slowdown may give one midpoint the next frame: "one frame late")
        want = shown.mean() / 1000.0
        assert w.violent_probability == pytest.approx(want, abs=(stats.late + 1e-3) / 20 / 1000.0)
        assert pts[w.start_frame] >= w.start_s - 1e-6
        assert w.start_frame == 0 or pts[w.start_frame - 1] < w.start_s
    # frame-number arithmetic at OpenCV's average rate would put the late windows far off:
    fps = score.fps
    assert abs(score.windows[-1].stop_frame / fps - score.windows[-1].end_s) > 0.3
    # late midpoints: only those in the one sudden gap that a 1.25-interval prediction misses
    gap = [m for w in score.windows
           for m in w.start_s + (np.arange(20) + 0.5) * (w.end_s - w.start_s) / 20
           if pts[89] + 1.25 / 30 < m < pts[90]]
    assert stats.late == len(gap) > 0
    assert stats.passes == 2  # OpenCV's length (count / average fps) was wrong: tail re-read
    assert any("one frame late" in n for n in score.notes)


@pytest.mark.ffmpeg
def test_memory_is_bounded_in_the_recordings_length(media_cache):
    short = timeline(media.cfr_numbered(150, 25.0, media_cache), 2.0, 1.0)
    long = timeline(media.cfr_numbered(1500, 25.0, media_cache), 2.0, 1.0)
    s_stats, l_stats = short[2], long[2]
    print(f"peak frames held: {s_stats.peak_frames} (6 s) vs {l_stats.peak_frames} (60 s); "
          f"backbone frames {s_stats.backbone_frames} vs {l_stats.backbone_frames}")
    assert l_stats.backbone_frames > 8 * s_stats.backbone_frames   # 10× the recording ...
    assert l_stats.peak_frames <= s_stats.peak_frames + 20          # ... the same frames held
    assert l_stats.peak_frames <= 3 * 20 + 20                       # a few windows' worth
    assert l_stats.frames_retrieved < 0.6 * l_stats.frames_grabbed  # not every frame converted
