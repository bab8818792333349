"""``vd evaluate``: trained models measured on labelled data, with the seed's acceptance gates.

One evaluator for one model or many: :func:`evaluate_path` scores a run's ``model.keras``,
:func:`evaluate_checkpoints` the K best saved models of a run (``--checkpoints K``, which
models and in which order: :mod:`vd.score.checkpoints`). Both go through the same two passes,
each written once here:

- :func:`video_pass`, a folder of labelled raw videos (labels from folder names, as stage one
  reads them): every clip is decoded and sampled once and its TTA views go through the backbone once
  (:meth:`vd.score.predict.Predictor.iter_features`); every model then scores those same
  features, chunk by chunk (memory holds :data:`CHUNK_CLIPS` clips of features, not the set).
  A clip's score is the mean of its views' probabilities, exactly as ``vd predict``; the
  headline number is the seed's "TTA accuracy" (training strategy phase 3, validation gates);
- :func:`store_pass`, a feature store (``.h5``/``.hdf5`` or any file with the HDF5 signature):
  the variant-0 rows (the original frames; augmented variants are training material) are read
  once and scored as stored, no TTA. Fast, and the same numbers training reported when the
  rows are the validation clips.

One model gives accuracy, violent / non-violent accuracy and their gap, precision / recall /
F1 of the violent class, ROC-AUC, the confusion matrix (rows = truth, columns = prediction;
index 1 = violent), the seed's acceptance targets as pass/fail rows and its production decision
(:mod:`vd.model.acceptance`); its probabilities are calibrated when the run has calibration.
Many models give one row each (each model's raw softmax: calibration and a saved threshold
belong to model.keras alone) and the decision for the best row. Clips labelled -1 (unknown)
are counted and left out of the metrics.

``--target-fpr`` / ``--target-recall``: the operating point that meets the target on these
clips (:func:`vd.model.metrics.threshold_for`, on the same probabilities ``vd predict``
reports); ``--save-threshold`` stores it as the run's default
(:func:`vd.model.runfolder.set_default_threshold`). ``--promote``:
:func:`vd.model.promote.promote_checkpoint`.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.jsonout import dumps
from vd.model.acceptance import evaluation_rows, production_decision
from vd.model.metrics import summarize, threshold_for
from vd.model.runconfig import DEFAULT_THRESHOLD
from vd.score.checkpoints import CheckpointsResult, best_row, parse_k, select_candidates

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CHUNK_CLIPS = 32            # clips whose features are held at once (× views × T × D float16)
acceptance_rows = evaluation_rows   # the name this module has always exported


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
    decision: dict | None = None          # the seed's implementation plan production decision on this accuracy
    operating_point: dict | None = None   # --target-fpr / --target-recall
    saved_threshold: dict | None = None   # --save-threshold: what config.json now says
    calibrated: bool = False              # probabilities through the run's calibration
    on_training_store: bool = False       # the rows include the clips the model trained on

    @property
    def exit_status(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> dict:
        return {"source": self.source, "input": self.input, "model": str(self.model),
                "threshold": self.threshold, "calibrated": self.calibrated, "tta": self.tta,
                "metrics": self.metrics, "acceptance": self.acceptance,
                "decision": self.decision, "operating_point": self.operating_point,
                "saved_threshold": self.saved_threshold, "unlabelled": self.unlabelled,
                "on_training_store": self.on_training_store,
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


# --------------------------------------------------------------------------- the models


class Scorer:
    """One model, loaded once; its per-view probabilities gathered chunk by chunk.

    ``run``: a :class:`vd.model.loaded_run.Run`. ``calibrated``: through the run's temperature
    (model.keras alone) or the raw softmax (every checkpoint). ``seconds``: load + scoring.
    """

    def __init__(self, run, *, calibrated: bool, candidate=None, seconds: float = 0.0):
        self.run = run
        self.calibrated = bool(calibrated)
        self.candidate = candidate          # vd.score.checkpoints.Candidate, or None
        self.seconds = float(seconds)
        self._views: list[np.ndarray] = []

    @classmethod
    def load(cls, run_dir: Path, candidate) -> "Scorer":
        from vd.model.loaded_run import load_run

        t = time.perf_counter()
        run = load_run(run_dir, which=candidate.name)
        return cls(run, calibrated=False, candidate=candidate, seconds=time.perf_counter() - t)

    def score(self, feats: np.ndarray) -> None:
        """(N, V, T, D) features → (N, V) violent probabilities appended."""
        t = time.perf_counter()
        n, v = feats.shape[:2]
        p = self.run.violent_probability(feats.reshape((n * v,) + feats.shape[2:]),
                                         calibrated=self.calibrated)
        self._views.append(np.asarray(p, np.float64).reshape(n, v))
        self.seconds += time.perf_counter() - t

    def view_probs(self) -> np.ndarray:
        """(N, V) float64 per-view probabilities, clips in pass order."""
        return np.concatenate(self._views) if self._views else np.zeros((0, 1))

    def clip_probs(self) -> np.ndarray:
        """(N,) clip scores: the mean of the views (:func:`vd.extract.tta.combine`)."""
        return self.view_probs().mean(axis=1)


def load_scorers(run_dir: Path, chosen, notes: list) -> list[Scorer]:
    """Load every chosen model; one that does not load (damaged, refused under safe_mode) is
    skipped with a note, the others are evaluated."""
    scorers = []
    for c in chosen:
        try:
            scorers.append(Scorer.load(run_dir, c))
        except UserError as e:
            notes.append(f"skipped {c.label()}: {e.message}")
    if not scorers:
        raise UserError(f"none of the chosen models of {run_dir} loads ({notes[-1]})")
    return scorers


# --------------------------------------------------------------------------- the two passes


@dataclass
class Scored:
    """What one pass gives: labels and names of the scored clips (in the order every scorer
    holds them), the clips that failed, and the shared cost."""

    source: str                        # "videos" or "store"
    y: np.ndarray                      # (N,) int labels 0/1
    videos: list[str]
    failures: list = field(default_factory=list)
    unlabelled: int = 0
    frames: int = 0                    # frames through the backbone (all views), once for all models
    shared_seconds: float = 0.0        # decode + backbone, or reading the store
    tta: dict | None = None
    views: tuple = ("original",)
    on_training_store: bool = False
    notes: list[str] = field(default_factory=list)


def store_pass(path: Path, scorers: list[Scorer], split: str | None) -> Scored:
    """Read the labelled variant-0 rows of a store once (optionally of one split) and let every
    scorer score them. The first scorer's run decides the extractor check."""
    from vd.data.store import open_store
    from vd.score.predict import check_extractor

    run = scorers[0].run
    read_s = 0.0
    with open_store(path) as st:
        check_extractor(run.extractor or {}, st.extractor(), f"the model {run.path}")
        base = st.variant == 0
        if split is not None:
            base &= st.split == split
        rows = np.flatnonzero(base & np.isin(st.label, (0, 1)))
        unlabelled = int((base & ~np.isin(st.label, (0, 1))).sum())
        if not len(rows):
            where = f" in split {split!r}" if split is not None else ""
            raise UserError(f"{path} has no labelled variant-0 rows{where}")
        for a in range(0, len(rows), 512):
            t = time.perf_counter()
            x = st.read_features(rows[a:a + 512])[:, None]       # (n, 1, T, D), read once
            read_s += time.perf_counter() - t
            for s in scorers:
                s.score(x)
        y = st.label[rows].astype(int)
        videos = [str(v) for v in st.video[rows]]
    trained = split is None and str((run.config or {}).get("store", "")) == str(Path(path).resolve())
    notes = ["feature store: variant-0 rows as stored, no TTA"]
    if trained:
        notes.append("this is the store the model was trained on: these rows include its "
                     "training clips; held-out videos (or --split on a store with a stored "
                     "val/test split) give an honest number")
    return Scored(source="store", y=y, videos=videos, unlabelled=unlabelled,
                  shared_seconds=read_s, on_training_store=trained, notes=notes)


