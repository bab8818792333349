"""Scoring one uploaded clip: checked before it is decoded, cancellable while it is scored.

:func:`score_upload` (run in a worker thread) answers ``(status, body)``:

1. the container header (:mod:`vd.serve.probe`, no frame decoded): 415 when it is not a
   container the server takes, 413 when it declares more than ``max_pixels`` a frame or more
   than ``max_seconds``;
2. the request's parameters against that clip (:func:`check_params`): 422;
3. OpenCV opens it: 415 when it cannot, 413 when the codec's frame size is larger than the
   header said and the limit allows, 422 when no frame decodes;
4. scoring with a :class:`RequestPredictor`: the shared predictor seen through the request's
   own TTA views, checking before every backbone batch whether the request was cancelled
   (the client went away, the server is stopping) or the decoded frames ran past the clip's
   declared length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vd.score.predict import Predictor
from vd.serve.limits import Limits
from vd.serve.probe import Header, read_header

FALLBACK_FPS = 25.0


class Cancelled(BaseException):
    """Stops a request's scoring from inside the scoring loop. A BaseException (as
    ``KeyboardInterrupt``) so that the per-clip ``except Exception`` of the scoring code lets
    it through instead of recording a failed clip."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Params:
    window: float | None = None
    stride: float | None = None
    tta: bool = True


class RequestPredictor(Predictor):
    """The server's one :class:`~vd.score.predict.Predictor` as one request sees it: the
    request's TTA views, no explanations, and ``check(frame_numbers)`` called before every
    backbone batch and every classifier call (it raises :class:`Cancelled` to stop).
    Everything else is read from the shared predictor, which is never written to (``Predictor.__init__`` is not run: nothing
    is loaded again)."""

    def __init__(self, shared: Predictor, tta, check):  # noqa: D107 — see the class
        self._shared, self.tta, self.explain, self._check = shared, tta, False, check

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._shared, name)

    def features(self, pixels, frame_numbers):
        self._check(frame_numbers)
        return super().features(pixels, frame_numbers)

    def view_probabilities(self, feats):
        self._check(())
        return super().view_probabilities(feats)


def header_refusal(path, limits: Limits) -> tuple[Header | None, tuple[int, dict] | None]:
    """(header, None) when the clip's header is acceptable, else (None, (status, body))."""
    try:
        h = read_header(path)
    except OSError as e:
        return None, (415, {"error": f"not a video this server can decode: {e.strerror}"})
    if h is None:
        return None, (415, {"error": "not a video this server can decode: uploads must be "
                                     "MP4/MOV, AVI or Matroska/WebM with a video track"})
    if h.pixels > limits.max_pixels:
        return None, (413, {"error": f"frames of {h.width}x{h.height} are larger than this "
                                     f"server's limit of {limits.max_pixels} pixels "
                                     f"(--max-pixels)"})
    if h.duration_s > limits.max_seconds:
        return None, (413, {"error": f"the clip lasts {h.duration_s:.1f} s, longer than this "
                                     f"server's limit of {limits.max_seconds:g} s (--max-seconds)"})
    return h, None


def check_params(p: Params, h: Header, limits: Limits, frames: int = 20) -> str | None:
    """Why ``p`` cannot be scored on a clip with header ``h`` (one line), or None.

    window ≥ ``frames`` frame intervals (each sampled frame a distinct frame) and ≤
    ``max_seconds``; stride ≥ ``min_stride_s`` and one frame interval, ≤ ``max_seconds``; at
    most ``max_windows`` windows over the clip's declared length (``max_seconds`` when the header
    does not say).
    """
    if p.window is None:
        return "stride needs window" if p.stride is not None else None
    fps = h.fps if 0 < h.fps <= 1000 else FALLBACK_FPS
    low = frames / fps
    if not math.isfinite(p.window) or not low <= p.window <= limits.max_seconds:
        return (f"window must be between {low:g} s ({frames} frames at {fps:g} fps) and "
                f"{limits.max_seconds:g} s, not {p.window:g}")
    stride = p.window / 2.0 if p.stride is None else p.stride
    low = max(limits.min_stride_s, 1.0 / fps)
    if not math.isfinite(stride) or not low <= stride <= limits.max_seconds:
        return f"stride must be between {low:g} s and {limits.max_seconds:g} s, not {stride:g}"
    length = h.duration_s if h.duration_s > 0 else limits.max_seconds
    n = _windows(length, p.window, stride)
    if n > limits.max_windows:
        return (f"window {p.window:g} s every {stride:g} s makes {n} windows on this "
                f"{length:.1f} s clip; the most per request is {limits.max_windows}: "
                f"use a larger stride")
    return None


