"""``vd evaluate``: a trained run measured on labelled data, with the seed's acceptance gates.

Two inputs:

- a folder of labelled raw videos (labels from folder names, as stage one reads them): every
  clip is decoded, sampled and scored through the TTA views exactly as ``vd predict`` does;
  the headline number is the seed's "TTA accuracy" (§6.2 phase 3, §6.3);
- a feature store (``.h5``/``.hdf5`` or any file with the HDF5 signature): the variant-0 rows
  (the original frames; augmented variants are training material) are scored as stored, no
  TTA. Fast, and the same numbers training reported when the rows are the validation clips.

Both give accuracy, violent / non-violent accuracy and their gap, precision / recall / F1 of
the violent class, ROC-AUC, the confusion matrix (rows = truth, columns = prediction; index 1
= violent) and the seed's final acceptance targets as pass/fail rows, and the seed's production decision
(:func:`vd.score.checkpoints.production_decision`). Clips labelled -1 (unknown) are counted
and left out of the metrics.

``--target-fpr`` / ``--target-recall``: the operating point that meets the target on these
clips (:func:`vd.model.metrics.threshold_for`, on the same — calibrated when the run has
calibration — probabilities ``vd predict`` reports); ``--save-threshold`` stores it as the
run's default (:func:`vd.model.runfolder.set_default_threshold`). ``--checkpoints K`` is
:mod:`vd.score.checkpoints`.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.jsonout import dumps

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class EvalResult:
    source: str                     # "videos" or "store"
    input: str
    model: Path
    threshold: float
    tta: dict | None                # the views used (None: features store, no TTA)
    metrics: dict
    acceptance: list[dict]
    clips: list[dict] = field(default_factory=list)   # per clip: video, true_label, probability, …
    failures: list = field(default_factory=list)
    unlabelled: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    decision: dict | None = None          # seed §9 production decision on this accuracy
    operating_point: dict | None = None   # --target-fpr / --target-recall
    saved_threshold: dict | None = None   # --save-threshold: what config.json now says
    calibrated: bool = False              # probabilities through the run's calibration

    @property
    def exit_status(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> dict:
        return {"source": self.source, "input": self.input, "model": str(self.model),
                "threshold": self.threshold, "calibrated": self.calibrated, "tta": self.tta,
                "metrics": self.metrics, "acceptance": self.acceptance,
                "decision": self.decision, "operating_point": self.operating_point,
                "saved_threshold": self.saved_threshold, "unlabelled": self.unlabelled,
                "failures": [{"video": f.video, "stage": f.stage, "message": f.message}
                             for f in self.failures],
                "notes": self.notes, "seconds": self.seconds}


def is_store(path) -> bool:
    """A feature store: an ``.h5``/``.hdf5`` name, or a file starting with the HDF5 signature."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() in (".h5", ".hdf5"):
        return True
    with open(path, "rb") as fh:
        return fh.read(8) == HDF5_SIGNATURE


def acceptance_rows(metrics: dict, tta: bool) -> list[dict]:
    """The seed's final targets (vd.model.monitor) on these numbers; train-val gap does not apply."""
    from vd.model.monitor import acceptance_table

    rows = [r for r in acceptance_table(dict(metrics)) if r["criterion"] != "train-val gap"]
    if tta:
        rows[0] = dict(rows[0], criterion="TTA accuracy")
    return rows


def _metrics(y_true, y_prob, threshold) -> dict:
    from vd.model.metrics import summarize

    return summarize(np.asarray(y_true, int), np.asarray(y_prob, np.float64), threshold)