def labelled_clips(input_path: Path) -> tuple[list, int]:
    """The labelled clips under ``input_path`` and how many were left out for having no label."""
    from vd.score.predict import find_clips

    clips = find_clips([input_path])
    labelled = [c for c in clips if c.label in (0, 1)]
    if not labelled:
        raise UserError(f"no labelled videos under {input_path} (labels come from folder "
                        f"names such as Fight/NonFight or Violence/NonViolence)")
    return labelled, len(clips) - len(labelled)


def video_pass(input_path: Path, predictor, scorers: list[Scorer], progress=None) -> Scored:
    """Decode every labelled clip under ``input_path`` once, pass its TTA views through the backbone
    once (``predictor``: a :class:`vd.score.predict.Predictor`, whose extractor check has run)
    and let every scorer score those features, :data:`CHUNK_CLIPS` clips at a time.

    ``progress(done, total, frames, seconds, failed)`` after each clip. A clip that fails to
    decode or featurise is a :class:`vd.data.store.Failure` in the result; the others go on.
    """
    labelled, unlabelled = labelled_clips(input_path)
    cfg = predictor.tta
    y, videos, buf, failures, frames, shared = [], [], [], [], 0, 0.0
    t0 = time.perf_counter()

    def flush():
        if buf:
            x = np.stack(buf)                                   # (n, V, T, D) float16
            for s in scorers:
                s.score(x)
            buf.clear()

    t = time.perf_counter()
    for done, item in enumerate(predictor.iter_features(labelled), 1):
        if isinstance(item, tuple):
            decoded, feats = item
            y.append(int(decoded.clip.label))
            videos.append(decoded.clip.video)
            buf.append(feats)
            frames += feats.shape[0] * feats.shape[1]
        else:
            failures.append(item)
        shared += time.perf_counter() - t
        if len(buf) >= CHUNK_CLIPS:
            flush()
        if progress:
            progress(done, len(labelled), frames, time.perf_counter() - t0, len(failures))
        t = time.perf_counter()
    flush()
    notes = []
    if unlabelled:
        notes.append(f"{unlabelled} clip(s) without a label from their folder were skipped")
    return Scored(source="videos", y=np.asarray(y, int), videos=videos, failures=failures,
                  unlabelled=unlabelled, frames=frames, shared_seconds=shared,
                  tta=cfg.describe() if cfg.enabled else None, views=tuple(cfg.views),
                  notes=notes)


