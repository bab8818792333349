"""Training rows from untrimmed recordings: the windows ``vd watch`` would score, labelled by
their overlap with annotated violent intervals (``vd extract RECORDINGS OUT --annotations F``).

Each recording is decoded once by the same :class:`~vd.score.timeline.Streamer` ``vd watch``
and ``vd evaluate --annotations`` use: the same windows (``[t0, t0 + window)`` every
``stride`` seconds plus the flush window at the end), the same 20 sampled frames per window,
each sampled frame through the backbone once even where windows overlap. Instead of scoring a
window, its features become one store row.

Rows (store schema 1, unchanged; older readers read them as clips):

- ``video`` ``<recording>@<start>-<end>``, seconds with three decimals, e.g.
  ``cam1/rec.mp4@12.000-16.000``; :func:`vd.data.splits.group_of` maps it back to the
  recording, the unit splits keep on one side;
- ``label`` from the window's overlap ``f`` with the union of the recording's intervals:
  ``f ≥ 0.5`` → 1 (the rule :func:`vd.score.alarm_quality.window_truth` scores windows by),
  ``f = 0`` → 0, ``0 < f < 0.5`` → no row (ambiguous: a fight's edge, counted as left out),
  or with ``keep_ambiguous`` a row labelled −1 (training leaves −1 rows out; a store that keeps
  them holds every window ``vd watch`` scores, which is what an evaluation replays);
- ``frame_index`` the sampled frame numbers in the recording; ``n_frames`` the frames shown in
  the window and ``fps`` the recording's, so ``n_frames / fps`` is the window's length (what
  ``vd watch`` takes its default window from);
- ``variant`` 0, ``split`` empty (splits are made by recording).

A recording's rows are committed to the store together (one shard per recording), so a killed
run leaves each recording whole or absent and the rerun skips the whole ones. A recording that
does not decode is recorded as a failure under its own name.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd.data.annotations import match_recordings, read_annotations, to_seconds
from vd.data.discover import discover
from vd.data.store import ClipRows, Failure, StoreWriter, open_store
from vd.data.splits import WINDOW_SEP, group_of
from vd.errors import UserError, one_line
from vd.extract.sampling import FRAMES
from vd.outputs import check_output
from vd.score.alarm_quality import union
from vd.score.timeline import Streamer, check_window, stream_file

log = logging.getLogger("vd.score.recording_windows")

POSITIVE_OVERLAP = 0.5     # a window this much inside the intervals is violent
MAX_WINDOWS = 100_000      # per recording (a day at a 1 s stride): bounds what one shard holds


@dataclass
class RecordingsSummary:
    """What a run did: recordings and windows written, windows left out, failures."""

    output: Path
    recordings_found: int
    recordings_skipped: int = 0
    recordings_ok: int = 0
    recordings_failed: int = 0
    rows: int = 0
    violent_rows: int = 0
    ambiguous: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    failed_total: int = 0


def window_name(video: str, start_s: float, end_s: float) -> str:
    """``rec.mp4@12.000-16.000``: the row name of one window of a recording."""
    return f"{video}{WINDOW_SEP}{start_s:.3f}-{end_s:.3f}"


def overlap_fraction(start_s: float, end_s: float, merged) -> float:
    """The share of ``[start_s, end_s)`` inside ``merged`` (sorted, disjoint intervals)."""
    length = end_s - start_s
    if length <= 0:
        return 0.0
    inside = sum(max(0.0, min(b, end_s) - max(a, start_s)) for a, b in merged)
    return inside / length


def window_label(start_s: float, end_s: float, merged) -> int | None:
    """1, 0, or None (ambiguous, no row) by the module's overlap rule."""
    f = overlap_fraction(start_s, end_s, merged)
    if f >= POSITIVE_OVERLAP - 1e-9:
        return 1
    return 0 if f <= 1e-9 else None


class _Features:
    """What :class:`Streamer` calls a predictor, for extraction: ``features`` runs the
    backbone; ``view_probabilities`` hands each window's features back unchanged, so the
    streamer's finished windows carry their features where ``vd watch`` keeps scores."""

    explain = False

    def __init__(self, net, frames: int):
        self.net, self.frames = net, int(frames)

    def features(self, pixels, idx):
        return self.net(pixels)[None]          # (1 view, n, D)

    def view_probabilities(self, x):
        return x                                # (W, 1, T, D)

    def attention(self, x):                     # never called: explain is False
        return None


