"""Test-time augmentation (the seed's training strategy phase 3): five views of a clip's sampled frames.

A clip's 20 sampled frames are scored five times and the violent probabilities averaged:

====  ============  ==========================================================================
 #    name          transform (every frame of the clip alike)
====  ============  ==========================================================================
 0    original      the frames as stage one feeds them to the backbone
 1    rotate_pos    rotation by +θ degrees (counter-clockwise) about the centre
 2    rotate_neg    rotation by −θ degrees
 3    brightness    pixels × ``BRIGHTNESS`` (1.10), clipped to 0–255
 4    noise         Gaussian noise σ = ``NOISE_SIGMA`` (0.01 on 0–1 pixels, i.e. 2.55 on 0–255),
                    clipped; seeded by (seed, frame number), so a frame always gets the same noise
====  ============  ==========================================================================

θ defaults to 10° and may not exceed 15° (the seed: small rotations only; large ones destroy the
violent signal). Rotations keep the frames' size and fill the corners by reflecting the image
(``BORDER_REFLECT_101``), so no black wedges reach the network.

Every transform is a pure function of (frame pixels, frame number): the same decoded frame
gets the same view wherever it appears (the timeline shares frames between windows).
Input pixels are RGB on 0–255 (uint8 or float), output float32 (T, H, W, 3); the backbone
rounds views to 8 bits, like any decoded frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

VIEWS = ("original", "rotate_pos", "rotate_neg", "brightness", "noise")
DEFAULT_ANGLE = 10.0    # degrees
MAX_ANGLE = 15.0        # the seed's augmentation rules: never large rotations
BRIGHTNESS = 1.10       # one factor, inside the training range (±15 %)
NOISE_SIGMA = 0.01      # on 0–1 pixels, as the training variants
NOISE_SEED = 0


@dataclass(frozen=True)
class TTAConfig:
    """Which views to make. ``enabled`` False = the original view only (``--no-tta``)."""

    enabled: bool = True
    angle: float = DEFAULT_ANGLE
    brightness: float = BRIGHTNESS
    noise_sigma: float = NOISE_SIGMA
    seed: int = NOISE_SEED

    def __post_init__(self):
        from vd.errors import UserError

        if not (0.0 <= abs(self.angle) <= MAX_ANGLE):
            raise UserError(f"--tta-angle must be at most {MAX_ANGLE:g} degrees (the seed's augmentation rules: "
                            f"large rotations destroy the violent signal), not {self.angle:g}")

    @property
    def views(self) -> tuple[str, ...]:
        return VIEWS if self.enabled else VIEWS[:1]

    def describe(self) -> dict:
        """The views and their parameters, for reports and JSON output."""
        return {"views": list(self.views), "angle_deg": self.angle, "brightness": self.brightness,
                "noise_sigma": self.noise_sigma, "noise_scale": "0-1 pixels", "seed": self.seed}


def rotate(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every frame by ``degrees`` (positive = counter-clockwise) about its centre."""
    h, w = frames.shape[1:3]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(degrees), 1.0)
    out = np.empty_like(frames, dtype=np.float32)
    for i, f in enumerate(frames):
        out[i] = cv2.warpAffine(np.asarray(f, np.float32), m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT_101)
    return out


def brighten(frames: np.ndarray, factor: float) -> np.ndarray:
    """Pixels × ``factor``, clipped to 0–255."""
    return np.clip(np.asarray(frames, np.float32) * np.float32(factor), 0.0, 255.0)


def add_noise(frames: np.ndarray, sigma: float, frame_numbers, seed: int = NOISE_SEED) -> np.ndarray:
    """Gaussian noise with ``sigma`` on 0–1 pixels; frame ``k``'s noise depends on (seed, k) only."""
    out = np.asarray(frames, np.float32).copy()
    for i, k in enumerate(np.asarray(frame_numbers).tolist()):
        rng = np.random.default_rng([int(seed), int(k)])
        out[i] += rng.normal(0.0, sigma * 255.0, out.shape[1:]).astype(np.float32)
    return np.clip(out, 0.0, 255.0, out=out)


def make_views(frames: np.ndarray, frame_numbers, cfg: TTAConfig = TTAConfig()) -> np.ndarray:
    """(T, H, W, 3) float32 0–255 → (V*T, H, W, 3): the views of ``cfg.views``, in that order.

    ``frame_numbers`` (T,) are the decoded frame numbers (they seed the noise).
    """
    frames = np.asarray(frames, np.float32)
    if not cfg.enabled:
        return frames
    return np.concatenate([
        frames,
        rotate(frames, cfg.angle),
        rotate(frames, -cfg.angle),
        brighten(frames, cfg.brightness),
        add_noise(frames, cfg.noise_sigma, frame_numbers, cfg.seed),
    ])


def combine(view_probs) -> float:
    """The clip's score: the mean of the views' violent probabilities (not of logits or labels)."""
    p = np.asarray(view_probs, np.float64)
    return float(p.mean())
