"""Train/validation/test rows of a feature store, split by source clip (no leakage).

Rules:
- the unit is the source clip (``video`` column): all of a clip's rows fall on one side; rows
  that are windows of a recording (``video`` = ``<recording>@<start>-<end>``, see
  :func:`group_of`) have their recording as the unit, so no recording is in train and val;
- recordings hold both labels, so they are split as their own stratum: ``val_fraction`` of
  the recordings (at least one when there are two or more) go to validation, chosen with the
  same seed, beside the clips' per-label strata; a store of recordings only needs two;
- augmented variants (variant > 0) are used for training only; validation and test see variant 0;
- training takes up to ``aug`` variants per clip (0, 1, …, aug−1) and says so when the store has
  fewer;
- a split stored in the store (``split`` = train/val/test) wins over ``val_fraction``; a store
  with train/test but no val gets its validation clips carved out of ``train``;
- otherwise validation is a stratified (per label) random ``val_fraction`` of clips, seeded;
- rows labelled −1 (unknown) are excluded, and counted.

Takes numpy columns (``label``, ``video``, ``variant``, ``split``) — a ``Store`` has them — and
returns row numbers into the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from vd.errors import UserError


WINDOW_SEP = "@"
_WINDOW_RE = re.compile(r"^(?P<rec>.+)@\d+\.\d{3}-\d+\.\d{3}$")


def group_of(video: str) -> str:
    """The unit a row belongs to: the recording for a window row
    (``rec.mp4@12.000-16.000`` → ``rec.mp4``), else the clip itself."""
    m = _WINDOW_RE.match(str(video))
    return m.group("rec") if m else str(video)


def is_window(video: str) -> bool:
    """Whether a row's ``video`` names a window of a recording."""
    return _WINDOW_RE.match(str(video)) is not None


@dataclass
class Split:
    """Row numbers (sorted int64 arrays) per side, plus the notes a user should read."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    source: str                      # "store" or "fraction"
    variants_used: int               # max variants per clip actually taken for training
    notes: list[str] = field(default_factory=list)

    def summary(self, label) -> dict:
        label = np.asarray(label)
        out = {"source": self.source, "variants_used": self.variants_used}
        for side in ("train", "val", "test"):
            rows = getattr(self, side)
            out[side] = {"rows": int(len(rows)), "violent": int((label[rows] == 1).sum()),
                         "nonviolent": int((label[rows] == 0).sum())}
        return out


def _clip_table(label, video, split):
    """Per unit (clip, or recording for window rows): its label and stored split. A clip's rows
    must agree on the label (else an error); a recording's unit label is 2 (its own stratum)."""
    units = np.array([group_of(v) for v in np.asarray(video, dtype=object)], dtype=str)
    rec = np.array([is_window(v) for v in np.asarray(video, dtype=object)], dtype=bool)
    clips, first, inverse = np.unique(units, return_index=True, return_inverse=True)
    clip_label = np.asarray(label)[first].astype(int)
    is_rec = np.zeros(len(clips), bool)
    is_rec[inverse[rec]] = True
    mismatch = (np.asarray(label).astype(int) != clip_label[inverse]) & ~is_rec[inverse]
    if mismatch.any():
        bad = clips[inverse[np.argmax(mismatch)]]
        raise UserError(f"clip {bad} has rows with different labels; the store is inconsistent")
    clip_label[is_rec] = 2
    clip_split = np.asarray(split, dtype=str)[first]
    return clips, clip_label, clip_split, inverse


def _stratified(clip_ids, clip_label, fraction, rng):
    """Pick ``fraction`` of the clips of each label (at least one each) for validation, and of
    the recordings (label 2) when there are two or more."""
    val = []
    recs = clip_ids[clip_label[clip_ids] == 2]
    for cls in (0, 1):
        ids = clip_ids[clip_label[clip_ids] == cls]
        if len(ids) < 2:
            if len(recs) >= 2 and len(ids) == 0:
                continue  # recordings hold this label
            name = "violent" if cls else "non-violent"
            raise UserError(f"need at least 2 {name} clips to split into train and validation, "
                            f"the store has {len(ids)}")
        k = min(len(ids) - 1, max(1, int(round(fraction * len(ids)))))
        val.extend(rng.permutation(ids)[:k].tolist())
    if len(recs) >= 2:
        k = min(len(recs) - 1, max(1, int(round(fraction * len(recs)))))
        val.extend(rng.permutation(recs)[:k].tolist())
    return np.array(sorted(val), np.int64)


