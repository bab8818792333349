"""Incident clips and snapshots for one source: a bounded ring of recent frames, an MP4
writer fed from it, a JPEG of the peak frame.

Frames (BGR, as decoded, shrunk so the longer side is at most ``max_side`` pixels to bound
memory) enter :meth:`Recorder.add` with their stream time. The ring keeps the last ``keep_s``
seconds: the pre-roll plus how late an incident is known (a window, the K-of-N rule, the
scoring lag), so that when the rule fires, the clip can start ``pre_roll`` seconds before the
incident's ``start_s``. Memory: ``keep_s × fps`` frames of at most ``max_side``² × 3 bytes
(640 px, 4:3, 25 fps, 12 s ≈ 280 MB worst case; 320×240 sources ≈ 70 MB).

A clip is written to ``NAME.partial.mp4`` by OpenCV's ``VideoWriter`` (``mp4v``) and renamed to
``NAME.mp4`` once finalised (the post-roll reached, the stream ended, or vd stopped) and found
whole (its MP4 boxes span the file and include the index, ``moov``): a clip named ``NAME.mp4``
is always whole; a SIGKILL loses only the ``.partial.mp4`` being written (the next run removes
it, :func:`remove_partials`).

A full or read-only clips folder never stops the caller: a clip that cannot be started (less
than :data:`MIN_FREE` bytes free, not writable), or that the disk filled while it was written,
is given up (its partial file removed) and :attr:`Recorder.error` says why; the next incident
tries again. One log line when clips start failing, one when they are written again. The
writer is opened, fed and finalised in the thread that calls :meth:`Recorder.add` (the
source's reader), never in the scorer's: opening an FFmpeg writer can wait on OpenCV's
process-wide FFmpeg lock.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
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


MIN_FREE = 4 * 2 ** 20  # bytes a clips folder must have free to start (or go on with) a clip
PARTIAL = ".partial"


def safe_name(source: str) -> str:
    """A source's name as it starts its clips' file names."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in source)


def write_jpeg(path: Path, frame: np.ndarray) -> bool:
    """Write ``frame`` as a JPEG at ``path`` (temporary name, fsync, rename); raises OSError."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return True


def mp4_is_whole(path) -> bool:
    """Whether the file at ``path`` is a finished MP4: its top-level boxes tile the file exactly
    and one is the index (``moov``). A writer that hit a full disk leaves no index or a short box."""
    try:
        size = os.path.getsize(path)
        seen, pos = set(), 0
        with open(path, "rb") as fh:
            while pos < size:
                fh.seek(pos)
                head = fh.read(16)
                if len(head) < 8:
                    return False
                n, kind = struct.unpack(">I4s", head[:8])
                if n == 1:
                    if len(head) < 16:
                        return False
                    n = struct.unpack(">Q", head[8:16])[0]
                elif n == 0:
                    n = size - pos
                if n < 8 or pos + n > size:
                    return False
                seen.add(kind)
                pos += n
        return pos == size and b"moov" in seen and b"mdat" in seen
    except OSError:
        return False


def folder_problem(folder) -> str | None:
    """Why a clip cannot be written in ``folder`` now (read-only, not writable, nearly full), or None."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as e:
        return f"clips folder {folder}: {e.strerror or e}"
    if not os.access(folder, os.W_OK):
        return f"clips folder {folder} is not writable (read-only?)"
    if free < MIN_FREE:
        return f"clips folder {folder} is full ({free // 1024} KiB free)"
    return None


def remove_partials(folder, sources) -> int:
    """Remove the unfinished clips (``*.partial.mp4``) and snapshot temporaries of ``sources``
    that a killed run left in ``folder``; returns how many."""
    prefixes = tuple(safe_name(s) + "-" for s in sources)
    n = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        bare = name[1:] if name.startswith(".") else name
        if not bare.startswith(prefixes):
            continue
        if name.endswith(PARTIAL + ".mp4") or (name.startswith(".") and name.endswith(".jpg.tmp")):
            try:
                os.unlink(os.path.join(folder, name))
                n += 1
            except OSError:
                pass
    return n


