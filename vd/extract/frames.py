"""A frame source: decoded frames in order, each with its index and presentation time.

One object for files (a path) and live inputs (a capture device index such as ``0``, or an
``rtsp/rtmp/http/https/tcp/udp`` URL). Iterating a :class:`FrameSource` *grabs* every frame
(cheap: the codec decodes, nothing is converted) and yields a :class:`Frame` carrying

- ``index``: 0, 1, 2, … in decoding (= presentation) order;
- ``time_s``: the presentation time in seconds from the stream's start.

Only a frame the caller asks pixels of (:meth:`Frame.rgb`) is *retrieved* (converted to BGR
by FFmpeg's scaler, then resized): converting every frame of a 1080p recording costs more than
decoding it, and a sampler keeps a few frames a second.

Times. OpenCV's FFmpeg backend reports, after ``grab()``, ``CAP_PROP_POS_MSEC`` = the grabbed
frame's pts minus the stream's ``start_time`` (checked on mp4, mkv, webm, avi, MPEG-TS and on a
variable-frame-rate mp4: equal to ffprobe's ``pts_time − start_time``). A timestamp is used when
it is finite and later than the previous frame's; otherwise (raw H.264 elementary streams,
where OpenCV reports 0 for every frame; a broken pts) the frame is placed one nominal interval
after the previous one: the container frame rate, or :data:`FALLBACK_FPS` with a note when
there is none. ``timing`` says which happened: ``"pts"``, ``"fps"`` or ``"fallback"``.
Capture devices report wall-clock timestamps: their times are taken relative to the first frame.

Errors are the source's business: opening failures, open/read timeouts of live inputs raise
:class:`~vd.extract.decode.DecodeError` with one line. A frame whose pixels cannot be retrieved
makes :meth:`Frame.rgb` return None (files: the caller stops there, as it always has).
Rotation metadata is applied by OpenCV (``CAP_PROP_ORIENTATION_AUTO``, switched on explicitly).
:meth:`FrameSource.close` (or ``with``) releases the capture; a live source needs nothing more.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from vd import runtime as _runtime  # noqa: F401  (quiet FFmpeg before cv2 loads)

import cv2
import numpy as np

MAX_FPS = 480.0
FALLBACK_FPS = 25.0
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp", "udp")
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 10.0
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class DecodeError(Exception):
    """A clip or stream that cannot be used; the message is one line for the user and the store."""


def default_size() -> int:
    """The backbone's square input size, from the registry (VGG16: 224)."""
    from vd.extract.registry import get_spec

    return int(get_spec().input_size)


def to_rgb_square(frame: np.ndarray, size: int) -> np.ndarray:
    """One decoded OpenCV frame (BGR, BGRA or gray) → uint8 RGB (size, size, 3).

    The one BGR→RGB conversion in vd; resizing uses INTER_AREA (the recorded preprocessing).
    """
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


def parse_target(target) -> tuple[str, object]:
    """``target`` → (kind, what to open): ("device", int), ("url", str) or ("file", str).

    An int or a string of digits is a capture device index; a string starting with one of
    :data:`LIVE_SCHEMES` ``://`` is a live URL; anything else is a file path. A URL with
    another scheme (``ftp://``, ``file://``) is refused in one line.
    """
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return "device", int(target)
    if isinstance(target, Path):
        return "file", str(target)
    text = str(target)
    if text.isdigit():
        return "device", int(text)
    m = _URL.match(text)
    if m:
        if m.group(1).lower() not in LIVE_SCHEMES:
            raise DecodeError(f"unsupported stream URL scheme {m.group(1)!r}; use one of "
                              f"{', '.join(LIVE_SCHEMES)}")
        return "url", text
    return "file", text


@dataclass
class Frame:
    """One grabbed frame. ``rgb(size)`` retrieves its pixels; valid until the next frame is
    grabbed (the decoder reuses its buffer)."""

    index: int
    time_s: float
    _source: "FrameSource"

    def rgb(self, size: int | None = None) -> np.ndarray | None:
        """uint8 RGB (size, size, 3) of this frame (size: the backbone's input size), or None
        when the frame cannot be retrieved."""
        return self._source._retrieve(self.index, default_size() if size is None else int(size))

    def bgr(self) -> np.ndarray | None:
        """The whole decoded frame as OpenCV gives it (uint8 BGR, H×W×3, after rotation), or
        None when it cannot be retrieved (``vd watch`` keeps these for incident clips)."""
        return self._source._retrieve_bgr(self.index)


