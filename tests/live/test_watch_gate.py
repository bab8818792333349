"""The motion gate's hand-off in the window sampler (:meth:`vd.score.timeline.Streamer.take_still`),
the one ``vd watch`` uses: a still window's own frames are never taken for the backbone, and
still windows come out only after every earlier window was scored, so the incident rule sees
windows in stream order. (End to end through ``vd watch``: tests/live/test_watch_detects.py.)"""

import numpy as np

from vd.score.timeline import Streamer


class _Frames:
    """What the sampler needs of a predictor: the frames per window."""

    frames = 20


class _Frame:
    def __init__(self, k, fps):
        self.index, self.time_s = k, k / fps

    def rgb(self, size):
        return np.zeros((size, size, 3), np.uint8)


def test_a_still_window_waits_for_the_earlier_one_and_its_own_frames_skip_the_backbone():
    st = Streamer(_Frames(), window=2.0, stride=1.0, size=8, keep_pixels=False)
    st.begin(10.0)
    for k in range(31):                      # 0 .. 3.0 s: windows [0, 2) and [1, 3) are complete
        assert st.push(_Frame(k, 10.0))
    first, second = sorted((w for w in st.open if w.certain), key=lambda w: w.start_s)[:2]
    assert (first.start_s, second.start_s) == (0.0, 1.0)
    still = lambda frames: min(frames) >= 10       # the second window saw no motion  # noqa: E731
    assert st.take_still(still) == []              # the first is not scored yet: the second waits
    taken = {k for k, _, _ in st.take_ready(1000)}
    assert set(first.frame) <= taken                          # the first goes to the backbone
    assert not (set(second.frame) - set(first.frame)) & taken  # the second's own frames do not
    assert second not in st.complete()
    assert st.take_scored(first)
    assert st.take_still(still) == [second]        # now it is handed out, in order
    assert second not in st.open
    assert st.oldest_frame() is not None and st.oldest_frame() >= 20

