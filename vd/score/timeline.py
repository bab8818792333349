"""Sliding-window scores over a long recording: where in the video the violence is.

Windows are defined in time: ``[t0, t0 + window)`` for ``t0 = 0, stride, 2·stride, …`` while
the window fits, plus one window flush with the end ``[D − window, D)`` when the stride does
not land there (``D``: the recording's duration, the last frame's presentation time plus the
last frame interval); a recording not longer than one window is one window ``[0, D)``. Each
window samples ``frames`` (20) frames: the frame being shown at the midpoint of each of 20
equal time segments, i.e. the last frame whose presentation time ≤ the midpoint. On a
constant-rate file whose window and stride are whole numbers of frames, that is exactly stage
one's ``floor((i + 0.5)·n/20)`` of the window's n frames (the midpoint's time × fps, floored),
so fixed-rate timelines are unchanged; on variable-frame-rate files windows sit where the
frames really are shown. Consecutive violent windows merge into segments.

Streaming. The recording is read once through :class:`vd.extract.frames.FrameSource`: every
frame is grabbed, only sampled frames are retrieved; sampled frames go through the backbone
(all TTA views) in batches of ``predictor.frames`` as they arrive, each distinct frame once;
a window is scored as soon as its frames have features and is then dropped, with the
features no open window needs. What is held at any time is bounded by the frames of the
windows open at once (about ``20 · window / stride``), not by the recording's length
(:attr:`TimelineStats.peak_frames` counts it).

Deciding online which frame is shown at a midpoint: the frame shown at ``m`` is only known
when the *next* frame's time passes ``m``, and by then the decoder has moved on (OpenCV can
retrieve only the last grabbed frame). Rather than converting every frame into a ring buffer
(the cost the grab/retrieve split exists to avoid), a frame is retrieved when a pending
midpoint lies within two of the latest frame intervals after its time — the next frame is
predicted from the last interval, with a factor 2 of slack for jittery timestamps. Only a
sudden slowdown (a gap more than twice the previous interval) can outwit that; then the
first frame after the midpoint is taken instead (one frame late) and counted in
``TimelineStats.late`` (with a note). The end of the recording is unknown while streaming: the
flush window is planned from the header's duration (frame count / fps); when the header was
wrong, the flush (or single) window is sampled by one more sequential pass over the file —
as ``read_frames`` does a second pass only when the header lied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vd.errors import UserError
from vd.model.runconfig import DEFAULT_THRESHOLD

FALLBACK_FPS = 25.0
EPS = 1e-6              # seconds: times closer than this are equal (pts are ms or finer)
SLACK = 1.25            # retrieve a frame when a midpoint lies within SLACK × last interval


@dataclass
class WindowScore:
    """One timeline window ``[start_s, end_s)`` in seconds (presentation times); frames
    ``[start_frame, stop_frame)`` are the frames shown in it."""

    start_frame: int
    stop_frame: int
    start_s: float
    end_s: float
    violent_probability: float
    label: int
    views: dict
    # with --explain: the frame the original view's attention weighs most, and its weight
    peak_frame: int | None = None
    peak_frame_s: float | None = None
    peak_weight: float | None = None


@dataclass
class Segment:
    """Consecutive violent windows merged: from the first window's start to the last one's end."""

    start_s: float
    end_s: float
    peak: float
    peak_s: float           # centre of the window with the highest score
    windows: int


@dataclass(frozen=True)
class Window:
    start: int              # first frame
    stop: int               # one past the last frame
    indices: np.ndarray     # int32 (frames,) sampled frame numbers


@dataclass
class TimelineStats:
    """What streaming a recording took: ``frames_grabbed``, ``frames_retrieved`` (converted),
    ``backbone_frames`` (distinct sampled frames × views), ``peak_frames`` (most sampled frames
    held at once: waiting for the backbone, or features kept for open windows), ``late``
    (midpoints given the next frame, see the module doc), ``passes`` over the file."""

    frames_grabbed: int = 0
    frames_retrieved: int = 0
    backbone_frames: int = 0
    peak_frames: int = 0
    late: int = 0
    passes: int = 0


@dataclass
class _TWindow:
    """A window being sampled: ``mids`` (T,) midpoint times; per slot the frame shown there."""

    start_s: float
    end_s: float
    mids: np.ndarray
    frame: list = field(default_factory=list)    # per slot: frame number or None
    time: list = field(default_factory=list)     # per slot: that frame's time
    start_frame: int | None = None
    stop_frame: int | None = None
    tail: bool = False
    certain: bool = False   # known to be one of the recording's windows (its end was reached)
    gated: bool = False     # still (:meth:`Streamer.take_still`): its frames skip the backbone

    @classmethod
    def make(cls, start_s: float, end_s: float, frames: int, tail: bool = False) -> "_TWindow":
        i = np.arange(frames, dtype=np.float64)
        mids = start_s + (i + 0.5) * (end_s - start_s) / frames
        return cls(start_s, end_s, mids, [None] * frames, [None] * frames, tail=tail)

    @property
    def resolved(self) -> bool:
        return all(f is not None for f in self.frame)

    def same_span(self, other: "_TWindow") -> bool:
        return abs(self.start_s - other.start_s) <= EPS and abs(self.end_s - other.end_s) <= EPS


def check_window(window: float, stride: float | None) -> float:
    """Validate ``--window``/``--stride`` (seconds); returns the stride (default: window / 2)."""
    if not window > 0:
        raise UserError(f"--window must be a positive number of seconds, not {window:g}")
    stride = window / 2.0 if stride is None else float(stride)
    if not stride > 0:
        raise UserError(f"--stride must be a positive number of seconds, not {stride:g}")
    return stride


def plan_windows(n_frames: int, fps: float, window: float, stride: float, frames: int = 20) -> list[Window]:
    """The frame-count arithmetic for a constant-rate clip of ``n_frames`` at ``fps``: the
    reference the time-defined windows reproduce when window and stride are whole frames."""
    from vd.extract.sampling import sample_indices

    win = max(1, int(round(window * fps)))
    step = max(1, int(round(stride * fps)))
    if n_frames <= win:
        return [Window(0, n_frames, sample_indices(n_frames, frames))]
    starts = list(range(0, n_frames - win + 1, step))
    if starts[-1] + win < n_frames:
        starts.append(n_frames - win)  # cover the end
    return [Window(s, s + win, (s + sample_indices(win, frames)).astype(np.int32)) for s in starts]


def tail_window(duration: float, window: float, stride: float, frames: int) -> "_TWindow | None":
    """The window a recording of ``duration`` s needs besides the regular ones: ``[0, D)`` when
    it is not longer than one window, ``[D − window, D)`` when the stride misses the end."""
    if duration <= window + EPS:
        return _TWindow.make(0.0, duration, frames, tail=True)
    last_end = math.floor((duration - window + EPS) / stride) * stride + window
    if last_end < duration - EPS:
        return _TWindow.make(duration - window, duration, frames, tail=True)
    return None


class Streamer:
    """Samples windows from frames as they arrive, runs the backbone in batches, scores
    windows as they complete (see the module doc). One instance per recording; a second
    pass (:meth:`feed` again with ``regular=False``) adds to the same results."""

    def __init__(self, predictor, window: float, stride: float, size: int, keep_pixels: bool):
        self.p, self.window, self.stride, self.size = predictor, window, stride, size
        self.keep_pixels = keep_pixels
        self.chunk = max(1, int(predictor.frames))
        self.stats = TimelineStats()
        self.done: list[dict] = []     # scored windows: {w, probs, att, pixels}
        self.best: dict | None = None

    # -------------------------------------------------------------- one pass over a source

    def feed(self, src, regular: bool, tails: list) -> tuple[int, float]:
        """Stream ``src``; returns (frames that decoded, duration s). Leaves windows that
        wait for the end (tails, the last regular ones) in ``self.open``."""
        self.begin(src.nominal_fps, regular, tails)
        for f in src:
            if not self.push(f):
                break
            self._run_backbone(final=False)
            self._score_ready(f.time_s)
        return self.end()

    # The three steps of :meth:`feed`, for callers that own the frame loop (``vd watch``:
    # frames arrive from a live source in one thread, the backbone runs in another).

    def begin(self, nominal_fps: float, regular: bool = True, tails: list = ()) -> None:
        """Start a pass: frames without a usable interval are ``1 / nominal_fps`` apart."""
        self.stats.passes += 1
        self.nominal_fps = float(nominal_fps)
        self.regular = regular
        self.open = list(tails)
        self.pending: list = []                 # (index, time, pixels) for the backbone
        self.feats: dict = {}
        self.pixels: dict = {}
        self.refs: dict = {}
        self.next_j = 0
        self.held = None
        self.n, self.times = 0, []
        self.last_t: float | None = None

    def push(self, f) -> bool:
        """One grabbed frame (``index``, ``time_s``, ``rgb(size)``): open the windows it
        reaches, assign it to the midpoints it is shown at, retrieve its pixels when a window
        wants them. False when its pixels cannot be retrieved (files: decoding stops)."""
        k, t = f.index, f.time_s
        times = self.times
        interval = t - times[-1] if times and t > times[-1] else 1.0 / self.nominal_fps
        reach = SLACK * interval
        while self.regular and self.next_j * self.stride <= t + self.window + reach:
            a = self.next_j * self.stride
            self.open.append(_TWindow.make(a, a + self.window, self.chunk))
            self.next_j += 1
        for w in self.open:
            if w.start_frame is None and t >= w.start_s - EPS:
                w.start_frame = k
            if w.stop_frame is None and t >= w.end_s - EPS:
                w.stop_frame = k
                w.certain = not w.tail
        late = []
        held = self.held
        for w in self.open:
            for s, m in enumerate(w.mids):
                if w.frame[s] is None and t > m + EPS:  # frame k−1 was the one shown at m
                    if held is not None and held[0] == k - 1:
                        self._assign(w, s, held)
                    else:
                        late.append((w, s))
        want = bool(late) or any(w.frame[s] is None and m < t + reach
                                 for w in self.open for s, m in enumerate(w.mids))
        self.stats.frames_grabbed += 1
        if want:
            px = f.rgb(self.size)
            self.stats.frames_retrieved += 1
            if px is None:  # files: decoding stops at the first frame that fails
                return False
            self.held = (k, t, px)
            self.stats.late += len(late)
            for w, s in late:
                self._assign(w, s, self.held)
        else:
            self.held = None
        self.n, self.times = self.n + 1, (times + [t])[-2:]
        self.last_t = t
        return True

    def end(self) -> tuple[int, float]:
        """The end of the pass: (frames that decoded, duration s); what open windows still
        lack is shown by the last frame."""
        n, times, held = self.n, self.times, self.held
        if n == 0:
            from vd.extract.frames import DecodeError

            raise DecodeError("no frame decodes")
        if len(times) == 2 and times[1] > times[0]:
            duration = times[1] + (times[1] - times[0])
        else:
            duration = times[-1] + 1.0 / self.nominal_fps
        for w in self.open:  # the end: what is left is shown by the last frame
            if w.stop_frame is None:
                w.stop_frame = n
            if w.start_frame is None:
                w.start_frame = n
            for s in range(len(w.frame)):
                if w.frame[s] is None and held is not None and held[0] == n - 1:
                    self._assign(w, s, held)
        return n, duration

    # For callers that own the scheduling (``vd watch``: many sources, one backbone, one model
    # call for all): what waits, what is complete, and giving a window up.

    @property
    def waiting(self) -> int:
        """Sampled frames waiting for the backbone."""
        return len(self.pending)

    @property
    def open_windows(self) -> int:
        return len(self.open)

    def complete(self) -> list:
        """The open windows whose frames all have features and whose end the stream has
        passed -- what :meth:`_score_ready` would score now; score them with
        :meth:`window_features` and hand each back with :meth:`take_scored`."""
        t = self.last_t
        if t is None:
            return []
        return [w for w in self.open
                if w.resolved and all(k in self.feats for k in w.frame) and not w.tail
                and not w.gated and t >= w.end_s - EPS]

    def take_still(self, is_still) -> list:
        """The motion gate's windows: each complete window (sampled, its end passed) for which
        ``is_still(frame indices)`` is true is marked still -- its frames are not taken for the
        backbone any more -- and the still windows that no unscored earlier window precedes are
        removed and returned, oldest first (so that the incident rule sees windows in order)."""
        t = self.last_t
        if t is None:
            return []
        for w in self.open:
            if (not w.gated and not w.tail and w.resolved and t >= w.end_s - EPS
                    and is_still(w.frame)):
                w.gated = True
        out = []
        for w in sorted(self.open, key=lambda x: x.start_s):
            if not w.gated:
                break
            out.append(w)
        for w in out:
            self.open.remove(w)
            self._drop(w)
        return out

    def oldest_frame(self) -> int | None:
        """The oldest frame index an open window (or the next one) may still use."""
        ks = [k for w in self.open for k in w.frame if k is not None]
        if self.held is not None:
            ks.append(self.held[0])
        return min(ks) if ks else None

    def window_features(self, w) -> np.ndarray:
        """Features (V, T, D) of a complete window ``w``."""
        return np.stack([self.feats[k] for k in w.frame], axis=1)

    def take_scored(self, w) -> bool:
        """Window ``w`` was scored: forget it and the features only it needed. False when it
        was given up meanwhile (:meth:`give_up`)."""
        if w not in self.open:
            return False
        self.open.remove(w)
        self._drop(w)
        return True

    def take_done(self) -> list:
        """The windows scored by this Streamer itself since the last call (``{w, probs, …}``)."""
        done, self.done = self.done, []
        return done

    def give_up(self) -> int:
        """Give up one open window (the backbone fell behind a live source); returns how many
        sampled frames were released with it.

        The window given up is the one with the least backbone work done (the newest among
        equals): a window whose frames are partly through the backbone is finished, not thrown
        away for a newer one that would be thrown away in turn. When the backbone is much
        slower than the frames arrive (VGG16 on a busy CPU), giving up the oldest window
        instead scored no window at all (measured: 0 windows in 60 s); this way fewer windows
        are scored, each whole, and the newest are the ones skipped."""
        if not self.open:
            return 0

        def work_done(w):
            return sum(1 for k in w.frame if k is not None and k in self.feats)

        # a file's planned tail window last: given up, the end would sample it again (a
        # second pass), and it would count as both given up and scored
        w = min([x for x in self.open if not x.gated and not x.tail]
                or [x for x in self.open if not x.gated] or self.open,
                key=lambda x: (work_done(x), -x.start_s))
        before = len(self.pending) + len(self.feats)
        self.open.remove(w)
        self._drop(w)
        return before - len(self.pending) - len(self.feats)

    def finish(self, duration: float) -> "_TWindow | None":
        """Keep the windows a recording of ``duration`` s has, score them; returns the tail
        window still to sample (by another pass) when the planned one was not it."""
        need = tail_window(duration, self.window, self.stride, self.chunk)
        for w in self.open:  # the end: the gate's windows still open are scored as they are
            w.gated = False
        single = need is not None and need.start_s <= EPS
        keep = []
        for w in self.open:
            if not w.resolved:
                self._drop(w)
            elif need is not None and w.same_span(need) and not any(w.same_span(x) for x in keep):
                w.tail = True
                keep.append(w)
            elif w.tail or single or w.end_s > duration + EPS:
                self._drop(w)
            else:
                keep.append(w)
        for w in keep:
            w.certain = True
        if single:  # regular windows scored before the end cannot exist, but be exact
            for d in list(self.done):
                if not d["w"].same_span(need):
                    self.done.remove(d)
                    if d is self.best:
                        self.best = None
        self.open = keep
        self._run_backbone(final=True)
        self._score_ready(None)
        if need is not None and not any(d["w"].same_span(need) for d in self.done):
            return need
        return None

    # -------------------------------------------------------------- bookkeeping

    def _assign(self, w, slot, frame) -> None:
        k, t, px = frame
        w.frame[slot], w.time[slot] = k, t
        self.refs[k] = self.refs.get(k, 0) + 1
        if k not in self.feats and not any(p[0] == k for p in self.pending):
            self.pending.append(frame)
            if self.keep_pixels:
                self.pixels[k] = px
        self._count()

    def _drop(self, w) -> None:
        for k in w.frame:
            if k is None:
                continue
            self.refs[k] -= 1
            if self.refs[k] == 0:
                del self.refs[k]
                self.feats.pop(k, None)
                self.pixels.pop(k, None)
                self.pending = [p for p in self.pending if p[0] != k]

    def _count(self) -> None:
        held = len(self.pending) + len(self.feats)
        self.stats.peak_frames = max(self.stats.peak_frames, held)

    def _run_backbone(self, final: bool) -> None:
        """Features for waiting frames, ``chunk`` at a time (the rest too when ``final``)."""
        while True:
            batch = self.take_ready(self.chunk, final)
            if not batch:
                return
            idx = np.array([b[0] for b in batch], np.int32)
            # variant 0 of stage one: the decoded pixels as they are (uint8 RGB)
            self.put_features(idx, self.p.features(np.stack([b[2] for b in batch]), idx))

    def take_ready(self, limit: int, final: bool = True) -> list:
        """Up to ``limit`` waiting frames ``(index, time, pixels)`` for the backbone, removed
        from the wait; none when fewer than ``limit`` wait and not ``final``.

        Only frames of windows known to be in the recording go (a window is known once a
        frame at its end arrived): near the end, windows opened ahead may turn out to run past
        it, and their frames would be backbone work for nothing.
        """
        sure = {k for w in self.open if w.certain and not w.gated for k in w.frame if k is not None}
        ready = [p for p in self.pending if p[0] in sure]
        if not ready or (len(ready) < limit and not final):
            return []
        batch = ready[:limit]
        taken = {b[0] for b in batch}
        self.pending = [p for p in self.pending if p[0] not in taken]
        return batch

    def put_features(self, idx, feats) -> None:
        """Features (V, n, D) of the frames ``idx`` (n,) taken by :meth:`take_ready`; a frame
        no open window needs any more (dropped meanwhile) is forgotten."""
        self.stats.backbone_frames += int(feats.shape[0] * feats.shape[1])
        for j, k in enumerate(np.asarray(idx).tolist()):
            if k in self.refs:
                self.feats[k] = feats[:, j]
        self._count()

    def _score_ready(self, t: float | None) -> None:
        ready = [w for w in self.open
                 if w.resolved and all(k in self.feats for k in w.frame)
                 and (t is None or (not w.tail and t >= w.end_s - EPS))]
        if not ready:
            return
        x = np.stack([np.stack([self.feats[k] for k in w.frame], axis=1) for w in ready])  # (W, V, T, D)
        probs = self.p.view_probabilities(x)
        att = self.p.attention(x[:, 0]) if self.p.explain else None
        for i, w in enumerate(ready):
            d = {"w": w, "probs": np.asarray(probs[i]), "att": None if att is None else att[i],
                 "pixels": None}
            score = float(np.mean(np.asarray(probs[i], np.float64)))
            if self.best is None or score > float(np.mean(np.asarray(self.best["probs"], np.float64))):
                if self.keep_pixels:
                    d["pixels"] = np.stack([self.pixels[k] for k in w.frame])
                if self.best is not None:
                    self.best["pixels"] = None
                self.best = d
            self.done.append(d)
            self.open.remove(w)
            self._drop(w)


_Streamer = Streamer  # the name it had before vd watch shared it


def merge_segments(windows, fps: float, threshold: float) -> list:
    """Runs of consecutive windows scoring ≥ ``threshold`` → :class:`Segment` (``fps`` unused:
    windows carry their times)."""
    segments, run = [], []
    for w in list(windows) + [None]:
        if w is not None and w.violent_probability >= threshold:
            run.append(w)
            continue
        if run:
            peak = max(run, key=lambda x: x.violent_probability)
            segments.append(Segment(start_s=run[0].start_s, end_s=run[-1].end_s,
                                    peak=float(peak.violent_probability),
                                    peak_s=(peak.start_s + peak.end_s) / 2.0, windows=len(run)))
            run = []
    return segments


def stream_file(st: Streamer, path) -> tuple[int, float, float, list, str]:
    """Stream the file ``path`` through ``st`` and finish it (one more pass over the file only
    when its header's length was wrong, see the module doc). Returns (frames that decoded,
    duration s, container fps, decoding notes, timing: "pts" when times are timestamps).
    Raises :class:`~vd.extract.frames.DecodeError` when the file does not decode."""
    from vd.extract import decode

    src = decode._open(path)
    try:
        hint = src.duration_guess_s
        planned = tail_window(hint, st.window, st.stride, st.chunk) if hint else None
        n, duration = st.feed(src, regular=True, tails=[planned] if planned else [])
        fps, notes, timing = src.fps, list(src.notes), src.timing
    finally:
        src.close()
    missing = st.finish(duration)
    if missing is not None:  # the header's length was wrong: sample the tail window again
        src = decode._open(path)
        try:
            n2, d2 = st.feed(src, regular=False, tails=[missing])
        finally:
            src.close()
        if n2 != n:
            from vd.extract.frames import DecodeError

            raise DecodeError(f"decoding is not repeatable ({n} then {n2} frames)")
        if st.finish(d2) is not None:
            raise RuntimeError("the tail window could not be sampled")
    return n, duration, fps, notes, timing


def score_timeline(predictor, clip, window: float, stride: float, on_pixels=None, stats=None):
    """One clip → (``ClipScore`` with windows and segments, backbone frames), streaming.

    ``predictor`` is a :class:`vd.score.predict.Predictor` (duck-typed: ``features``,
    ``view_probabilities``, ``attention``, ``clip_score``, ``tta``, ``threshold``, ``frames``,
    ``explain``). The clip's own score is its highest window (a clip with a violent stretch is
    violent). With ``predictor.explain``, each window names the frame its attention weighs most
    (original view) and the clip's ``attention`` is the peak window's; ``on_pixels(score,
    pixels)`` gets the peak window's sampled frames. ``stats`` (a :class:`TimelineStats`) is
    filled in when given. Raises :class:`~vd.extract.frames.DecodeError` when the file does
    not decode.
    """
    from vd.extract.frames import default_size

    size = int(getattr(predictor, "input_size", None) or default_size())
    st = Streamer(predictor, float(window), float(stride), size, keep_pixels=on_pixels is not None)
    n, duration, fps, notes, timing = stream_file(st, clip.path)
    if stats is not None:
        stats.__dict__.update(st.stats.__dict__)

    done = sorted(st.done, key=lambda d: (d["w"].start_s, d["w"].end_s))
    if fps <= 0 and timing != "pts":
        notes = [f"frame rate unknown: times assume {FALLBACK_FPS:g} fps"]
    if len(done) == 1 and done[0]["w"].start_s <= EPS and duration <= window + EPS:
        notes.append(f"clip ({n} frames) is not longer than one {window:g} s window: "
                     f"scored as one window")
    if st.stats.late:
        notes.append(f"{st.stats.late} sampled frame(s) taken one frame late where the frame "
                     f"rate dropped suddenly")
    scored = []
    for d in done:
        w, p = d["w"], d["probs"]
        s = float(np.mean(np.asarray(p, np.float64)))
        ws = WindowScore(start_frame=int(w.start_frame), stop_frame=int(w.stop_frame),
                         start_s=float(w.start_s), end_s=float(w.end_s),
                         violent_probability=s, label=int(s >= predictor.threshold),
                         views={v: float(x) for v, x in zip(predictor.tta.views, p)})
        if d["att"] is not None:
            k = int(np.argmax(d["att"]))
            ws.peak_frame, ws.peak_frame_s = int(w.frame[k]), float(w.time[k])
            ws.peak_weight = float(d["att"][k])
        scored.append(ws)
    peak = int(np.argmax([w.violent_probability for w in scored]))
    best = done[peak]
    out = predictor.clip_score(best["probs"], path=clip.path, video=clip.video,
                               true_label=clip.label, n_frames=n, fps=fps,
                               frame_index=best["w"].frame, duration_s=duration)
    out.windows = scored
    out.segments = merge_segments(scored, fps, predictor.threshold)
    out.notes = notes
    if predictor.explain:
        from vd.score.explain import attention_rows

        out.attention = attention_rows(best["att"], best["w"].frame, best["w"].time)
        if on_pixels is not None and best["pixels"] is not None:
            on_pixels(out, best["pixels"])
    return out, st.stats.backbone_frames


def format_time(seconds: float) -> str:
    """``83.0`` → ``00:01:23.0``."""
    tenths = int(round(seconds * 10))
    h, rem = divmod(tenths, 36000)
    m, rem = divmod(rem, 600)
    return f"{h:02d}:{m:02d}:{rem // 10:02d}.{rem % 10}"


def format_segment(seg) -> str:
    return f"violent {format_time(seg.start_s)}–{format_time(seg.end_s)}, peak {seg.peak:.2f}"


def plot_timeline(score, path, threshold: float = DEFAULT_THRESHOLD, title: str | None = None) -> None:
    """Draw a clip's window scores over time into ``path`` (PNG); matplotlib loads here only."""
    from vd.runtime import load_pyplot

    plt = load_pyplot("--timeline")

    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    try:
        mids = [(w.start_s + w.end_s) / 2 for w in score.windows]
        probs = [w.violent_probability for w in score.windows]
        for seg in score.segments or []:
            ax.axvspan(seg.start_s, seg.end_s, color="tab:red", alpha=0.15, lw=0)
        ax.plot(mids, probs, marker="o", ms=3, color="tab:red", label="violent probability")
        ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(score.duration_s, mids[-1] if mids else 1.0))
        ax.set_xlabel("time (s), window centres")
        ax.set_ylabel("P(violent)")
        ax.set_title(title or score.video, fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)

