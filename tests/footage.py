"""Still footage for the motion-gate tests and bench/motion_gate.py: a fixed camera on an empty
scene (one frame of a vd.synthetic scene), sensor noise on every frame and, with ``flicker``,
the whole picture's brightness jumping as vd.synthetic's flicker kind does it (a quarter of the
frames take a new gain in 0.45-1.45). Written as mp4v by vd.synthetic's ClipWriter."""

from __future__ import annotations

import numpy as np


def write_still(path, size=(320, 240), n=125, fps=25.0, seed=0, noise=2.0, gain=1.0,
                flicker=False, base=None):
    """``n`` frames of ``size`` (W, H); ``gain`` darkens the scene (0.3: night); ``base``: a
    BGR frame to hold instead of a rendered scene."""
    from vd.synthetic import ClipWriter, render_clip

    base = render_clip("calm", 1, size, seed=seed)[0] if base is None else base
    base = base.astype(np.float32) * gain
    rng = np.random.default_rng(seed)
    g = 1.0
    with ClipWriter(path, fps, size, None) as w:
        for _ in range(n):
            if flicker and rng.random() < 0.25:
                g = float(rng.uniform(0.45, 1.45))
            w.write(np.clip(base * g + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8))
    return path