def _inputs(input_path, weights, split) -> tuple[Path, bool]:
    """Usage checks shared by both entry points; (path, whether it is a feature store)."""
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"input not found: {input_path}")
    store = is_store(input_path)
    if store and weights is not None:
        raise UserError("--weights applies to raw videos; a store's features are already computed")
    if not store and split is not None:
        raise UserError("--split applies to a feature store; for videos, point at the folder")
    return input_path, store


def _check_threshold(thr: float) -> float:
    if not 0.0 < thr < 1.0:
        raise UserError(f"--threshold must be between 0 and 1, not {thr:g}")
    return thr


def _predictor(run_dir, tta, angle, weights, threshold=None, runs_root="runs"):
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor

    cfg = TTAConfig(enabled=tta, angle=10.0 if angle is None else float(angle))
    return Predictor(run_dir, weights=weights, tta=cfg, threshold=threshold, runs_root=runs_root)


# --------------------------------------------------------------------------- one model


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
    from vd import runtime
    from vd.model.runfolder import resolve_run

    check_target(target_fpr, target_recall, threshold, save_threshold)
    if save_threshold and model is not None and Path(model).is_file():
        raise UserError("--save-threshold writes into a run folder; a .vdm bundle is read-only "
                        "(save the threshold in the run, then `vd export` it again)")
    start = time.perf_counter()
    input_path, store = _inputs(input_path, weights, split)
    if store:
        from vd.model.loaded_run import load_run

        folder = resolve_run(model, runs_root)   # checked before TensorFlow is imported
        thr, _ = folder.threshold_in_force(threshold)
        runtime.load_keras()
        run = load_run(folder)
        scorer = Scorer(run, calibrated=True)
        scored = store_pass(input_path, [scorer], split)
    else:
        pred = _predictor(model, tta, angle, weights, threshold, runs_root)
        run, thr = pred.run, pred.threshold
        scorer = Scorer(run, calibrated=True)
        scored = video_pass(input_path, pred, [scorer], progress)
    views, probs = scorer.view_probs(), scorer.clip_probs()
    clips = []
    for i, (v, t, p) in enumerate(zip(scored.videos, scored.y, probs)):
        row = {"video": v, "true_label": int(t), "violent_probability": float(p),
               "label": int(p >= thr), "correct": int((p >= thr) == t)}
        if scored.source == "videos":
            row["spread"] = float(views[i].max() - views[i].min())
            row.update({f"p_{name}": float(x) for name, x in zip(scored.views, views[i])})
        clips.append(row)
    metrics = summarize(scored.y, probs, thr) if clips else {}
    used_tta = scored.tta is not None
    if clips and used_tta:  # each view alone, to see what TTA adds
        metrics["per_view_accuracy"] = {
            name: float(np.mean((views[:, j] >= thr) == scored.y))
            for j, name in enumerate(scored.views)}
    res = EvalResult(source=scored.source, input=str(input_path), model=run.path, threshold=thr,
                     tta=scored.tta, metrics=metrics,
                     acceptance=evaluation_rows(metrics, used_tta) if clips else [],
                     clips=clips, failures=scored.failures, unlabelled=scored.unlabelled,
                     notes=list(scored.notes), calibrated=run.calibration is not None,
                     on_training_store=scored.on_training_store)
    if scored.source == "videos" and not tta:
        res.notes.append("TTA off (--no-tta): the accuracy is single-view, not the seed's TTA accuracy")
    if res.metrics:
        res.decision = production_decision(res.metrics["accuracy"], tta=used_tta)
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


