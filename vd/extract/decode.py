"""Decoding a video file with OpenCV and keeping only the frames a plan asks for.

Containers lie: ``CAP_PROP_FRAME_COUNT`` is sometimes far too large, zero or negative, and a
seek past the real end silently returns the last decodable frame. So frames are read
sequentially (grab every frame, retrieve only the wanted ones), which is exact on every codec.
The header count is used only as a first guess: the frames to keep are chosen from it, and
when the number that really decoded differs, the choice is redone from the true count (a
second pass only if the first did not already keep those frames).

Frames come back resized to the backbone's square input, in RGB (the one BGR→RGB conversion in
vd), uint8. Rotation metadata is applied by OpenCV's FFmpeg backend (``CAP_PROP_ORIENTATION_AUTO``,
on by default and switched on here explicitly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from vd import runtime as _runtime  # noqa: F401  (quiet FFmpeg before cv2 loads)

import cv2
import numpy as np

IMAGE_SIZE = 224
MAX_FPS = 480.0


class DecodeError(Exception):
    """A clip that cannot be used; the message is one line for the user and the store."""


@dataclass
class DecodedFrames:
    """Frames kept from one pass over a clip.

    ``frames``: uint8 RGB (K, size, size, 3) for ``indices`` (sorted, unique, int32 (K,));
    ``n_frames``: frames that really decoded; ``fps``: container frame rate (0.0 if unknown);
    ``width``/``height``: decoded size after rotation.
    """

    frames: np.ndarray
    indices: np.ndarray
    n_frames: int
    fps: float
    width: int
    height: int

    def take(self, wanted) -> np.ndarray:
        """Frames for the frame numbers ``wanted`` (any order, repeats allowed)."""
        pos = np.searchsorted(self.indices, np.asarray(wanted))
        return self.frames[pos]


def to_rgb_square(frame: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """One decoded OpenCV frame (BGR, BGRA or gray) → uint8 RGB (size, size, 3)."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    elif frame.shape[2] == 1:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.dtype != np.uint8:
        frame = cv2.normalize(frame, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _open(path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise DecodeError("cannot open: not a video, unsupported codec or damaged container")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def _fps(cap) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if math.isfinite(fps) and 0.0 < fps <= MAX_FPS else 0.0


def _pass(path, wanted, size: int):
    """One sequential pass: count frames that decode, keep those in ``wanted``.

    ``wanted`` is a set of frame numbers, or a plan (callable) applied to the header's frame
    count — then nothing is kept when the header gives no usable count.
    """
    cap = _open(path)
    kept, n, shape = {}, 0, None
    try:
        fps = _fps(cap)
        if callable(wanted):
            guess = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            ok = math.isfinite(guess) and guess >= 1
            wanted = set(np.asarray(wanted(int(guess))).tolist()) if ok else set()
        while cap.grab():
            if n in wanted:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                shape = frame.shape[:2]
                kept[n] = to_rgb_square(frame, size)
            n += 1
    finally:
        cap.release()
    return kept, n, fps, shape


def container_fps(path) -> float:
    """The container's frame rate (0.0 if unknown or absurd), read from the header only."""
    cap = _open(path)
    try:
        return _fps(cap)
    finally:
        cap.release()


def read_frames(path, plan: Callable[[int], np.ndarray], size: int = IMAGE_SIZE) -> DecodedFrames:
    """Decode ``path`` and keep the frames ``plan(n_frames)`` names.

    ``plan`` maps the number of decodable frames to the frame numbers wanted (any order,
    repeats allowed). Raises :class:`DecodeError` if the file does not open or no frame decodes.
    """
    kept, n, fps, shape = _pass(path, plan, size)
    if n == 0:
        raise DecodeError("no frame decodes")
    need = set(np.asarray(plan(n)).tolist())
    if not need.issubset(kept):  # the header lied: keep the right frames this time
        kept, n2, fps, shape = _pass(path, need, size)
        if n2 != n or not need.issubset(kept):
            raise DecodeError(f"decoding is not repeatable ({n} then {n2} frames)")
    order = np.array(sorted(need), dtype=np.int32)
    frames = np.stack([kept[i] for i in order])
    h, w = shape if shape is not None else (0, 0)
    return DecodedFrames(frames=frames, indices=order, n_frames=n, fps=fps, width=int(w), height=int(h))