def recording_rows(net, path, video: str, intervals, window: float, stride: float,
                   size: int, frames: int = FRAMES,
                   keep_ambiguous: bool = False) -> tuple[list[ClipRows], int, int]:
    """One recording → (its labelled window rows in time order, ambiguous windows, frames
    decoded). ``intervals`` as :func:`match_recordings` gives them."""
    st = Streamer(_Features(net, frames), window, stride, size, keep_pixels=False)
    n, _duration, fps, _notes, _timing = stream_file(st, path)
    rate = float(fps) if fps and fps > 0 else 0.0
    merged = union(to_seconds(intervals, rate))
    done = sorted(st.done, key=lambda d: (d["w"].start_s, d["w"].end_s))
    if len(done) > MAX_WINDOWS:
        raise UserError(f"{video}: {len(done)} windows, more than {MAX_WINDOWS}; use a longer --stride")
    rows, ambiguous = [], 0
    for d in done:
        w = d["w"]
        label = window_label(w.start_s, w.end_s, merged)
        if label is None:
            ambiguous += 1
            if not keep_ambiguous:
                continue
            label = -1
        feats = np.asarray(d["probs"], np.float32)      # (1, T, D)
        rows.append(ClipRows(video=window_name(video, w.start_s, w.end_s), label=label, split="",
                             features=feats.astype(np.float16), variant=np.zeros(1, np.int8),
                             frame_index=np.asarray(w.frame, np.int32)[None],
                             n_frames=int(w.stop_frame) - int(w.start_frame), fps=rate))
    return rows, ambiguous, n


def extract_recordings(input_path, output, annotations, *, window: float = 2.0,
                       stride: float | None = None, annotations_format: str = "auto",
                       weights: str = "imagenet", layer: str | None = None,
                       backbone: str | None = None, seed: int = 0, batch_frames: int = 32,
                       overwrite: bool = False, keep_ambiguous: bool = False,
                       progress=None) -> RecordingsSummary:
    """Window rows of every recording under ``input_path`` into the store ``output`` (see the
    module doc). Rerunning resumes: recordings already in the store are skipped. Raises
    :class:`UserError` for bad inputs (nothing written)."""
    from vd.extract.network import Backbone, describe_weights
    from vd.extract.registry import get_spec
    from vd.extract.run import store_attrs

    stride = check_window(float(window), stride)
    spec = get_spec(backbone)
    layer = spec.check_layer(layer)
    output = Path(output)
    if output.is_dir() and not output.is_symlink():
        raise UserError(f"output is a directory; give a file name such as {output / 'features.h5'}")
    check_output(output, "store", overwrite=overwrite)
    recs = discover(input_path, None)
    intervals = match_recordings(read_annotations(annotations, annotations_format),
                                 [c.video for c in recs])
    weights_label, _ = describe_weights(weights, seed)
    attrs = store_attrs(weights_label, layer, 1, seed, FRAMES, spec.name)
    summary = RecordingsSummary(output=output, recordings_found=len(recs))
    start = time.perf_counter()
    # one shard per recording: shard_clips never fills before the recording's commit
    with StoreWriter(output, attrs, shard_clips=MAX_WINDOWS + 1, overwrite=overwrite) as writer:
        done = {group_of(v) for v in writer.done()}
        todo = [c for c in recs if c.video not in done]
        summary.recordings_skipped = len(recs) - len(todo)
        net = Backbone(weights, layer, batch_frames=batch_frames, seed=seed, backbone=spec.name) if todo else None
        for c in todo:
            try:
                rows, ambiguous, n = recording_rows(net, c.path, c.video, intervals[c.video],
                                                    float(window), stride, spec.input_size,
                                                    keep_ambiguous=keep_ambiguous)
            except UserError:
                raise
            except Exception as e:  # one bad recording never ends the batch
                fail = Failure(c.video, "decode", one_line(e))
                writer.add_failure(fail)
                writer.commit()
                summary.recordings_failed += 1
                summary.failures.append(fail)
                continue
            for r in rows:
                writer.add(r)
            writer.commit()
            summary.recordings_ok += 1
            summary.rows += sum(r.label >= 0 for r in rows)
            summary.violent_rows += sum(r.label == 1 for r in rows)
            summary.ambiguous += ambiguous
            summary.frames += n
            summary.seconds = time.perf_counter() - start
            if progress:
                progress(summary, len(todo))
    summary.seconds = time.perf_counter() - start
    with open_store(output) as store:
        summary.failed_total = len(store.failures)
    return summary


def windows_by_recording(videos, probs) -> dict:
    """Window rows' scores grouped by recording: ``{recording: Windows}`` in time order
    (``videos``: row names ``rec@start-end``; ``probs``: P(violent) per row), what
    :func:`vd.score.alarm_quality.evaluate` replays the alarm rule over."""
    from vd.score.alarm_quality import Windows

    rows: dict[str, list] = {}
    for v, p in zip(videos, np.asarray(probs, np.float64).tolist()):
        rec, _, span = str(v).rpartition(WINDOW_SEP)
        if not rec:
            continue  # a clip, not a window
        a, b = (float(x) for x in span.split("-"))
        rows.setdefault(rec, []).append((a, b, p))
    return {rec: Windows.of(sorted(r)) for rec, r in rows.items()}
