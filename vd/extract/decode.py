"""Decoding a video file and keeping only the frames a plan asks for, with their times.

Built on :class:`vd.extract.frames.FrameSource`. Containers lie: ``CAP_PROP_FRAME_COUNT`` is
sometimes far too large, zero or negative, and a seek past the real end silently returns the
last decodable frame. So frames are read sequentially (grab every frame, retrieve only the
wanted ones), which is exact on every codec. The header count is used only as a first guess:
the frames to keep are chosen from it, and when the number that really decoded differs, the
choice is redone from the true count (a second pass only if the first did not already keep
those frames). A pass stops at the first frame whose pixels cannot be retrieved.

Seeking (long clips). Sequential decoding costs every frame of a clip; a 10-minute recording
has 18,000 for 20 samples. :func:`read_frames` therefore *seeks* to the sampled frames, but only
where the file proves that a seek lands on the same frame sequential decoding would number so
(it stays the truth and the fallback; ``seek="never"`` forces it):

- the codec is one of :data:`SEEK_CODECS` (tests/extract/test_seek.py checks every one of them
  against sequential decoding, frame by frame, on the numbered test clips), the file has a
  frame rate and a header frame count of at least :data:`SEEK_MIN_FRAMES` (``seek="auto"``;
  shorter clips cost little to decode and keep the sequential path); a wanted frame at most
  :data:`SEEK_GAP` frames after the last one is reached by decoding forward, not by a seek;
- the first frame's timestamp is 0 and every frame the seek path touches sits on the constant
  frame-rate grid: its timestamp is ``k / fps`` (within a quarter of a frame) for the frame
  number ``k`` it is taken as, consecutive grabs advance by exactly one;
- the header frame count is confirmed by the tail: seeking to ``count - 2`` and decoding to the
  end gives exactly the frames ``count - 2`` and ``count - 1`` on the grid, then the end.

Any failed check (a variable frame rate, a lying header, a truncated or damaged tail, a pixel
that does not retrieve) abandons the seek path and the clip is decoded sequentially, as before.
Not checked (decoding all frames would be the only proof): a file that is unreadable in the
middle while its sampled frames and its tail are fine, which sequential decoding would count
short; and a variable-rate file whose sampled frames and last frames all sit on the grid.

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
    method: str = "sequential"    # "seek" where the seek path was proven for this file

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


def _pass(path, wanted, size: int, src: FrameSource | None = None) -> _Pass:
    """One sequential pass: count frames that decode, keep those in ``wanted``.

    ``wanted`` is a set of frame numbers, or a plan (callable) applied to the header's frame
    count — then nothing is kept when the header gives no usable count. ``src``: a source
    opened on ``path`` that has not grabbed a frame yet (closed here), else one is opened.
    """
    src = src if src is not None else _open(path)
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


# Codec tags (as OpenCV reports them) whose seeks tests/extract/test_seek.py proves equal to
# sequential decoding: H.264 (mp4, mkv), MPEG-4 part 2 (mp4), Motion JPEG (avi), VP9 (WebM),
# FFV1 (avi). H.264 in MPEG-TS fails the per-file checks (OpenCV's seek lands 7 frames late
# near the start) and is decoded sequentially; so are raw H.264 streams (no count, no times).
SEEK_CODECS = frozenset({"h264", "FMP4", "MJPG", "VP90", "ffv1"})
# A seek decodes from the keyframe before its target: about half a GOP (x264's default GOP is
# 250 frames) plus OpenCV's 16-frame margin, per sampled frame. Below a few thousand frames,
# sequential decoding of 20 samples costs no more, and it is the truth.
SEEK_MIN_FRAMES = 3000     # auto: shorter clips are decoded sequentially
SEEK_GAP = 250             # a wanted frame this close after the last one is reached by grabbing
TAIL = 2                   # frames decoded at the end to confirm the header's count
GRID_TOL = 0.25            # a timestamp within this many frame intervals of k / fps is frame k


def _grid_index(t: float, fps: float) -> int | None:
    k = round(t * fps)
    return k if abs(t * fps - k) <= GRID_TOL else None


def _seekable(src: FrameSource, min_frames: int) -> bool:
    """What the header alone says: a file of an allow-listed codec, with a frame rate and a
    frame count of at least ``min_frames``."""
    n = src.frame_count_guess
    return (not src.live and src.fps > 0 and n is not None and n >= max(min_frames, TAIL + 1)
            and src.fourcc in SEEK_CODECS)


def _seek_pass(src: FrameSource, plan: Callable[[int], np.ndarray], size: int) -> _Pass | None:
    """The sampled frames of a :func:`_seekable` source by seeking, or None where this file
    does not prove seeking exact (the module docstring lists the checks). Closes ``src``."""
    try:
        n, fps = src.frame_count_guess, src.fps
        first = src.grab()
        if first is None or _grid_index(first.time_s, fps) != 0:
            return None
        src.seek(n - TAIL)
        tail = []
        while (f := src.grab()) is not None:
            tail.append(f.time_s)
            if len(tail) > TAIL:
                return None  # more frames than the header says
        if [_grid_index(t, fps) for t in tail] != list(range(n - TAIL, n)):
            return None
        kept, pos = {}, -1
        for k in sorted(set(np.asarray(plan(n)).tolist())):
            if not 0 <= k < n:
                return None
            if pos < 0 or not 0 < k - pos <= SEEK_GAP:
                src.seek(k)
                pos = k - 1
            while pos < k:
                f = src.grab()
                pos += 1
                if f is None or _grid_index(f.time_s, fps) != pos:
                    return None
            px = f.rgb(size)
            if px is None:
                return None
            kept[k] = (px, f.time_s)
        if src.timing != "pts":  # a timestamp was replaced (not increasing): not proven
            return None
        duration = tail[-1] + (tail[-1] - tail[-2])
        return _Pass(kept, n, fps, src.width, src.height, duration, [])
    finally:
        src.close()


def container_fps(path) -> float:
    """The container's frame rate (0.0 if unknown or absurd), read from the header only."""
    src = _open(path)
    try:
        return src.fps
    finally:
        src.close()


