"""Sliding-window scores over a long clip: where in the video the violence is.

Windows of ``window`` seconds start every ``stride`` seconds (plus one window flush with the
end when the stride does not land there); each window is sampled to 20 frames exactly as stage
one samples a clip (segment midpoints of the window) and scored like a clip, with or without
TTA. The file is decoded once: one ``read_frames`` pass keeps the union of every window's
frames, and VGG16 sees each distinct frame (× views) once, however many windows share it.
Consecutive violent windows merge into segments ("violent 00:01:23.0–00:01:31.0, peak 0.94").

Times come from the decoded frame rate: frame ``k`` is shown from ``k / fps``; a window of
frames [a, b) spans ``a / fps`` to ``b / fps``. A container without a usable frame rate is
timed at 25 fps, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vd.errors import UserError

FALLBACK_FPS = 25.0


@dataclass(frozen=True)
class Window:
    start: int              # first frame
    stop: int               # one past the last frame
    indices: np.ndarray     # int32 (frames,) sampled frame numbers


def check_window(window: float, stride: float | None) -> float:
    """Validate ``--window``/``--stride`` (seconds); returns the stride (default: window / 2)."""
    if not window > 0:
        raise UserError(f"--window must be a positive number of seconds, not {window:g}")
    stride = window / 2.0 if stride is None else float(stride)
    if not stride > 0:
        raise UserError(f"--stride must be a positive number of seconds, not {stride:g}")
    return stride


def plan_windows(n_frames: int, fps: float, window: float, stride: float, frames: int = 20) -> list[Window]:
    """Windows over ``n_frames`` decodable frames at ``fps``; one window if the clip is shorter."""
    from vd.extract.sampling import sample_indices

    win = max(1, int(round(window * fps)))
    step = max(1, int(round(stride * fps)))
    if n_frames <= win:
        return [Window(0, n_frames, sample_indices(n_frames, frames))]
    starts = list(range(0, n_frames - win + 1, step))
    if starts[-1] + win < n_frames:
        starts.append(n_frames - win)  # cover the end
    return [Window(s, s + win, (s + sample_indices(win, frames)).astype(np.int32)) for s in starts]


def merge_segments(windows, fps: float, threshold: float) -> list:
    """Runs of consecutive windows scoring ≥ ``threshold`` → :class:`~vd.score.predict.Segment`."""
    from vd.score.predict import Segment

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


def score_timeline(predictor, clip, window: float, stride: float, on_pixels=None):
    """One clip → (:class:`~vd.score.predict.ClipScore` with windows and segments, VGG16 frames).

    The clip's own score is its highest window (a clip with a violent stretch is violent).
    With ``predictor.explain``, each window names the frame its attention weighs most (original
    view) and the clip's ``attention`` is the peak window's; ``on_pixels(score, pixels)`` gets
    the peak window's sampled frames. Raises :class:`~vd.extract.decode.DecodeError` when the
    file does not decode.
    """
    from vd.extract.augment import VariantPlan, apply_pixels
    from vd.extract.decode import container_fps, read_frames
    from vd.score.predict import WindowScore

    notes = []
    fps = container_fps(clip.path)
    if fps <= 0:
        notes.append(f"frame rate unknown: times assume {FALLBACK_FPS:g} fps")
    timing_fps = fps if fps > 0 else FALLBACK_FPS

    def wanted(n: int) -> np.ndarray:
        return np.concatenate([w.indices for w in plan_windows(n, timing_fps, window, stride,
                                                               predictor.frames)])

    dec = read_frames(clip.path, wanted)
    windows = plan_windows(dec.n_frames, timing_fps, window, stride, predictor.frames)
    if len(windows) == 1:
        notes.append(f"clip ({dec.n_frames} frames) is not longer than one {window:g} s window: "
                     f"scored as one window")
    # the pixels stage one feeds VGG16 (variant 0), for every distinct frame, once
    pixels = apply_pixels(dec.frames, VariantPlan(0, dec.indices))
    nv = len(predictor.tta.views)
    feats = np.empty((nv, len(dec.indices), predictor.run.dim), np.float16)
    chunk = predictor.frames  # views × 20 frames = one 100-frame VGG16 batch
    for a in range(0, len(dec.indices), chunk):
        feats[:, a:a + chunk] = predictor.features(pixels[a:a + chunk], dec.indices[a:a + chunk])
    pos = np.stack([np.searchsorted(dec.indices, w.indices) for w in windows])  # (W, T)
    per_window = np.moveaxis(feats[:, pos], 0, 1)  # (W, V, T, D)
    probs = predictor.view_probabilities(per_window)  # (W, V)

    scored = []
    for w, p in zip(windows, probs):
        s = float(np.mean(np.asarray(p, np.float64)))
        scored.append(WindowScore(start_frame=w.start, stop_frame=w.stop,
                                  start_s=w.start / timing_fps, end_s=w.stop / timing_fps,
                                  violent_probability=s, label=int(s >= predictor.threshold),
                                  views={v: float(x) for v, x in zip(predictor.tta.views, p)}))
    peak = int(np.argmax([w.violent_probability for w in scored]))
    out = predictor.clip_score(probs[peak], path=clip.path, video=clip.video,
                               true_label=clip.label, n_frames=dec.n_frames, fps=fps,
                               frame_index=windows[peak].indices)
    if fps <= 0:
        out.duration_s = dec.n_frames / timing_fps
    out.windows = scored
    out.segments = merge_segments(scored, timing_fps, predictor.threshold)
    out.notes = notes
    if predictor.explain:
        from vd.score.explain import attention_rows

        att = predictor.attention(per_window[:, 0])  # (W, T): the original view
        if att is not None:
            for w, ws, a in zip(windows, scored, att):
                k = int(np.argmax(a))
                ws.peak_frame = int(w.indices[k])
                ws.peak_frame_s = float(w.indices[k] / timing_fps)
                ws.peak_weight = float(a[k])
        out.attention = attention_rows(None if att is None else att[peak], windows[peak].indices,
                                       timing_fps)
        if on_pixels is not None:
            on_pixels(out, pixels[np.searchsorted(dec.indices, windows[peak].indices)])
    return out, int(feats.shape[0] * feats.shape[1])


def format_time(seconds: float) -> str:
    """``83.0`` → ``00:01:23.0``."""
    tenths = int(round(seconds * 10))
    h, rem = divmod(tenths, 36000)
    m, rem = divmod(rem, 600)
    return f"{h:02d}:{m:02d}:{rem // 10:02d}.{rem % 10}"


def format_segment(seg) -> str:
    return f"violent {format_time(seg.start_s)}–{format_time(seg.end_s)}, peak {seg.peak:.2f}"


def plot_timeline(score, path, threshold: float = 0.5, title: str | None = None) -> None:
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

