"""When a live source's backbone falls behind, the window given up is the one with the least
backbone work done (newest first): a window half through the backbone is finished, so a
backbone far slower than the frames still scores whole windows (with VGG16 at ~1 frame/s for
5 needed, giving up the oldest window scored none in 60 s)."""

import numpy as np

from vd.score.timeline import Streamer


class _Frames20:
    frames = 20  # the Streamer reads only this before scoring; scoring is not under test here


class _Frame:
    def __init__(self, index, time_s):
        self.index, self.time_s = index, time_s

    def rgb(self, size):
        return np.full((size, size, 3), self.index % 256, np.uint8)


def test_the_window_with_least_backbone_work_is_given_up_newest_first():
    st = Streamer(_Frames20(), 2.0, 1.0, 8, keep_pixels=False)
    st.begin(25.0)
    for k in range(60):  # 2.4 s at 25 fps: windows [0,2) [1,3) [2,4) ... open
        st.push(_Frame(k, k / 25.0))
    first = min(st.open, key=lambda w: w.start_s)
    assert first.start_s == 0.0
    # the backbone got through the first 10 frames waiting (all of them [0,2)'s)
    taken = st.take_ready(10)
    st.put_features(np.array([t[0] for t in taken]), np.zeros((1, len(taken), 4), np.float16))
    assert all(t[0] in first.frame for t in taken)
    starts = sorted(w.start_s for w in st.open)
    freed = st.give_up()
    left = sorted(w.start_s for w in st.open)
    assert left == starts[:-1]          # the newest went, the one in progress stayed
    assert first in st.open and freed >= 0
    while len(st.open) > 1:
        st.give_up()
    assert st.open == [first]           # the last one standing is the one with work done


def test_a_files_planned_tail_window_is_given_up_last():
    """The tail window planned from a file's length (the flush window) would be sampled again
    by the end's second pass if given up, counting as dropped and scored: it goes last."""
    from vd.score.timeline import tail_window

    st = Streamer(_Frames20(), 2.0, 1.0, 8, keep_pixels=False)
    tail = tail_window(2.5, 2.0, 1.0, 20)                # 2.5 s file: the flush window [0.5, 2.5)
    st.begin(25.0, True, [tail])
    for k in range(55):
        st.push(_Frame(k, k / 25.0))
    assert any(w.tail for w in st.open) and len(st.open) >= 2
    while len(st.open) > 1:
        st.give_up()
        assert any(w.tail for w in st.open)