def _windows(length: float, window: float, stride: float, eps: float = 1e-6) -> int:
    """How many windows :mod:`vd.score.timeline` makes on a recording of ``length`` s: the
    regular ones, plus one flush with the end when the stride misses it."""
    if length <= window + eps:
        return 1
    regular = math.floor((length - window + eps) / stride)
    return regular + 1 + (regular * stride + window < length - eps)


def open_refusal(path, limits: Limits) -> tuple[int, dict] | None:
    """Open the file with OpenCV and decode its first frame: (status, body) when that fails
    or the codec's frame size passes the limit (a header that understated it), else None."""
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return 415, {"error": "not a video this server can decode: cannot open: not a "
                                  "video, unsupported codec or damaged container"}
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if w * h > limits.max_pixels:
            return 413, {"error": f"frames of {w}x{h} are larger than this server's limit of "
                                  f"{limits.max_pixels} pixels (--max-pixels)"}
        if not cap.grab() or not cap.retrieve()[0]:
            return 422, {"error": "the video opens but cannot be decoded: no frame decodes"}
    finally:
        cap.release()
    return None


def frame_guard(h: Header, limits: Limits, cancelled):
    """The ``check`` of a :class:`RequestPredictor`: stop when ``cancelled()`` says why
    (a (status, message) pair) or a frame number runs past the declared length (with a
    margin) or ``max_seconds``."""
    fps = h.fps if 0 < h.fps <= 1000 else FALLBACK_FPS
    declared = h.duration_s * 1.25 + 1.0 if h.duration_s else limits.max_seconds
    seconds = min(limits.max_seconds, declared)
    last = int(seconds * fps) + 2

    def check(frame_numbers):
        why = cancelled()
        if why is not None:
            raise Cancelled(*why)
        top = max((int(i) for i in frame_numbers), default=0)
        if top > last:
            raise Cancelled(413, f"the clip decodes past {seconds:.1f} s, more than its header "
                                 f"says or this server's limit (--max-seconds)")

    return check


def score_upload(svc, path, name: str, params: Params, cancelled) -> tuple[int, dict]:
    """(status, body) for an upload saved at ``path``, in a worker thread. ``cancelled()``
    returns None or the (status, message) to stop with; it is polled while the request waits
    for a scoring slot and before every backbone batch."""
    from vd.errors import UserError
    from vd.extract.tta import TTAConfig
    from vd.score.predict import predict_paths

    h, refusal = header_refusal(path, svc.limits)
    if refusal is None:
        why = check_params(params, h, svc.limits, int(svc.predictor.frames))
        if why is not None:
            svc.metrics.clips.labels("invalid").inc()
            return 422, {"error": why}
        refusal = open_refusal(path, svc.limits)
    if refusal is not None:
        svc.metrics.clips.labels("too_large" if refusal[0] == 413 else "undecodable").inc()
        return refusal
    p = RequestPredictor(svc.predictor, TTAConfig(enabled=params.tta),
                         frame_guard(h, svc.limits, cancelled))
    slot = svc.gate.slot()
    while not slot.acquire(timeout=0.25):  # waiting in the queue: the client may leave
        why = cancelled()
        if why is not None:
            svc.metrics.clips.labels("cancelled").inc()
            return why[0], {"error": why[1]}
    try:
        res = predict_paths([str(path)], predictor=p, window=params.window, stride=params.stride)
    except UserError as e:
        return 422, {"error": e.message}
    except Cancelled as c:
        svc.metrics.clips.labels("cancelled" if c.status != 413 else "too_large").inc()
        return c.status, {"error": c.message}
    finally:
        slot.release()
    if res.failures or not res.clips:
        svc.metrics.clips.labels("failed").inc()
        why = res.failures[0].message if res.failures else "nothing scored"
        return 422, {"error": f"the video decodes but cannot be scored: {why}"}
    svc.metrics.clips.labels("scored").inc()
    d = res.clips[0].to_dict()
    d.update(path=name, video=name, threshold=res.threshold,
             threshold_source=res.threshold_source, calibrated=res.calibrated,
             model=str(res.model), tta=res.tta["views"])
    return 200, d
