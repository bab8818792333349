"""Which frames of a clip to use: uniform segment midpoints, and the seed's temporal jitter.

Pure numpy, deterministic given its inputs, so tests can pin every index.
"""

from __future__ import annotations

import zlib

import numpy as np

FRAMES = 20          # sampled frames per clip (the seed's input length)
JITTER_WINDOW = 4    # the seed's augmentation rules: temporal jitter "within 4-frame windows"


def sample_indices(n_frames: int, k: int = FRAMES) -> np.ndarray:
    """``k`` frame numbers spread uniformly over ``n_frames`` decodable frames.

    Frame ``floor((i + 0.5) * n / k)`` for segment ``i``: the midpoint of each of ``k`` equal
    segments. Clips shorter than ``k`` repeat frames (in order). Returns int32 (k,).
    """
    if n_frames < 1:
        raise ValueError("a clip needs at least one decodable frame")
    i = np.arange(k, dtype=np.float64)
    return np.minimum(np.floor((i + 0.5) * n_frames / k), n_frames - 1).astype(np.int32)


def jitter_indices(indices: np.ndarray, n_frames: int, rng: np.random.Generator,
                   window: int = JITTER_WINDOW) -> np.ndarray:
    """Move each index within a ``window``-frame window around it, keeping temporal order.

    Offsets are drawn from ``[-(window // 2 - 1), window // 2]`` (−1..+2 for 4 frames), clipped
    to the clip, then sorted so the sequence never runs backwards.
    """
    lo, hi = -(window // 2 - 1), window // 2
    moved = indices.astype(np.int64) + rng.integers(lo, hi + 1, size=len(indices))
    return np.sort(np.clip(moved, 0, n_frames - 1)).astype(np.int32)


def clip_rng(seed: int, video: str, variant: int) -> np.random.Generator:
    """A generator that depends only on (seed, clip path, variant): reruns and resumes repeat it."""
    return np.random.default_rng([int(seed), zlib.crc32(video.encode("utf-8")), int(variant)])
