"""The window length ``vd watch`` scores when ``--window`` is not given: what the run was
trained for, else 2 s.

A model learns from 20 frames sampled over whole training clips, so the time those 20 frames
span — the clips' length — is the window it knows. The run's ``config.json`` names the feature
store it was trained on; the store keeps every clip's decoded frame count and frame rate, so
the trained window is the median length (``n_frames / fps``) of the store's original clips
(variant 0; augmented copies repeat them), rounded to 0.1 s. Where the store cannot be read
(a run copied to a camera server without its store; a store without frame rates), the window
is 2 s and the reason says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_WINDOW_S = 2.0


def trained_window(run_config: dict | None) -> tuple[float, str]:
    """(seconds, where it came from) for a run's ``config.json`` contents."""
    store_path = (run_config or {}).get("store")
    if not store_path:
        return DEFAULT_WINDOW_S, "default (the run names no feature store)"
    if not Path(store_path).is_file():
        return DEFAULT_WINDOW_S, f"default (the run's store {store_path} is not here)"
    from vd.data.store import open_store
    from vd.errors import UserError, one_line

    try:
        with open_store(store_path) as st:
            keep = (st.variant == 0) & (st.fps > 0) & (st.n_frames > 0)
            seconds = st.n_frames[keep].astype(np.float64) / st.fps[keep].astype(np.float64)
    except (UserError, OSError) as e:
        return DEFAULT_WINDOW_S, f"default (the run's store cannot be read: {one_line(e)})"
    if seconds.size == 0:
        return DEFAULT_WINDOW_S, "default (the run's store records no clip lengths)"
    w = max(0.1, round(float(np.median(seconds)), 1))
    return w, f"trained: median length of the run's {seconds.size} training clips"
