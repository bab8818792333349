"""Incident clips and snapshots for one source: a bounded ring of recent frames, an MP4
writer fed from it, a JPEG of the peak frame.

Frames (BGR, as decoded, shrunk so the longer side is at most ``max_side`` pixels to bound
memory) enter :meth:`Recorder.add` with their stream time. The ring keeps the last ``keep_s``
seconds: the pre-roll plus how late an incident is known (a window, the K-of-N rule, the
scoring lag), so that when the rule fires, the clip can start ``pre_roll`` seconds before the
incident's ``start_s``. Memory: ``keep_s × fps`` frames of at most ``max_side``² × 3 bytes
(640 px, 4:3, 25 fps, 12 s ≈ 280 MB worst case; 320×240 sources ≈ 70 MB).

A clip is written to ``NAME.partial.mp4`` by OpenCV's ``VideoWriter`` (``mp4v``) and renamed to
``NAME.mp4`` once finalised (the post-roll reached, the stream ended, or vd stopped): a clip
named ``NAME.mp4`` is always whole; a SIGKILL loses only the ``.partial.mp4`` being written.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path

import cv2
import numpy as np


def shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = max(h, w)
    if s <= max_side:
        return frame
    f = max_side / s
    return cv2.resize(frame, (max(2, int(round(w * f)) // 2 * 2), max(2, int(round(h * f)) // 2 * 2)),
                      interpolation=cv2.INTER_AREA)


def write_jpeg(path: Path, frame: np.ndarray) -> bool:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(buf.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return True


class Recorder:
    """Recent frames of one source, and the clip being written (one at a time)."""

    def __init__(self, folder, source: str, pre_roll: float = 5.0, post_roll: float = 5.0,
                 keep_s: float = 12.0, max_side: int = 640, fps: float = 25.0):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.source = "".join(c if c.isalnum() or c in "-_." else "_" for c in source)
        self.pre_roll, self.post_roll = float(pre_roll), float(post_roll)
        self.keep_s = max(float(keep_s), self.pre_roll + 1.0)
        self.max_side, self.fps = int(max_side), float(fps) if fps and fps > 0 else 25.0
        self.ring: deque = deque()
        self.lock = threading.Lock()
        self._writer = None
        self._size = None
        self._partial = self._final = None
        self._stop_at: float | None = None
        self._last_t = -1.0
        self.written: list[Path] = []

    # ------------------------------------------------------------------ frames in

    def add(self, t: float, frame_bgr: np.ndarray) -> None:
        frame = shrink(frame_bgr, self.max_side)
        with self.lock:
            self.ring.append((float(t), frame))
            while self.ring and t - self.ring[0][0] > self.keep_s:
                self.ring.popleft()
            self._last_t = float(t)
            if self._writer is not None:
                self._write(frame)
                if self._stop_at is not None and t >= self._stop_at:
                    self._finalise()

    # ------------------------------------------------------------------ clips

    def clip_path(self, incident_id: int, stamp: str) -> Path:
        return self.dir / f"{self.source}-{incident_id:04d}-{stamp}.mp4"

    def start(self, path: Path, start_s: float) -> None:
        """Begin a clip at ``path`` from ``start_s − pre_roll`` (as far back as the ring goes)."""
        with self.lock:
            if self._writer is not None:
                self._finalise()
            self._final = Path(path)
            self._partial = self._final.with_name(self._final.stem + ".partial" + self._final.suffix)
            self._stop_at = None
            begin = start_s - self.pre_roll
            back = [f for t, f in self.ring if t >= begin - 1e-6]
            if not back and self.ring:
                back = [self.ring[-1][1]]
            if not back:
                self._writer = None
                self._pending_open = True
                return
            self._open(back[0])
            for f in back:
                self._write(f)

    def stop(self, end_s: float) -> None:
        """The incident ended at ``end_s``: keep writing until ``end_s + post_roll``."""
        with self.lock:
            if self._writer is None:
                return
            self._stop_at = float(end_s) + self.post_roll
            if self._last_t >= self._stop_at:
                self._finalise()

    def finish(self) -> None:
        """Finalise the clip being written now (stream ended, vd stopping)."""
        with self.lock:
            if self._writer is not None:
                self._finalise()

    def snapshot(self, t: float, path: Path) -> bool:
        """JPEG of the ring's frame shown at ``t`` (the last at or before it). When scoring lags
        so far that ``t`` has left the ring (a live source right after start-up, while the
        backbone traces its first call), the oldest frame held: the nearest to ``t`` there is.
        False only when the ring is empty or the file cannot be written."""
        with self.lock:
            if not self.ring:
                return False
            best = self.ring[0][1]
            for ft, f in self.ring:
                if ft <= t + 1e-6:
                    best = f
                else:
                    break
            best = best.copy()
        return write_jpeg(Path(path), best)

    # ------------------------------------------------------------------ writer

    def _open(self, first: np.ndarray) -> None:
        h, w = first.shape[:2]
        self._size = (w, h)
        self._writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter_fourcc(*"mp4v"),
                                       self.fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            raise OSError(f"cannot write clip {self._partial}")

    def _write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self._size:  # the stream changed size
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)

    def _finalise(self) -> None:
        self._writer.release()
        self._writer = None
        os.replace(self._partial, self._final)
        self.written.append(self._final)
        self._stop_at = None