def _has_both(label, inverse, unit_ids, side: str, why: str = "") -> None:
    """Both labels among the rows of ``unit_ids`` (clips or recordings), else a UserError."""
    rows = np.isin(inverse, unit_ids)
    for cls in (0, 1):
        if not (label[rows] == cls).any():
            name = "violent" if cls else "non-violent"
            raise UserError(f"the {side} split has no {name} clips{why}")


def make_split(label, video, variant, split, *, val_fraction: float = 0.2, seed: int = 0,
               aug: int = 1) -> Split:
    """Split store rows by clip (see module docstring). Raises UserError when it cannot."""
    label = np.asarray(label).astype(int)
    variant = np.asarray(variant).astype(int)
    notes = []
    known = label >= 0
    if (~known).any():
        notes.append(f"excluded {int((~known).sum())} rows labelled -1 (unknown) from training")
    rows_all = np.nonzero(known)[0]
    if len(rows_all) == 0:
        raise UserError("the store has no labelled rows")
    present = set(np.unique(label[known]).tolist())
    if present != {0, 1}:
        only = "violent" if 1 in present else "non-violent"
        raise UserError(f"the store has only {only} clips; training needs both classes")
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction must be between 0 and 1, got {val_fraction}")

    clips, clip_label, clip_split, inverse = _clip_table(label[known], np.asarray(video)[known],
                                                         np.asarray(split)[known])
    ids = np.arange(len(clips))
    rng = np.random.default_rng(seed)
    stored = set(clip_split.tolist()) - {""}
    if stored:
        unknown = stored - {"train", "val", "test"}
        if unknown:
            raise UserError(f"the store's split column has unknown values: {sorted(unknown)}")
        test_ids = ids[clip_split == "test"]
        if "val" in stored:
            val_ids = ids[clip_split == "val"]
            source = "store"
            notes.append("using the store's train/val split (--val-fraction ignored)")
        else:
            pool = ids[clip_split != "test"]
            val_ids = _stratified(pool, clip_label, val_fraction, rng)
            source = "store+fraction"
            notes.append(f"the store has no val split: {val_fraction:.0%} of its train clips "
                         f"(stratified) are used for validation")
        _has_both(label[known], inverse, val_ids, "validation", "; cannot monitor per class")
    else:
        test_ids = ids[:0]
        val_ids = _stratified(ids, clip_label, val_fraction, rng)
        source = "fraction"
    side = np.zeros(len(clips), np.int8)   # 0 train, 1 val, 2 test
    side[val_ids] = 1
    side[test_ids] = 2
    train_ids = ids[side == 0]
    _has_both(label[known], inverse, train_ids, "training")
    if not stored:
        _has_both(label[known], inverse, val_ids, "validation", "; cannot monitor per class")

    row_side = side[inverse]
    v = variant[known]
    train_rows = rows_all[(row_side == 0) & (v < aug)]
    val_rows = rows_all[(row_side == 1) & (v == 0)]
    test_rows = rows_all[(row_side == 2) & (v == 0)]
    missing0 = len(np.unique(inverse[v == 0])) < len(clips)
    if missing0:
        notes.append("some clips have no variant 0 (original) row; they are not validated on")
    per_clip = np.bincount(inverse[(row_side == 0) & (v < aug)], minlength=len(clips))[train_ids]
    per_clip = per_clip[clip_label[train_ids] != 2]   # a recording's rows are windows, not variants
    used = int(per_clip.max()) if len(per_clip) else 1
    if used < aug:
        notes.append(f"the preset trains on up to {aug} variants per clip; the store has "
                     f"{used} (make more with vd extract --augment)")
    return Split(np.sort(train_rows), np.sort(val_rows), np.sort(test_rows), source, used, notes)


def split_store(store, *, val_fraction=0.2, seed=0, aug=1) -> Split:
    """:func:`make_split` on an open ``Store``."""
    return make_split(store.label, store.video, store.variant, store.split,
                      val_fraction=val_fraction, seed=seed, aug=aug)