class Recorder:
    """Recent frames of one source, and the clip being written (one at a time).

    ``error``: why the last clip could not be started or finished (None once one is written)."""

    def __init__(self, folder, source: str, pre_roll: float = 5.0, post_roll: float = 5.0,
                 keep_s: float = 12.0, max_side: int = 640, fps: float = 25.0, log=None):
        self.dir = Path(folder)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # said when a clip is started
        self.source = safe_name(source)
        self.log = log or logging.getLogger("vd.live.recorder")
        self.pre_roll, self.post_roll = float(pre_roll), float(post_roll)
        self.keep_s = max(float(keep_s), self.pre_roll + 1.0)
        self.max_side, self.fps = int(max_side), float(fps) if fps and fps > 0 else 25.0
        self.ring: deque = deque()
        self.lock = threading.Lock()
        self._writer = None
        self._size = None
        self._partial = self._final = None
        self._request: tuple | None = None   # (final path, start_s): opened by the next add()
        self._stop_at: float | None = None
        self._last_t = -1.0
        self._frames = 0
        self.error: str | None = None
        self.failed: deque = deque(maxlen=64)  # final paths of the last clips given up
        self.written: list[Path] = []

    # ------------------------------------------------------------------ frames in

    def add(self, t: float, frame_bgr: np.ndarray) -> None:
        """A decoded frame at stream time ``t``: into the ring, and into the clip being written.
        Never raises for the clip: a writer that fails gives the clip up (:attr:`error`)."""
        frame = shrink(frame_bgr, self.max_side)
        with self.lock:
            self.ring.append((float(t), frame))
            while self.ring and t - self.ring[0][0] > self.keep_s:
                self.ring.popleft()
            self._last_t = float(t)
            try:
                if self._request is not None:
                    self._begin()
                elif self._writer is not None:
                    self._write(frame)
                if self._writer is not None and self._stop_at is not None and t >= self._stop_at:
                    self._finalise()
            except (cv2.error, OSError) as e:  # the source's reading must go on
                self._give_up(f"clip writer: {type(e).__name__}: {e}")

    # ------------------------------------------------------------------ clips

    def start(self, path: Path, start_s: float) -> str | None:
        """Begin a clip at ``path`` from ``start_s − pre_roll`` (as far back as the ring goes);
        the writer opens at the next frame. Returns why it cannot (the folder is read-only or
        full), else None."""
        why = folder_problem(self.dir)
        with self.lock:
            if self._writer is not None or self._request is not None:
                self._finish_now()
            if why is not None:
                self.failed.append(Path(path))
                self._failing(why)
                return why
            self._request = (Path(path), float(start_s))
            self._stop_at = None
        return None

    def stop(self, end_s: float) -> None:
        """The incident ended at ``end_s``: keep writing until ``end_s + post_roll``."""
        with self.lock:
            if self._writer is None and self._request is None:
                return
            self._stop_at = float(end_s) + self.post_roll
            if self._writer is not None and self._last_t >= self._stop_at:
                self._finalise()

    def finish(self) -> None:
        """Finalise the clip being written now (stream ended, vd stopping)."""
        with self.lock:
            self._finish_now()

    def clip_error(self, path) -> str | None:
        """Why the clip at ``path`` was given up, or None (being written, or whole)."""
        with self.lock:
            return self.error if Path(path) in self.failed else None

    def snapshot(self, t: float, path: Path) -> bool:
        """JPEG of the ring's frame shown at ``t`` (the last at or before it). When scoring lags
        so far that ``t`` has left the ring (a live source right after start-up, while the
        backbone traces its first call), the oldest frame held: the nearest to ``t`` there is.
        False when the ring is empty or the file cannot be written (disk full, read-only)."""
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
        try:
            return write_jpeg(Path(path), best)
        except OSError as e:
            with self.lock:
                self._failing(f"snapshot {Path(path).name}: {e.strerror or e}")
            return False

    # ------------------------------------------------------------------ writer (under the lock)

    def _finish_now(self) -> None:
        if self._request is not None:
            self._begin()
        if self._writer is not None:
            self._finalise()

    def _begin(self) -> None:
        final, start_s = self._request
        self._request = None
        self._final = final
        self._partial = final.with_name(final.stem + PARTIAL + final.suffix)
        begin = start_s - self.pre_roll
        back = [f for t, f in self.ring if t >= begin - 1e-6] or [self.ring[-1][1]]
        h, w = back[0].shape[:2]
        self._size, self._frames = (w, h), 0
        try:
            self._writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, self._size)
            ok = self._writer.isOpened()
        except cv2.error:
            ok = False
        if not ok:
            self._give_up(f"cannot write clip {self._partial.name} in {self.dir}")
            return
        for f in back:
            if self._writer is None:  # given up on the way (the disk filled)
                return
            self._write(f)

    def _write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self._size:  # the stream changed size
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self._frames += 1
        if self._frames % 25 == 0:  # a disk filling up: give the clip up before it is cut
            why = folder_problem(self.dir)
            if why is not None:
                self._give_up(why)

    def _finalise(self) -> None:
        self._writer.release()
        self._writer = None
        self._stop_at = None
        if not mp4_is_whole(self._partial):
            self._give_up(f"clip {self._final.name} could not be finished "
                          f"({folder_problem(self.dir) or 'the writer failed'})")
            return
        try:
            os.replace(self._partial, self._final)
        except OSError as e:
            self._give_up(f"clip {self._final.name}: {e.strerror or e}")
            return
        self.written.append(self._final)
        if self.error is not None:
            self.log.warning("clips are written again in %s", self.dir)
            self.error = None

    def _give_up(self, why: str) -> None:
        if self._writer is not None:
            try:
                self._writer.release()
            except cv2.error:
                pass
            self._writer = None
        self._stop_at = None
        if self._partial is not None:
            try:
                self._partial.unlink(missing_ok=True)
            except OSError:
                pass
        if self._final is not None:
            self.failed.append(self._final)
        self._failing(why)

    def _failing(self, why: str) -> None:
        if self.error is None:
            self.log.warning("clips cannot be written (%s): incidents go on without clips; "
                             "each next incident tries again", why)
        self.error = why
