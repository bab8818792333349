"""The seed's violence-aware training augmentation (augmentation rules), applied to pixels at extraction.

Variant 0 is the clip as decoded. Variants 1..N-1 each get, seeded by (seed, clip, variant):
temporal jitter of every sampled index within its 4-frame window, one brightness factor in
[0.85, 1.15] for the whole clip, and Gaussian noise with σ = 0.01 on 0–1 pixels. Never large
rotations, zoom, frame dropping or colour jitter: the seed measured them destroying the
violent signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vd.extract.sampling import clip_rng, jitter_indices, sample_indices

BRIGHTNESS = 0.15   # ±15 %
NOISE_SIGMA = 0.01  # on 0–1 pixels


@dataclass(frozen=True)
class VariantPlan:
    """What one variant of a clip is made of: its frame numbers and pixel transform."""

    variant: int
    indices: np.ndarray          # int32 (T,)
    brightness: float = 1.0
    noise_sigma: float = 0.0
    noise_seed: int = 0


def plan_variants(n_frames: int, video: str, augment: int, seed: int, frames: int) -> list[VariantPlan]:
    """Plans for variants 0..augment-1 of a clip with ``n_frames`` decodable frames."""
    base = sample_indices(n_frames, frames)
    plans = [VariantPlan(0, base)]
    for v in range(1, augment):
        rng = clip_rng(seed, video, v)
        plans.append(VariantPlan(
            variant=v,
            indices=jitter_indices(base, n_frames, rng),
            brightness=float(rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS)),
            noise_sigma=NOISE_SIGMA,
            noise_seed=int(rng.integers(2**31)),
        ))
    return plans


def apply_pixels(frames_rgb: np.ndarray, plan: VariantPlan) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) → RGB on 0–255 with the plan's brightness and noise.

    The original variant comes back as the uint8 frames themselves (exact, and 4× smaller to
    pass between processes); transformed variants as float32.
    """
    if plan.brightness == 1.0 and plan.noise_sigma == 0.0:
        return frames_rgb
    x = frames_rgb.astype(np.float32) * (1.0 / 255.0)
    if plan.brightness != 1.0:
        x *= plan.brightness
    if plan.noise_sigma > 0:
        x += np.random.default_rng(plan.noise_seed).normal(0.0, plan.noise_sigma, x.shape).astype(np.float32)
    np.clip(x, 0.0, 1.0, out=x)
    return x * 255.0
