"""Decoding a video file and keeping only the frames a plan asks for, with their times.

Built on :class:`vd.extract.frames.FrameSource`. Containers lie: ``CAP_PROP_FRAME_COUNT`` is
sometimes far too large, zero or negative, and a seek past the real end silently returns the
last decodable frame. So frames are read sequentially (grab every frame, retrieve only the
wanted ones), which is exact on every codec. The header count is used only as a first guess:
the frames to keep are chosen from it, and when the number that really decoded differs, the
choice is redone from the true count (a second pass only if the first did not already keep
those frames). A pass stops at the first frame whose pixels cannot be retrieved.

Frames come back resized to the backbone's square input (``size``; default: the registry's
``input_size``), in RGB, uint8, each with its presentation time (seconds, see
:mod:`vd.extract.frames`). Rotation metadata is applied by OpenCV's FFmpeg backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vd.extract.frames import MAX_FPS, DecodeError, FrameSource, default_size, to_rgb_square

__all__ = ["DecodeError", "DecodedFrames", "MAX_FPS", "container_fps", "read_frames", "to_rgb_square"]


@dataclass
class DecodedFrames:
    """Frames kept from one pass over a clip.

    ``frames``: uint8 RGB (K, size, size, 3) for ``indices`` (sorted, unique, int32 (K,));
    ``times``: float64 (K,) presentation time of each kept frame (seconds from the start);
    ``n_frames``: frames that really decoded; ``fps``: container frame rate (0.0 if unknown);
    ``duration_s``: last frame's time + the last frame interval; ``width``/``height``: decoded
    size after rotation; ``notes``: how times were made when the stream had no timestamps.
    """

    frames: np.ndarray
    indices: np.ndarray
    n_frames: int
    fps: float
    width: int
    height: int
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration_s: float = float("nan")
    notes: list = field(default_factory=list)

    def take(self, wanted) -> np.ndarray:
        """Frames for the frame numbers ``wanted`` (any order, repeats allowed)."""
        pos = np.searchsorted(self.indices, np.asarray(wanted))
        return self.frames[pos]

    def time_of(self, wanted) -> np.ndarray:
        """Presentation times (s) of the frame numbers ``wanted`` (kept frames only)."""
        pos = np.searchsorted(self.indices, np.asarray(wanted))
        return self.times[pos]


def _open(path) -> FrameSource:
    return FrameSource(path)


@dataclass
class _Pass:
    kept: dict          # frame number -> (pixels, time)
    n: int
    fps: float
    width: int
    height: int
    duration_s: float
    notes: list


def _pass(path, wanted, size: int) -> _Pass:
    """One sequential pass: count frames that decode, keep those in ``wanted``.

    ``wanted`` is a set of frame numbers, or a plan (callable) applied to the header's frame
    count — then nothing is kept when the header gives no usable count.
    """
    src = _open(path)
    kept = {}
    try:
        if callable(wanted):
            guess = src.frame_count_guess
            wanted = set(np.asarray(wanted(guess)).tolist()) if guess else set()
        n, last = 0, []
        for f in src:
            if f.index in wanted:
                px = f.rgb(size)
                if px is None:  # not counted, nor is anything after it
                    break
                kept[f.index] = (px, f.time_s)
            n += 1
            last = (last + [f.time_s])[-2:]
        if len(last) == 2 and last[1] > last[0]:
            duration = last[1] + (last[1] - last[0])
        else:
            duration = (last[-1] if last else 0.0) + 1.0 / src.nominal_fps
        return _Pass(kept, n, src.fps, src.width, src.height, duration, src.notes)
    finally:
        src.close()


def container_fps(path) -> float:
    """The container's frame rate (0.0 if unknown or absurd), read from the header only."""
    src = _open(path)
    try:
        return src.fps
    finally:
        src.close()


def read_frames(path, plan: Callable[[int], np.ndarray], size: int | None = None) -> DecodedFrames:
    """Decode ``path`` and keep the frames ``plan(n_frames)`` names.

    ``plan`` maps the number of decodable frames to the frame numbers wanted (any order,
    repeats allowed). ``size``: square output side (default: the backbone's input size).
    Raises :class:`DecodeError` if the file does not open or no frame decodes.
    """
    size = default_size() if size is None else int(size)
    p = _pass(path, plan, size)
    if p.n == 0:
        raise DecodeError("no frame decodes")
    need = set(np.asarray(plan(p.n)).tolist())
    if not need.issubset(p.kept):  # the header lied: keep the right frames this time
        p2 = _pass(path, need, size)
        if p2.n != p.n or not need.issubset(p2.kept):
            raise DecodeError(f"decoding is not repeatable ({p.n} then {p2.n} frames)")
        p = p2
    order = np.array(sorted(need), dtype=np.int32)
    frames = np.stack([p.kept[i][0] for i in order])
    times = np.array([p.kept[i][1] for i in order], np.float64)
    return DecodedFrames(frames=frames, indices=order, n_frames=p.n, fps=p.fps, width=p.width,
                         height=p.height, times=times, duration_s=float(p.duration_s),
                         notes=list(p.notes))
