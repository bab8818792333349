"""``vd compare``: train several presets on one split and tabulate seed table 8.1 on your data.

Every preset gets the same seed, so the same clips land in training and validation (the clip
assignment depends only on labels, seed and val fraction; presets differ only in how many
augmented variants per clip they train on). The table (overall, violent, non-violent accuracy,
gap, balanced accuracy, parameters, epochs, wall time; validation numbers of each run's best
model) is returned and written as ``compare.csv`` and ``compare.md`` in the output folder.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from vd.model.presets import get_preset
from vd.model.train import TrainResult, train

COLUMNS = ("preset", "overall", "violent", "nonviolent", "gap", "balanced", "params",
           "epochs", "best_epoch", "wall_s")


def compare(store_path, presets: list[str], *, epochs: int | None = None, batch_size=None,
            val_fraction: float = 0.2, seed: int = 0, out=None, runs_root="runs",
            overrides=(), stream=None, log=print) -> tuple[list[dict], Path]:
    """Train each preset; returns (table rows, output folder)."""
    for name in presets:
        get_preset(name)  # fail on a typo before hours of training
    out = Path(out) if out else Path(runs_root) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in presets:
        log(f"== {name}")
        r: TrainResult = train(store_path, preset=name, epochs=epochs, batch_size=batch_size,
                               val_fraction=val_fraction, seed=seed, out=out / name,
                               overrides=overrides, stream=stream, tensorboard=False, log=log)
        rows.append({
            "preset": name, "overall": r.best["accuracy"], "violent": r.best["violent_acc"],
            "nonviolent": r.best["nonviolent_acc"], "gap": r.best["gap"],
            "balanced": r.best["balanced_acc"], "params": r.params, "epochs": r.epochs_run,
            "best_epoch": r.best_epoch, "wall_s": round(r.wall_s, 1),
        })
    write_tables(rows, out)
    return rows, out


def write_tables(rows: list[dict], out: Path) -> None:
    with open(out / "compare.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (out / "compare.md").write_text(format_markdown(rows) + "\n")


def format_markdown(rows: list[dict]) -> str:
    head = ("| Configuration | Overall | Violent | Non-violent | Gap | Balanced | Params | "
            "Epochs (best) | Wall time |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['overall']:.1%} | {r['violent']:.1%} | {r['nonviolent']:.1%} | "
            f"{r['gap']:.1%} | {r['balanced']:.1%} | {r['params']:,} | {r['epochs']} "
            f"({r['best_epoch']}) | {r['wall_s']:.0f} s |")
    return "\n".join(lines)