def read_frames(path, plan: Callable[[int], np.ndarray], size: int | None = None,
                seek: str = "auto") -> DecodedFrames:
    """Decode ``path`` and keep the frames ``plan(n_frames)`` names.

    ``plan`` maps the number of decodable frames to the frame numbers wanted (any order,
    repeats allowed). ``size``: square output side (default: the backbone's input size).
    ``seek``: "auto" seeks in clips of :data:`SEEK_MIN_FRAMES` or more where the file proves
    it exact, "always" at any length (tests), "never" decodes sequentially.
    Raises :class:`DecodeError` if the file does not open or no frame decodes.
    """
    size = default_size() if size is None else int(size)
    if seek not in ("auto", "always", "never"):
        raise ValueError(f"seek must be auto, always or never, not {seek!r}")
    src = _open(path)  # one open when the header rules seeking out (tests count opens)
    if seek != "never" and _seekable(src, SEEK_MIN_FRAMES if seek == "auto" else 0):
        p = _seek_pass(src, plan, size)
        if p is not None:
            return _result(p, plan, "seek")
        src = None  # it grabbed frames: the sequential pass starts afresh
    p = _pass(path, plan, size, src)
    if p.n == 0:
        raise DecodeError("no frame decodes")
    need = set(np.asarray(plan(p.n)).tolist())
    if not need.issubset(p.kept):  # the header lied: keep the right frames this time
        p2 = _pass(path, need, size)
        if p2.n != p.n or not need.issubset(p2.kept):
            raise DecodeError(f"decoding is not repeatable ({p.n} then {p2.n} frames)")
        p = p2
    return _result(p, plan, "sequential")


def _result(p: _Pass, plan, method: str) -> DecodedFrames:
    need = set(np.asarray(plan(p.n)).tolist())
    order = np.array(sorted(need), dtype=np.int32)
    frames = np.stack([p.kept[i][0] for i in order])
    times = np.array([p.kept[i][1] for i in order], np.float64)
    return DecodedFrames(frames=frames, indices=order, n_frames=p.n, fps=p.fps, width=p.width,
                         height=p.height, times=times, duration_s=float(p.duration_s),
                         notes=list(p.notes), method=method)
