"""The default window of `vd watch`: the median length of the run's original training clips
(read from the store its config names), else 2 s with the reason."""

import numpy as np

from vd.data.store import write_plain_store
from vd.live.window import DEFAULT_WINDOW_S, trained_window


def test_window_is_the_median_training_clip_length(tmp_path):
    n = 5
    # clips of 40, 50, 60, 125, 250 frames at 25 fps (1.6 ... 10 s); augmented rows repeat
    # the first clip and must not count
    n_frames = np.array([40, 50, 60, 125, 250, 40, 40], np.int32)
    variant = np.array([0, 0, 0, 0, 0, 1, 2], np.int8)
    store = write_plain_store(tmp_path / "s.h5", np.zeros((7, 20, 4), np.float16),
                              np.arange(7) % 2, [f"v{i}.mp4" for i in range(7)], variant=variant,
                              n_frames=n_frames, fps=np.full(7, 25.0, np.float32))
    w, why = trained_window({"store": str(store)})
    assert w == 2.4 and f"{n} training clips" in why


def test_two_seconds_when_the_store_is_not_there(tmp_path):
    assert trained_window({})[0] == DEFAULT_WINDOW_S == 2.0
    w, why = trained_window({"store": str(tmp_path / "gone.h5")})
    assert w == 2.0 and "is not here" in why
    (tmp_path / "junk.h5").write_text("not hdf5")
    w, why = trained_window({"store": str(tmp_path / "junk.h5")})
    assert w == 2.0 and "cannot be read" in why
