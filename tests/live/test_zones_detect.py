"""A fight inside a mask raises nothing; the same fight outside it does -- with a real trained
model through the existing predict/timeline path.

The model is test_watch_detects' ``camera_run`` (motion-small on mobilenet_v3_small features of
the long clip's camera at other times, its threshold from held-out clips). The long clip (calm
4 s / violent 4 s / calm 4 s) is written again with a camera's mask applied to every frame
(:meth:`vd.live.zones.Regions.apply`: what the live engine gives the backbone), losslessly, and
scored by ``vd predict``'s window path (window = the trained clips' 2.4 s, stride 1.2 s, no TTA);
incidents follow ``vd watch``'s rule (:class:`vd.score.alarm.Alarm`, 2 of 3, cooldown 4 s).
The fight happens around the middle of the picture (vd.synthetic: its centre stays within 30-70 %
of the width and 35-65 % of the height). Measured: with the middle masked every window scores
0.00 (threshold 0.47); with a corner masked the fight's windows score 0.80-0.95, calm ones <= 0.02.
"""

import pytest

from test_watch_detects import CLIP_S, camera_run  # noqa: F401  (the module-scoped fixture)

MIDDLE = "0.15,0.1 0.85,0.1 0.85,0.9 0.15,0.9"     # over the fight
CORNER = "0,0 0.2,0 0.2,0.2 0,0.2"                 # away from it


def _masked_copy(src, dst, regions):
    from vd.extract.frames import FrameSource
    from vd.synthetic import ClipWriter

    with FrameSource(src) as fs:
        frames = [regions.apply(f.bgr()) for f in fs]
        fps = fs.nominal_fps
    h, w = frames[0].shape[:2]
    with ClipWriter(dst, fps, (w, h), "FFV1") as wr:
        for f in frames:
            wr.write(f)
    return dst


def _incidents(run, threshold, path):
    from vd.score.alarm import Alarm
    from vd.score.predict import predict_paths

    res = predict_paths([str(path)], run, tta=False, window=CLIP_S, stride=CLIP_S / 2)
    (clip,) = res.clips
    alarm, out = Alarm(threshold, 2, 3, 4.0), []
    for w in clip.windows:
        r = alarm.add(w.start_s, w.end_s, w.violent_probability)
        if r is not None and r[0] == "start":
            out.append(r[1])
    return out, [(round(w.start_s, 1), round(w.violent_probability, 2)) for w in clip.windows]


@pytest.mark.slow
def test_a_fight_inside_a_mask_raises_nothing_outside_it_it_does(camera_run, long_clip, tmp_path):  # noqa: F811
    from vd.live.zones import Regions

    run, threshold = camera_run
    path, segments = long_clip
    _, v0, v1 = segments[1]
    hidden = _masked_copy(path, tmp_path / "masked.avi", Regions.parse(masks=[MIDDLE]))
    seen = _masked_copy(path, tmp_path / "corner.avi", Regions.parse(masks=[CORNER]))

    inc, scores = _incidents(run, threshold, seen)
    assert len(inc) == 1, scores
    assert abs(inc[0].start_s - v0) <= 2 * CLIP_S, (inc[0], scores)

    inc, scores = _incidents(run, threshold, hidden)
    assert inc == [], scores
