"""Synthetic feature stores for tests/model (imported as ``from model_stores import make_store``).

Stores are written with :func:`vd.data.store.write_plain_store`, the same reader path as real
stores. Violent clips carry a planted signal: on 5 consecutive frames at a random position,
the first ``signal_dims`` feature dimensions are raised by ``signal`` (an "event" in time).
"""

from __future__ import annotations

import numpy as np

from vd.data.store import write_plain_store


def make_store(path, clips=200, frames=20, dim=64, variants=1, signal=2.0, signal_dims=8,
               seed=0, labels=None, split=None, nan_rows=0, label_noise=0.0):
    """Write a store of ``clips`` clips × ``variants`` rows; returns its path.

    ``label_noise``: the share of clips whose stored label is flipped after the signal was
    planted by the true label (a model that memorises them becomes over-confident).
    """
    rng = np.random.default_rng(seed)
    flipped = np.random.default_rng([seed, 1]).random(clips) < label_noise
    feats, lab, vids, var, spl = [], [], [], [], []
    for c in range(clips):
        y = int(labels[c]) if labels is not None else c % 2
        base = rng.normal(0.0, 1.0, (frames, dim))
        if y == 1:
            start = rng.integers(0, frames - 5)
            base[start:start + 5, :signal_dims] += signal
        for v in range(variants):
            x = base + (rng.normal(0.0, 0.1, (frames, dim)) if v else 0.0)
            feats.append(x)
            lab.append(1 - y if flipped[c] else y)
            vids.append(f"{'Fight' if lab[-1] == 1 else 'NonFight'}/{c:04d}.mp4")
            var.append(v)
            spl.append(split[c] if split is not None else "")
    feats = np.asarray(feats, np.float16)
    if nan_rows:
        feats[:nan_rows] = np.nan
    attrs = {"backbone": "vgg16", "layer": "fc2", "weights": "random", "image_size": 224,
             "preprocess": "vgg16"}
    return write_plain_store(path, feats, lab, vids, variant=var, split=spl, attrs=attrs)