def evaluate_path(input_path, model=None, *, tta: bool = True, angle: float | None = None,
                  threshold: float | None = None, weights: str | None = None, runs_root="runs",
                  split: str | None = None, progress=None, target_fpr: float | None = None,
                  target_recall: float | None = None, save_threshold: bool = False) -> EvalResult:
    """Evaluate the run ``model`` (None = newest under ``runs_root``) on ``input_path``.

    ``target_fpr`` / ``target_recall`` (one of them): the threshold that meets the target on
    these labelled clips (:func:`vd.model.metrics.threshold_for`) and the numbers there, in
    ``result.operating_point``; ``save_threshold`` makes it the run's default threshold
    (:func:`vd.model.runfolder.set_default_threshold`), which ``vd predict`` then uses.
    """
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor, find_clips

    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"input not found: {input_path}")
    check_target(target_fpr, target_recall, threshold, save_threshold)
    start = time.perf_counter()
    if is_store(input_path):
        if weights is not None:
            raise UserError("--weights applies to raw videos; a store's features are already computed")
        res = _evaluate_store(input_path, model, threshold, runs_root, split)
    else:
        if split is not None:
            raise UserError("--split applies to a feature store; for videos, point at the folder")
        clips = find_clips([input_path])
        cfg = TTAConfig(enabled=tta, angle=10.0 if angle is None else float(angle))
        pred = Predictor(model, weights=weights, tta=cfg, threshold=threshold, runs_root=runs_root)
        labelled = [c for c in clips if c.label in (0, 1)]
        if not labelled:
            raise UserError(f"no labelled videos under {input_path} (labels come from folder "
                            f"names such as Fight/NonFight or Violence/NonViolence)")
        t0 = time.perf_counter()

        def tick(done, frames, failed):
            if progress:
                progress(done, len(labelled), frames, time.perf_counter() - t0, failed)

        scores, failures, _ = pred.score_clips(labelled, progress=tick)
        rows = [{"video": s.video, "true_label": s.true_label,
                 "violent_probability": s.violent_probability, "label": s.label,
                 "correct": int(s.label == s.true_label), "spread": s.spread, **{
                     f"p_{k}": v for k, v in s.views.items()}} for s in scores]
        y = [r["true_label"] for r in rows]
        p = [r["violent_probability"] for r in rows]
        metrics = _metrics(y, p, pred.threshold) if rows else {}
        if rows and tta:  # each view alone, to see what TTA adds
            metrics["per_view_accuracy"] = {
                v: float(np.mean([(r[f"p_{v}"] >= pred.threshold) == r["true_label"] for r in rows]))
                for v in cfg.views}
        res = EvalResult(source="videos", input=str(input_path), model=pred.run.path,
                         threshold=pred.threshold, tta=cfg.describe() if tta else None,
                         metrics=metrics, acceptance=acceptance_rows(metrics, tta) if rows else [],
                         clips=rows, failures=failures, unlabelled=len(clips) - len(labelled))
        if res.unlabelled:
            res.notes.append(f"{res.unlabelled} clip(s) without a label from their folder were skipped")
        if not tta:
            res.notes.append("TTA off (--no-tta): the accuracy is single-view, not the seed's TTA accuracy")
        res.calibrated = pred.calibrated
    if res.metrics:
        from vd.score.checkpoints import production_decision

        res.decision = production_decision(res.metrics["accuracy"], tta=res.tta is not None)
    if target_fpr is not None or target_recall is not None:
        _operating_point(res, target_fpr, target_recall, save_threshold)
    res.seconds = time.perf_counter() - start
    return res


def check_target(target_fpr, target_recall, threshold, save_threshold) -> None:
    """Usage checks for ``--target-fpr`` / ``--target-recall`` / ``--save-threshold``."""
    if target_fpr is not None and target_recall is not None:
        raise UserError("--target-fpr and --target-recall are exclusive: give one operating target")
    target = target_fpr if target_fpr is not None else target_recall
    if target is None:
        if save_threshold:
            raise UserError("--save-threshold needs --target-fpr or --target-recall")
        return
    name = "--target-fpr" if target_fpr is not None else "--target-recall"
    if not 0.0 <= float(target) <= 1.0:
        raise UserError(f"{name} is a fraction between 0 and 1 (0.05 = 5%), not {target:g}")
    if threshold is not None:
        raise UserError(f"--threshold and {name} are exclusive: the target chooses the threshold")


def _operating_point(res: EvalResult, target_fpr, target_recall, save: bool) -> None:
    from vd.model.metrics import threshold_for

    y = np.asarray([c["true_label"] for c in res.clips], int)
    p = np.asarray([c["violent_probability"] for c in res.clips], np.float64)
    try:
        op = threshold_for(y, p, target_fpr=target_fpr, target_recall=target_recall)
    except ValueError as e:
        raise UserError(f"cannot choose a threshold on {res.input}: {e}") from None
    m = _metrics(y, p, op["threshold"])
    op.update(accuracy=m["accuracy"], violent_acc=m["violent_acc"],
              nonviolent_acc=m["nonviolent_acc"], gap=m["gap"], confusion=m["confusion"],
              calibrated=res.calibrated, tta=res.tta is not None)
    op["met"] = bool(op["fpr"] <= target_fpr + 1e-12 if target_fpr is not None
                     else op["recall"] >= target_recall - 1e-12)
    res.operating_point = op
    if any("store the model was trained on" in n for n in res.notes):
        res.notes.append("the operating point was chosen on rows that include training clips: "
                         "expect a higher false-positive rate on new video")
    if save:
        from vd.model.runfolder import set_default_threshold

        what = (f"--target-fpr {target_fpr:g}" if target_fpr is not None
                else f"--target-recall {target_recall:g}")
        how = "with TTA" if res.tta is not None else "no TTA"
        source = f"vd evaluate {what} on {res.input} ({len(y)} clips, {how})"
        cfg = set_default_threshold(res.model, op["threshold"], source)
        res.saved_threshold = {k: cfg.get(k) for k in ("threshold", "threshold_source",
                                                       "threshold_temperature", "threshold_set")}