class FrameSource:
    """Frames of a file, a capture device or a live URL, in order, with presentation times.

    ``open_timeout_s``/``read_timeout_s`` apply to live inputs (FFmpeg's
    ``CAP_PROP_OPEN_TIMEOUT_MSEC``/``CAP_PROP_READ_TIMEOUT_MSEC`` open parameters): a stream
    that does not open, or sends no frame, within them raises :class:`DecodeError`.
    Attributes known after opening: ``kind``, ``live``, ``fps`` (container rate, 0.0 unknown),
    ``frame_count_guess`` (header count, None when absent or absurd), ``duration_guess_s``;
    after the first retrieved frame: ``width``/``height`` (decoded size, after rotation).
    After iteration: ``n_frames`` grabbed, ``duration_s`` (last time + last interval).
    """

    def __init__(self, target, *, open_timeout_s: float = OPEN_TIMEOUT_S,
                 read_timeout_s: float = READ_TIMEOUT_S):
        self.kind, what = parse_target(target)
        self.live = self.kind != "file"
        self.target = what
        self.read_timeout_s = float(read_timeout_s)
        self.width = self.height = 0
        self.n_frames = 0
        self.timing = "pts"
        self._times: list[float] = []  # last two times (for the interval)
        self._t0: float | None = None
        self._grabbed = -1
        self._cap = self._open(what, float(open_timeout_s))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 0.0 < fps <= MAX_FPS else 0.0
        guess = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        self.frame_count_guess = int(guess) if (not self.live and math.isfinite(guess)
                                                and 1 <= guess < 2 ** 31) else None

    # ------------------------------------------------------------------ opening and closing

    def _open(self, what, open_timeout_s: float) -> cv2.VideoCapture:
        if self.kind == "device":
            cap = cv2.VideoCapture(what, cv2.CAP_ANY)
        elif self.kind == "url":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
            start = time.monotonic()
            cap = cv2.VideoCapture(what, cv2.CAP_FFMPEG, params)
            if not cap.isOpened() and time.monotonic() - start >= open_timeout_s * 0.9:
                cap.release()
                raise DecodeError(f"cannot open stream {what}: no answer within {open_timeout_s:g} s")
        else:
            cap = cv2.VideoCapture(what, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            if self.kind == "device":
                raise DecodeError(f"cannot open capture device {what}")
            if self.kind == "url":
                raise DecodeError(f"cannot open stream {what}: refused, not found or not a video")
            raise DecodeError("cannot open: not a video, unsupported codec or damaged container")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    def close(self) -> None:
        """Release the capture (idempotent); a live connection is closed."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # a source dropped mid-iteration still lets its connection go
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ frames

    @property
    def nominal_fps(self) -> float:
        """The rate used where a frame has no usable timestamp (container fps, else 25)."""
        return self.fps if self.fps > 0 else FALLBACK_FPS

    @property
    def duration_guess_s(self) -> float | None:
        """The header's idea of the length (frame count / fps), None without both."""
        if self.frame_count_guess is None or self.fps <= 0:
            return None
        return self.frame_count_guess / self.fps

    @property
    def last_interval_s(self) -> float:
        """The interval between the last two frames (one nominal interval with fewer)."""
        if len(self._times) == 2 and self._times[1] > self._times[0]:
            return self._times[1] - self._times[0]
        return 1.0 / self.nominal_fps

    @property
    def duration_s(self) -> float:
        """Frames seen so far × their display time: the last frame's time plus the last
        interval (its own duration is unknown; the one before it stands in)."""
        if not self._times:
            return 0.0
        return self._times[-1] + self.last_interval_s

    @property
    def notes(self) -> list[str]:
        if self.timing == "fallback":
            return [f"no timestamps and no frame rate: times assume {FALLBACK_FPS:g} fps"]
        if self.timing == "fps":
            return [f"no usable timestamps: times are frame number / {self.nominal_fps:g} fps"]
        return []

    def _time(self) -> float:
        t = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        if self.kind == "device" and math.isfinite(t):
            if self._t0 is None:
                self._t0 = t
            t -= self._t0
        prev = self._times[-1] if self._times else None
        if math.isfinite(t) and t >= 0.0 and (prev is None or t > prev):
            return t
        if prev is None:
            return 0.0
        self.timing = "fps" if self.fps > 0 else "fallback"
        return prev + 1.0 / self.nominal_fps

    def grab(self) -> Frame | None:
        """Decode the next frame without converting it; None at the end of the input.

        A live input that sends nothing for ``read_timeout_s`` raises :class:`DecodeError`.
        """
        if self._cap is None:
            return None
        start = time.monotonic()
        if not self._cap.grab():
            if self.live and time.monotonic() - start >= self.read_timeout_s * 0.9:
                raise DecodeError(f"stream {self.target}: no frame within {self.read_timeout_s:g} s")
            return None
        t = self._time()
        self._times = (self._times + [t])[-2:]
        self._grabbed = self.n_frames
        self.n_frames += 1
        return Frame(self._grabbed, t, self)

    @property
    def fourcc(self) -> str:
        """The stream's codec tag as OpenCV reports it (``"h264"``, ``"VP90"``, ``"MJPG"``…; ""
        when unknown)."""
        code = int(self._cap.get(cv2.CAP_PROP_FOURCC) or 0) if self._cap is not None else 0
        text = code.to_bytes(4, "little", signed=False).decode("latin-1") if 0 < code < 2 ** 32 else ""
        return text.strip("\x00 ")

    def seek(self, index: int) -> None:
        """Position a file so that the next :meth:`grab` decodes frame ``index`` as OpenCV
        numbers frames (from the timestamp: ``round(pts × fps)``, decoding forward from the
        keyframe before it). Exact only where timestamps sit on the ``k / fps`` grid: callers
        check the grabbed frame's ``time_s`` (:mod:`vd.extract.decode` does). The frame after a
        seek is timed by its own timestamp, not against the frames before the seek."""
        if self.live or self._cap is None:
            raise RuntimeError("only an open file can seek")
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        self._times = []
        self.n_frames = int(index)
        self._grabbed = -1

    def _retrieve_bgr(self, index: int) -> np.ndarray | None:
        if self._cap is None or index != self._grabbed:
            raise RuntimeError(f"frame {index} is gone: pixels are only available until the next grab")
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            return None
        self.height, self.width = (int(x) for x in frame.shape[:2])
        return frame

    def _retrieve(self, index: int, size: int) -> np.ndarray | None:
        frame = self._retrieve_bgr(index)
        return None if frame is None else to_rgb_square(frame, size)

    def __iter__(self):
        while True:
            f = self.grab()
            if f is None:
                return
            yield f
