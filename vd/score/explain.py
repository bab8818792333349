"""``vd predict --explain``: which of a clip's sampled frames the model looked at.

The attention presets (hybrid, hybrid-motion, better) end their LSTM stack in a softmax over
time (``vd.model.builder``, layer ``attention_weights``): one weight per sampled frame, summing
to 1 over the clip's 20 frames. That softmax is the model's own account of where it looked;
nothing else is computed here. Presets without attention get one note and ``weight: null``
rows — no gradient or occlusion saliency is made up in its place.

- per clip, ``attention``: ``[{frame, time_s, weight}]`` in sampled order, ``frame`` the
  decoded frame number and ``time_s`` its presentation time in seconds (the container's
  timestamps, :mod:`vd.extract.frames`; ``frame / fps`` only for callers that pass a rate);
- with TTA, the original view's weights (the other views are the same frames, transformed);
- ``--explain DIR``: a contact sheet per clip, ``DIR/<video path with / as __>.png``: the 20
  sampled frames, highest weight first, each tile labelled with rank, frame, time and weight,
  and a bar whose length is the weight relative to the clip's largest.

Drawing uses OpenCV only (no matplotlib).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vd.errors import UserError

SHEET_COLUMNS = 5
# tiles are the frames' own size (the backbone's input): the pixels the model saw
HEADER = 36
CAPTION = 30


def attention_probe(model):
    """A Keras model from ``model``'s input to its attention softmax (N, T), or None when the
    preset has none. Build it once and call ``probe.predict`` per clip (traced once)."""
    import keras

    from vd.model.builder import ATTENTION_LAYER

    try:
        layer = model.get_layer(ATTENTION_LAYER)
    except ValueError:
        return None
    return keras.Model(model.inputs, layer.output)


def attention_rows(weights, frame_index, times) -> list[dict]:
    """(T,) weights (or None: no attention) + (T,) frame numbers → [{frame, time_s, weight}].

    ``times``: (T,) presentation times in seconds of those frames, or a frame rate (a number:
    ``time_s = frame / fps``; None or ≤ 0 gives ``time_s`` None).
    """
    idx = [int(i) for i in np.asarray(frame_index).ravel()]
    if times is None or np.ndim(times) == 0:
        fps = None if times is None else float(times)
        ts = [(f / fps) if fps and fps > 0 else None for f in idx]
    else:
        ts = [float(t) for t in np.asarray(times, np.float64).ravel()]
        if len(ts) != len(idx):
            raise ValueError(f"{len(ts)} times for {len(idx)} frames")
    w = [None] * len(idx) if weights is None else [float(x) for x in np.asarray(weights).ravel()]
    if len(w) != len(idx):
        raise ValueError(f"{len(w)} attention weights for {len(idx)} frames")
    return [{"frame": f, "time_s": t, "weight": x} for f, t, x in zip(idx, ts, w)]


def weight_order(rows: list[dict]) -> list[int]:
    """Positions of ``rows`` by weight, highest first (the earlier frame wins a tie); sampled
    order when there are no weights."""
    if not rows or rows[0]["weight"] is None:
        return list(range(len(rows)))
    return sorted(range(len(rows)), key=lambda i: (-rows[i]["weight"], i))


def top_frames(rows: list[dict], n: int = 3) -> list[dict]:
    """The ``n`` rows with the highest weight; [] without weights."""
    if not rows or rows[0]["weight"] is None:
        return []
    return [rows[i] for i in weight_order(rows)[:n]]


def no_attention_note(run) -> str:
    preset = (run.config or {}).get("preset", "this")
    return (f"--explain: the {preset} preset has no attention layer, so there are no per-frame "
            f"weights (weight null); vd does not substitute another saliency")


def sheet_name(video: str) -> str:
    """``Violence/V_000.mp4`` → ``Violence__V_000.mp4.png``; an absolute path keeps its file
    name only (:class:`SheetWriter` numbers clashes)."""
    text = str(video).replace("\\", "/")
    if Path(text).is_absolute():
        text = Path(text).name
    name = text.lstrip("./").replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) + ".png"


def contact_sheet(pixels: np.ndarray, rows: list[dict], title: str) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB sampled frames + their attention rows → BGR uint8 image.

    Tiles ordered by weight, highest first (sampled order when there are no weights).
    """
    import cv2

    t = len(rows)
    if len(pixels) != t:
        raise ValueError(f"{len(pixels)} frames for {t} attention rows")
    side = int(np.asarray(pixels).shape[1])  # the tile side: the frames' own size
    order = weight_order(rows)
    top_w = max((r["weight"] for r in rows if r["weight"] is not None), default=None)
    cols = min(SHEET_COLUMNS, t)
    nrows = -(-t // cols)
    cell_h = side + CAPTION
    img = np.full((HEADER + nrows * cell_h, cols * side, 3), 255, np.uint8)
    cv2.putText(img, title[:110], (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                cv2.LINE_AA)
    for rank, i in enumerate(order):
        r, c = divmod(rank, cols)
        y, x = HEADER + r * cell_h, c * side
        tile = cv2.resize(np.asarray(pixels[i], np.uint8), (side, side), interpolation=cv2.INTER_AREA)
        img[y:y + side, x:x + side] = cv2.cvtColor(tile, cv2.COLOR_RGB2BGR)
        row = rows[i]
        w = row["weight"]
        if w is not None and top_w:
            bar = int(round((side - 8) * w / top_w))
            cv2.rectangle(img, (x + 4, y + side - 10), (x + 4 + bar, y + side - 4), (0, 0, 220), -1)
        when = f"{row['time_s']:.2f}s" if row["time_s"] is not None else "?s"
        text = (f"#{rank + 1} f{row['frame']} {when} w={w:.3f}" if w is not None
                else f"f{row['frame']} {when} w=n/a")
        cv2.putText(img, text, (x + 4, y + side + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (x, y), (x + side - 1, y + side - 1), (200, 200, 200), 1)
    return img


class SheetWriter:
    """Writes one contact sheet per scored clip into a folder (created on first use)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"--explain {self.folder} is a file; give a folder for the contact "
                            f"sheets (or --explain alone for weights only)")
        self.written: list[Path] = []

    def write(self, score, pixels: np.ndarray) -> Path:
        import cv2

        self.folder.mkdir(parents=True, exist_ok=True)
        rows = score.attention or attention_rows(None, score.frame_index, score.fps)
        title = (f"{score.video}  P(violent) {score.violent_probability:.3f}  "
                 f"{'ALARM' if score.alarm else ''}  frames by attention weight")
        path = self.folder / sheet_name(score.video)
        n = 1
        while path in self.written:  # two clips with the same file name in different folders
            n += 1
            path = self.folder / sheet_name(score.video).replace(".png", f"-{n}.png")
        if not cv2.imwrite(str(path), contact_sheet(pixels, rows, title)):
            raise OSError(f"could not write {path}")
        self.written.append(path)
        return path