# Fewer clips than this in either class: an operating point's rates are flagged as small-sample.
SMALL_SAMPLE_CLIPS = 30


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (95 % by default) for a proportion of ``k`` successes in ``n``.

    (0.0, 1.0) when n is 0. Unlike k/n ± z·se it stays inside [0, 1] and is honest at k = n:
    19/19 gives (0.83, 1.0), not a certainty.
    """
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo, hi = max(0.0, mid - half), min(1.0, mid + half)
    return (0.0 if k == 0 else lo), (1.0 if k == n else hi)


def operating_bounds(op: dict) -> dict:
    """95 % Wilson intervals [low, high] of an operating point's precision, recall and
    false-positive rate, from its counts (what the labelled clips can support)."""
    tp, fp = int(op["tp"]), int(op["fp"])
    return {"precision": list(wilson_interval(tp, tp + fp)),
            "recall": list(wilson_interval(tp, int(op["n_violent"]))),
            "fpr": list(wilson_interval(fp, int(op["n_nonviolent"])))}


def _operating_point(res: EvalResult, target_fpr, target_recall, save: bool) -> None:
    y = np.asarray([c["true_label"] for c in res.clips], int)
    p = np.asarray([c["violent_probability"] for c in res.clips], np.float64)
    try:
        op = threshold_for(y, p, target_fpr=target_fpr, target_recall=target_recall)
    except ValueError as e:
        raise UserError(f"cannot choose a threshold on {res.input}: {e}") from None
    m = summarize(y, p, op["threshold"])
    op.update(accuracy=m["accuracy"], violent_acc=m["violent_acc"],
              nonviolent_acc=m["nonviolent_acc"], gap=m["gap"], confusion=m["confusion"],
              calibrated=res.calibrated, tta=res.tta is not None)
    op["met"] = bool(op["fpr"] <= target_fpr + 1e-12 if target_fpr is not None
                     else op["recall"] >= target_recall - 1e-12)
    op["bounds95"] = operating_bounds(op)
    op["small_sample"] = min(op["n_violent"], op["n_nonviolent"]) < SMALL_SAMPLE_CLIPS
    res.operating_point = op
    if op["small_sample"]:
        b = op["bounds95"]
        res.notes.append(
            f"the operating point was chosen on {op['n_violent']} violent / {op['n_nonviolent']} "
            f"non-violent clips (< {SMALL_SAMPLE_CLIPS} of a class): with 95 % confidence only "
            f"precision >= {b['precision'][0]:.2f}, recall >= {b['recall'][0]:.2f} and "
            f"false-positive rate <= {b['fpr'][1]:.2f} are supported (Wilson intervals)")
    if res.on_training_store:
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


# --------------------------------------------------------------------------- many models


def evaluate_checkpoints(input_path, model=None, k="5", *, tta: bool = True,
                         angle: float | None = None, threshold: float | None = None,
                         weights: str | None = None, runs_root="runs", split: str | None = None,
                         promote: bool = False, progress=None) -> CheckpointsResult:
    """Score the ``k`` best saved models of run ``model`` on ``input_path`` (videos or a store)
    in one pass (:func:`video_pass` / :func:`store_pass`), one row each.

    Raises :class:`UserError` for usage problems; clips that fail to decode are in
    ``result.failures``. With ``promote`` the best row becomes the run's model.keras
    (:func:`vd.model.promote.promote_checkpoint`).
    """
    from vd import runtime
    from vd.model.runfolder import resolve_run

    start = time.perf_counter()
    input_path, store = _inputs(input_path, weights, split)
    folder = resolve_run(model, runs_root)
    run_dir = folder.path
    chosen, notes = select_candidates(folder, parse_k(k))
    # each checkpoint's raw softmax: the default threshold, not the run's (module docstring)
    thr = _check_threshold(DEFAULT_THRESHOLD if threshold is None else float(threshold))
    runtime.load_keras()
    if store:
        scorers = load_scorers(run_dir, chosen, notes)
        scored = store_pass(input_path, scorers, split)
    else:
        pred = _predictor(run_dir, tta, angle, weights)   # extractor check, backbone settings
        scorers = load_scorers(run_dir, chosen, notes)
        scored = video_pass(input_path, pred, scorers, progress)
    rows = []
    for s in scorers:
        m = summarize(scored.y, s.clip_probs(), thr)
        c = s.candidate
        rows.append({"checkpoint": c.label(), "file": c.name, "files": c.files,
                     "epoch": c.epoch, "val_balanced_acc": c.val_balanced_acc,
                     "accuracy": m["accuracy"], "violent_acc": m["violent_acc"],
                     "nonviolent_acc": m["nonviolent_acc"], "gap": m["gap"],
                     "balanced_acc": m["balanced_acc"], "roc_auc": m["roc_auc"],
                     "confusion": m["confusion"], "seconds": s.seconds})
    out = CheckpointsResult(
        source=scored.source, input=str(input_path), run=run_dir, threshold=thr,
        tta=scored.tta, rows=rows, best=None, decision=None,
        shared_seconds=scored.shared_seconds, frames=scored.frames, n_clips=len(scored.y),
        failures=scored.failures, unlabelled=scored.unlabelled, notes=notes)
    if scored.source == "videos":
        out.notes += scored.notes
        if not tta:
            out.notes.append("TTA off (--no-tta): accuracies are single-view, not the seed's "
                             "TTA accuracy")
    if rows and len(scored.y):
        out.best = best_row(rows)
        out.decision = dict(production_decision(out.best["accuracy"], tta=scored.tta is not None),
                            checkpoint=out.best["checkpoint"], epoch=out.best["epoch"])
    out.notes.append("each checkpoint's raw softmax at threshold "
                     f"{thr:g} (calibration and a saved threshold belong to model.keras alone)")
    if scored.source == "store":
        out.notes += scored.notes
    if promote:
        from vd.model.promote import promote_checkpoint

        if out.best is None:
            raise UserError("--promote: nothing was scored, so no checkpoint can be chosen")
        out.promoted = promote_checkpoint(run_dir, out.best, source=f"vd evaluate "
                                          f"--checkpoints on {input_path}")
    out.seconds = time.perf_counter() - start
    return out


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
