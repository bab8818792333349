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

Several stores of the same clips (say one per backbone: ``vd extract --backbone ...``) train the
same runs on each, on the same split: :func:`check_same_clips` refuses stores whose clips, labels
or stored split columns differ, so every store splits its clips identically (the split is a
function of the clip table, seed and fraction only). Runs land in ``out/STORE/FOLDER`` and the
table gains the store, its backbone (and layer) and its feature dim D; the validation clips are
written to ``val_clips.txt``. One store keeps the one-store folders, table and files unchanged.
"""

from __future__ import annotations

import csv
import logging
import re
import time
from pathlib import Path

from vd.errors import UserError
from vd.model.presets import apply_overrides, canonical_key, get_preset
from vd.model.train import TrainResult, train

log = logging.getLogger("vd.model.compare")

COLUMNS = ("preset", "overall", "violent", "nonviolent", "gap", "balanced", "params",
           "epochs", "best_epoch", "wall_s")
STORE_COLUMNS = ("store", "backbone", "dim")   # leading columns when several stores are compared


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


def _clip_table(store) -> dict[str, tuple[int, str]]:
    """{clip (``video``): (label, stored split)} over a store's rows; a clip's first row speaks
    for it (the split rules already require a clip's rows to agree)."""
    table: dict[str, tuple[int, str]] = {}
    for video, label, side in zip(store.video, store.label, store.split):
        table.setdefault(str(video), (int(label), str(side)))
    return table


def _examples(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def check_same_clips(store_paths) -> list[dict]:
    """Refuse (one-line UserError) unless every store holds the same clips with the same labels
    and the same stored split; returns per store {"path", "label", "backbone", "dim", "clips"}.

    ``label`` names the store in the table and its run folder (the file stem, made unique).
    """
    from vd.data.store import open_store

    infos, first = [], None
    for path in store_paths:
        with open_store(path) as st:
            ex = st.extractor()
            table = _clip_table(st)
            dim = int(st.dim)
        backbone = ex.get("backbone") or "?"
        if ex.get("layer"):
            backbone = f"{backbone} {ex['layer']}"
        infos.append({"path": Path(path), "backbone": backbone, "dim": dim, "clips": table})
        if first is None:
            first = infos[0]
            continue
        a, b = first["path"].name, Path(path).name
        only_a = first["clips"].keys() - table.keys()
        only_b = table.keys() - first["clips"].keys()
        if only_a or only_b:
            raise UserError(f"stores {first['path']} and {path} do not hold the same clips: "
                            f"{len(only_a)} only in {a} ({_examples(only_a) or '-'}), "
                            f"{len(only_b)} only in {b} ({_examples(only_b) or '-'})")
        for clip in sorted(table):
            (la, sa), (lb, sb) = first["clips"][clip], table[clip]
            if la != lb:
                raise UserError(f"stores {first['path']} and {path} disagree on the label of "
                                f"clip {clip} ({la} vs {lb})")
            if sa != sb:
                raise UserError(f"stores {first['path']} and {path} disagree on the split column "
                                f"of clip {clip} ({sa or 'none'} vs {sb or 'none'}); "
                                f"re-extract with the same --labels or layout")
    seen: dict[str, int] = {}
    for info in infos:
        stem = info["path"].stem
        seen[stem] = seen.get(stem, 0) + 1
        info["label"] = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
    return infos


def _val_clips(store_path, val_fraction, seed) -> list[str]:
    """The validation clips ``vd train`` will use on this store (variant-0 rows of the split)."""
    from vd.data.splits import split_store
    from vd.data.store import open_store

    with open_store(store_path) as st:
        split = split_store(st, val_fraction=val_fraction, seed=seed)
        return sorted({str(v) for v in st.video[split.val]})


def compare(store_path, presets: list[str], *, epochs: int | None = None, batch_size=None,
            val_fraction: float = 0.2, seed: int = 0, out=None, runs_root="runs",
            overrides=(), vary: str | None = None, stream=None) -> tuple[list[dict], Path]:
    """Train each preset (once per ``vary`` value when given); returns (table rows, folder).

    ``store_path`` is one store or a list of stores of the same clips. Each run lands in
    ``out/FOLDER`` (the preset name, or ``PRESET-KEY-VALUE`` with ``vary``); with several stores
    in ``out/STORE/FOLDER``, and each row also carries ``store``, ``backbone`` and ``dim``.
    """
    paths = list(store_path) if isinstance(store_path, (list, tuple)) else [store_path]
    if not paths:
        raise UserError("vd compare needs at least one feature store")
    plan = plan_runs(presets, vary=vary, overrides=overrides, epochs=epochs,
                     batch_size=batch_size)
    multi = len(paths) > 1
    stores = check_same_clips(paths) if multi else [{"path": Path(paths[0])}]
    if multi:
        vals = [_val_clips(s["path"], val_fraction, seed) for s in stores]
        for s, v in zip(stores[1:], vals[1:]):
            if v != vals[0]:  # cannot happen with equal clip tables; guard the promise anyway
                raise UserError(f"{s['path']} splits into other validation clips than "
                                f"{stores[0]['path']}")
        log.info(f"{len(paths)} stores hold the same {len(stores[0]['clips'])} clips; "
                 f"{len(vals[0])} validation clips in each: "
                 + ", ".join(f"{s['label']} ({s['backbone']}, D={s['dim']})" for s in stores))
    out = Path(out) if out else Path(runs_root) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    if multi:
        (out / "val_clips.txt").write_text("".join(f"{c}\n" for c in vals[0]))
    rows = []
    for s in stores:
        base = out / s["label"] if multi else out
        for run in plan:
            log.info(f"== {s['label']}: {run['label']}" if multi else f"== {run['label']}")
            r: TrainResult = train(s["path"], preset=run["preset"], epochs=epochs,
                                   batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                                   out=base / run["folder"], overrides=run["overrides"],
                                   stream=stream, tensorboard=False)
            row = {"store": s["label"], "backbone": s["backbone"], "dim": s["dim"]} if multi else {}
            row.update({
                "preset": run["label"], "overall": r.best["accuracy"],
                "violent": r.best["violent_acc"], "nonviolent": r.best["nonviolent_acc"],
                "gap": r.best["gap"], "balanced": r.best["balanced_acc"], "params": r.params,
                "epochs": r.epochs_run, "best_epoch": r.best_epoch, "wall_s": round(r.wall_s, 1),
            })
            rows.append(row)
    write_tables(rows, out)
    return rows, out


def write_tables(rows: list[dict], out: Path) -> None:
    multi = bool(rows) and "store" in rows[0]
    with open(out / "compare.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=(STORE_COLUMNS + COLUMNS) if multi else COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (out / "compare.md").write_text(format_markdown(rows) + "\n")


def format_markdown(rows: list[dict]) -> str:
    multi = bool(rows) and "store" in rows[0]
    head = ("| Configuration | Overall | Violent | Non-violent | Gap | Balanced | Params | "
            "Epochs (best) | Wall time |")
    if multi:
        head = "| Store | Backbone | D " + head
    lines = [head, "|" + "---|" * (12 if multi else 9)]
    for r in rows:
        lead = f"| {r['store']} | {r['backbone']} | {r['dim']} " if multi else ""
        lines.append(
            f"{lead}| {r['preset']} | {r['overall']:.1%} | {r['violent']:.1%} | "
            f"{r['nonviolent']:.1%} | {r['gap']:.1%} | {r['balanced']:.1%} | {r['params']:,} | "
            f"{r['epochs']} ({r['best_epoch']}) | {r['wall_s']:.0f} s |")
    return "\n".join(lines)