def _evaluate_store(path: Path, model, threshold, runs_root, split) -> EvalResult:
    from vd.data.store import open_store
    from vd.model.scoring import load_run
    from vd.score.predict import check_extractor, resolve_model

    from vd import runtime

    runtime.load_keras()
    run = load_run(resolve_model(model, runs_root))
    thr = float(run.threshold if threshold is None else threshold)
    if not 0.0 < thr < 1.0:
        raise UserError(f"--threshold must be between 0 and 1, not {thr:g}")
    with open_store(path) as st:
        check_extractor(run.extractor or {}, st.extractor(), f"the model {run.path}")
        keep = (st.variant == 0) & np.isin(st.label, (0, 1))
        if split is not None:
            keep &= st.split == split
        rows = np.flatnonzero(keep)
        base = (st.variant == 0) & (True if split is None else st.split == split)
        unlabelled = int((base & ~np.isin(st.label, (0, 1))).sum())
        if not len(rows):
            where = f" in split {split!r}" if split is not None else ""
            raise UserError(f"{path} has no labelled variant-0 rows{where}")
        probs = np.concatenate([run.violent_probability(st.read_features(rows[a:a + 512]))
                                for a in range(0, len(rows), 512)])
        y = st.label[rows].astype(int)
        videos = st.video[rows]
    metrics = _metrics(y, probs, thr)
    clips = [{"video": str(v), "true_label": int(t), "violent_probability": float(p),
              "label": int(p >= thr), "correct": int((p >= thr) == t)}
             for v, t, p in zip(videos, y, probs)]
    res = EvalResult(source="store", input=str(path), model=run.path, threshold=thr, tta=None,
                     metrics=metrics, acceptance=acceptance_rows(metrics, False), clips=clips,
                     unlabelled=unlabelled,
                     calibrated=getattr(run, "calibration", None) is not None)
    res.notes.append("feature store: variant-0 rows as stored, no TTA")
    if split is None and str((run.config or {}).get("store", "")) == str(path.resolve()):
        res.notes.append("this is the store the model was trained on: these rows include its "
                         "training clips; held-out videos (or --split on a store with a stored "
                         "val/test split) give an honest number")
    return res


# --------------------------------------------------------------------------- the report folder


def write_report(res: EvalResult, out_dir) -> list[Path]:
    """``metrics.json``, ``clips.csv``, ``confusion.png``, ``roc.png`` in ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--report {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json", out / "clips.csv"]
    written[0].write_text(dumps(res.to_dict(), indent=2) + "\n")
    cols = sorted({k for r in res.clips for k in r}, key=_column_order)
    with open(written[1], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in res.clips:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    if res.clips:
        written += _plots(res, out)
    return written


_FIRST = ("video", "true_label", "violent_probability", "label", "correct", "spread")


def _column_order(k: str):
    return (_FIRST.index(k), "") if k in _FIRST else (len(_FIRST), k)


def roc_curve(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    y = np.asarray(y_true, int)
    p = np.asarray(y_prob, np.float64)
    thresholds = np.r_[np.inf, np.unique(p)[::-1]]
    pos, neg = max(1, int((y == 1).sum())), max(1, int((y == 0).sum()))
    tpr = np.array([((p >= t) & (y == 1)).sum() / pos for t in thresholds])
    fpr = np.array([((p >= t) & (y == 0)).sum() / neg for t in thresholds])
    return fpr, tpr


def _plots(res: EvalResult, out: Path) -> list[Path]:
    from vd.runtime import load_pyplot

    plt = load_pyplot("--report plots")
    paths = [out / "confusion.png", out / "roc.png"]
    cm = np.asarray(res.metrics["confusion"])
    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=100)
    try:
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], ["non-violent", "violent"])
        ax.set_yticks([0, 1], ["non-violent", "violent"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"confusion (threshold {res.threshold:g})", fontsize=9)
        fig.tight_layout()
        fig.savefig(paths[0])
    finally:
        plt.close(fig)
    y = [c["true_label"] for c in res.clips]
    p = [c["violent_probability"] for c in res.clips]
    fpr, tpr = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    try:
        ax.plot(fpr, tpr, color="tab:red", label=f"AUC {res.metrics['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (violent)")
        ax.set_title("ROC, violent = positive", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(paths[1])
    finally:
        plt.close(fig)
    return paths
