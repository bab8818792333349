"""``vd evaluate --checkpoints K``: which saved models of a run, in which order, and their table.

The seed's implementation plan phase 3 ("TTA evaluation: test best 5 checkpoints", then a production decision) and
risk list ("save all checkpoints, test multiple epochs"). A run folder holds several saved models:

- ``checkpoints/epoch-XXX.keras`` (every N epochs), epoch from the name;
- ``model.keras`` (best by validation balanced accuracy; its epoch is the best row of
  ``history.csv``, or ``config.json`` ``promoted.epoch`` after ``--promote``);
- ``last.keras`` (the last epoch in ``history.csv``);
- ``model.prev.keras`` (what ``--promote`` replaced, epoch as recorded).

Files that hold the same epoch hold the same weights and are scored once (one row naming all
of them). Candidates are ranked by the validation balanced accuracy ``history.csv`` recorded
for their epoch (ties: lower validation loss, then the later epoch), or as a run trained with
``--select-by alarms`` ranked its epochs (:func:`vd.model.runfolder.epoch_key`); files whose
epoch has no history row rank last. ``K`` = an integer or ``all``.

The scoring itself is :func:`vd.score.evaluate.evaluate_checkpoints`, through the same video
and store passes as one model (every clip decoded and passed through the backbone once for all
candidates; a store read once); this module does not import it. Each row of the result:
epoch, accuracy (TTA accuracy on videos with TTA), violent and non-violent accuracy, their gap,
ROC-AUC, and the seconds that model took (load + scoring; the shared decode + backbone time is
reported once). Promotion of the best row: :mod:`vd.model.promote`.

Probabilities are each model's raw softmax: ``calibration.json`` and a custom threshold were
fitted for ``model.keras`` alone. The default threshold applies (where calibration changes no
decision: :data:`vd.model.runconfig.DEFAULT_THRESHOLD`); ``--threshold`` overrides it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from vd.errors import UserError
from vd.jsonout import dumps
from vd.model.acceptance import format_decision
from vd.model.runfolder import RunFolder, epoch_key

_EPOCH_RE = re.compile(r"^epoch-(\d+)\.keras$")


@dataclass
class Candidate:
    """One saved model of a run: ``files`` (relative to the run folder) hold the same weights."""

    files: list[str]
    epoch: int | None
    val_balanced_acc: float = math.nan
    val_loss: float = math.nan
    rank_key: tuple = ()   # how training ranked its epoch (vd.model.runfolder.epoch_key)

    @property
    def name(self) -> str:
        return self.files[0]

    def label(self) -> str:
        return " = ".join(self.files)


# --------------------------------------------------------------------------- which models


def list_candidates(run_dir) -> list[Candidate]:
    """Every saved model of ``run_dir`` with its epoch (None when unknown), one per epoch."""
    folder = RunFolder(run_dir)
    run_dir = folder.path
    history = folder.history()
    best, last = folder.best_and_last_epoch()
    promoted = folder.promotion()
    files: list[tuple[str, int | None]] = []
    for p in sorted((run_dir / "checkpoints").glob("epoch-*.keras")):
        m = _EPOCH_RE.match(p.name)
        if m:
            files.append((f"checkpoints/{p.name}", int(m.group(1))))
    named = {"model.keras": promoted.get("epoch", best) if promoted else best,
             "last.keras": last,
             "model.prev.keras": (promoted.get("previous") or {}).get("epoch")}
    for name, epoch in named.items():
        if (run_dir / name).is_file():
            files.append((name, None if epoch is None else int(epoch)))
    by_epoch: dict = {}
    out: list[Candidate] = []
    rows, selection = {r["epoch"]: r for r in history}, folder.selection()
    for name, epoch in files:
        if epoch is not None and epoch in by_epoch:
            by_epoch[epoch].files.append(name)
            continue
        r = rows.get(epoch, {})
        c = Candidate([name], epoch, r.get("val_balanced_acc", math.nan), r.get("val_loss", math.nan),
                      epoch_key(r, selection) if r else ())
        out.append(c)
        if epoch is not None:
            by_epoch[epoch] = c
    return out


def rank_candidates(cands: list[Candidate]) -> list[Candidate]:
    """Best first, as training ranked the epochs (validation balanced accuracy, then lower val
    loss; or the run's ``--select-by alarms`` ranking), then the later epoch; epochs without a
    history row last."""

    def key(c: Candidate):
        known = not math.isnan(c.val_balanced_acc)
        return (known, c.rank_key if known else (), c.epoch if c.epoch is not None else -1)

    return sorted(cands, key=key, reverse=True)


def parse_k(value) -> int | None:
    """``--checkpoints`` value: a positive integer, or ``all`` (None)."""
    text = str(value).strip().lower()
    if text == "all":
        return None
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise UserError(f"--checkpoints takes a positive number or 'all', not {value!r}")
    return k


def select_candidates(run_dir, k) -> tuple[list[Candidate], list[str]]:
    """The ``k`` best candidates (``k`` None = all) and notes about the choice."""
    cands = list_candidates(run_dir)
    if not cands:
        raise UserError(f"{run_dir} holds no saved model (model.keras, last.keras, checkpoints/)")
    ranked = rank_candidates(cands)
    notes = []
    unknown = [c.label() for c in ranked if math.isnan(c.val_balanced_acc)]
    if unknown:
        notes.append(f"no history.csv row for {', '.join(unknown)}: ranked last")
    if k is not None and k > len(ranked):
        notes.append(f"--checkpoints {k}: the run has {len(ranked)} distinct saved model(s); "
                     f"evaluating all of them")
    return ranked if k is None else ranked[:k], notes


# --------------------------------------------------------------------------- the result


@dataclass
class CheckpointsResult:
    source: str                      # "videos" or "store"
    input: str
    run: Path
    threshold: float
    tta: dict | None
    rows: list[dict]                 # one per candidate, in ranked order
    best: dict | None                # the row the decision is about
    decision: dict | None
    shared_seconds: float = 0.0      # decode + backbone (videos) or reading the store, once
    frames: int = 0                  # frames through the backbone (all views), for all checkpoints
    n_clips: int = 0
    failures: list = field(default_factory=list)
    unlabelled: int = 0
    notes: list[str] = field(default_factory=list)
    promoted: dict | None = None
    seconds: float = 0.0

    @property
    def exit_status(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> dict:
        return {"source": self.source, "input": self.input, "model": str(self.run),
                "threshold": self.threshold, "tta": self.tta, "checkpoints": self.rows,
                "best": self.best, "decision": self.decision,
                "shared_seconds": self.shared_seconds, "vgg16_frames": self.frames,
                "clips": self.n_clips, "unlabelled": self.unlabelled,
                "failures": [{"video": f.video, "stage": f.stage, "message": f.message}
                             for f in self.failures],
                "promoted": self.promoted, "notes": self.notes, "seconds": self.seconds}


def best_row(rows: list[dict]) -> dict:
    """The row the decision is about: highest accuracy, then balanced accuracy, smaller gap,
    higher ROC-AUC, and the earlier rank (better validation) on a full tie."""

    def high(x):  # NaN counts as the worst value
        return math.inf if x is None or math.isnan(x) else -x

    def low(x):
        return math.inf if x is None or math.isnan(x) else x

    order = sorted(range(len(rows)), key=lambda i: (
        high(rows[i]["accuracy"]), high(rows[i]["balanced_acc"]), low(rows[i]["gap"]),
        high(rows[i]["roc_auc"]), i))
    return rows[order[0]]


# --------------------------------------------------------------------------- output


def _pct(x) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:6.1%}"


def format_checkpoints(res: CheckpointsResult) -> str:
    """The table (ranked as chosen, best validation first), the decision, notes."""
    acc = "TTA acc" if res.tta else "acc"
    how = ("with TTA (" + ", ".join(res.tta["views"]) + ")") if res.tta else "no TTA"
    out = [f"{res.input}: {res.n_clips} clips, {res.source}, {how}; run {res.run}; "
           f"{len(res.rows)} checkpoint(s) at threshold {res.threshold:g}",
           f"{'checkpoint':<44} {'epoch':>5} {'val bal':>7} {acc:>7} {'violent':>7} "
           f"{'non-v':>7} {'gap':>7} {'ROC-AUC':>7} {'wall':>7}"]
    for r in res.rows:
        mark = " *" if res.best is r else ""
        auc = r["roc_auc"]
        out.append(f"{r['checkpoint'][:44]:<44} {r['epoch'] if r['epoch'] is not None else '?':>5} "
                   f"{_pct(r['val_balanced_acc']):>7} {_pct(r['accuracy']):>7} "
                   f"{_pct(r['violent_acc']):>7} {_pct(r['nonviolent_acc']):>7} "
                   f"{_pct(r['gap']):>7} {'n/a' if math.isnan(auc) else f'{auc:.3f}':>7} "
                   f"{r['seconds']:>6.2f}s{mark}")
    what = "decode + backbone" if res.source == "videos" else "reading the store"
    extra = f", {res.frames} backbone frames" if res.source == "videos" else ""
    out.append(f"(* = best row; {what} once for all checkpoints: {res.shared_seconds:.1f} s{extra})")
    if res.decision:
        out += [""] + format_decision(res.decision)
    if res.promoted:
        p = res.promoted
        if p.get("unchanged"):
            out.append(f"promote: {p['note']}")
        else:
            out.append(f"promoted: {p['from']} (epoch {p['epoch']}) is now {res.run}/model.keras; "
                       f"the previous model (epoch {p['previous']['epoch']}) is model.prev.keras")
            out.append(f"  calibration: {p['calibration']}")
            if p.get("threshold_note"):
                out.append(f"  note: {p['threshold_note']}")
    for n in res.notes:
        out.append(f"note: {n}")
    return "\n".join(out)


def write_checkpoints_report(res: CheckpointsResult, out_dir) -> list[Path]:
    """``checkpoints.json`` (the whole result, decision included) and ``checkpoints.csv``."""
    import csv

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--report {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "checkpoints.json", out / "checkpoints.csv"]
    paths[0].write_text(dumps(res.to_dict(), indent=2) + "\n")
    cols = ["checkpoint", "epoch", "val_balanced_acc", "accuracy", "violent_acc",
            "nonviolent_acc", "gap", "balanced_acc", "roc_auc", "seconds", "best"]
    with open(paths[1], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in res.rows:
            w.writerow([r["checkpoint"], "" if r["epoch"] is None else r["epoch"]]
                       + [_f(r[c]) for c in cols[2:-1]] + [int(r is res.best)])
    return paths


def _f(x) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.6f}"
