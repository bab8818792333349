"""``vd compare``: train several presets on one split and tabulate seed table 8.1 on your data.

Every run gets the same seed, so the same clips land in training and validation (the clip
assignment depends only on labels, seed and val fraction; runs differ only in how many
augmented variants per clip they train on). The table (overall, violent, non-violent accuracy,
gap, balanced accuracy, parameters, epochs, wall time; validation numbers of each run's best
model) is returned and written as ``compare.csv`` and ``compare.md`` in the output folder.

``vary="KEY=V1,V2"`` trains each preset once per value of one preset key (``aug`` — alias
``augment`` — first of all: does the 3x augmentation earn its cost on your data?); rows are
labelled ``hybrid aug=2``. Values of a tuple key are separated by ``;``
(``lstm_units=64,64;32,32``).
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

from vd.errors import UserError
from vd.model.presets import apply_overrides, canonical_key, get_preset
from vd.model.train import TrainResult, train

COLUMNS = ("preset", "overall", "violent", "nonviolent", "gap", "balanced", "params",
           "epochs", "best_epoch", "wall_s")


def parse_vary(text: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2`` → (preset field name, [V1, V2]); ``;`` separates values when present."""
    if "=" not in text:
        raise UserError(f"--vary expects KEY=V1,V2, got {text!r}")
    key, values = text.split("=", 1)
    key = canonical_key(key)
    sep = ";" if ";" in values else ","
    vals = [v.strip() for v in values.split(sep) if v.strip()]
    if not key or not vals:
        raise UserError(f"--vary expects KEY=V1,V2, got {text!r}")
    if len(set(vals)) != len(vals):
        raise UserError(f"--vary {key}: a value is given twice ({', '.join(vals)})")
    return key, vals


def plan_runs(presets: list[str], *, vary: str | None = None, overrides=(), epochs=None,
              batch_size=None) -> list[dict]:
    """One {"label", "preset", "overrides", "folder"} per run, every one checked (preset names,
    keys, values) so a typo fails before hours of training."""
    overrides = list(overrides)
    if not vary:
        for name in presets:
            apply_overrides(get_preset(name), overrides)
        return [{"label": n, "preset": n, "overrides": overrides, "folder": n} for n in presets]
    key, values = parse_vary(vary)
    fixed = {canonical_key(o.split("=", 1)[0]) for o in overrides if "=" in o}
    if key in fixed:
        raise UserError(f"--vary {key} and --set {key} both set {key}; keep one")
    if (key == "epochs" and epochs is not None) or (key == "batch_size" and batch_size is not None):
        raise UserError(f"--vary {key} and --{key.replace('_', '-')} both set {key}; keep one")
    plan = []
    for name in presets:
        for v in values:
            extra = overrides + [f"{key}={v}"]
            apply_overrides(get_preset(name), extra)
            safe = re.sub(r"[^A-Za-z0-9.]+", "_", v)
            plan.append({"label": f"{name} {key}={v}", "preset": name, "overrides": extra,
                         "folder": f"{name}-{key}-{safe}"})
    return plan


def compare(store_path, presets: list[str], *, epochs: int | None = None, batch_size=None,
            val_fraction: float = 0.2, seed: int = 0, out=None, runs_root="runs",
            overrides=(), vary: str | None = None, stream=None,
            log=print) -> tuple[list[dict], Path]:
    """Train each preset (once per ``vary`` value when given); returns (table rows, folder).

    Each run lands in ``out/FOLDER`` (the preset name, or ``PRESET-KEY-VALUE`` with ``vary``).
    """
    plan = plan_runs(presets, vary=vary, overrides=overrides, epochs=epochs,
                     batch_size=batch_size)
    out = Path(out) if out else Path(runs_root) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in plan:
        log(f"== {run['label']}")
        r: TrainResult = train(store_path, preset=run["preset"], epochs=epochs,
                               batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                               out=out / run["folder"], overrides=run["overrides"],
                               stream=stream, tensorboard=False, log=log)
        rows.append({
            "preset": run["label"], "overall": r.best["accuracy"], "violent": r.best["violent_acc"],
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
