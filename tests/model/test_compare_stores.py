"""``vd compare A.h5 B.h5``: the same presets trained on stores of the same clips made with
different backbones, on the same split; refusals when the stores do not hold the same clips."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from clirun import run_cli
from model_stores import make_store
from vd.data.splits import split_store
from vd.data.store import open_store

# The hybrid made small for the end-to-end test, whose subject is the stores and their split,
# not the model: without recurrent dropout TensorFlow traces the LSTMs ~3x faster.
SMALL = ["lstm_units=16,16,16", "recurrent_dropout=0,0,0", "dense_units=16,16"]


def _refusal(tmp_path, a, b):
    status, out, err = run_cli(["compare", str(a), str(b), "--presets", "hybrid", "--epochs", "1",
                                "--out", str(tmp_path / "cmp")])
    lines = err.strip().splitlines()
    assert status != 0 and len(lines) == 1, err
    assert not (tmp_path / "cmp").exists()  # refused before any run folder was made
    return lines[0]


def test_stores_with_other_clips_are_refused(tmp_path):
    a = make_store(tmp_path / "a.h5", clips=12, dim=16)
    b = make_store(tmp_path / "b.h5", clips=10, dim=24)   # clips 0010 and 0011 missing
    line = _refusal(tmp_path, a, b)
    assert "do not hold the same clips" in line
    assert "2 only in a.h5" in line and "0 only in b.h5" in line and "0010.mp4" in line


def test_stores_whose_split_columns_disagree_are_refused(tmp_path):
    a = make_store(tmp_path / "a.h5", clips=12, dim=16, split=["train"] * 8 + ["val"] * 4)
    b = make_store(tmp_path / "b.h5", clips=12, dim=24, split=["train"] * 9 + ["val"] * 3)
    line = _refusal(tmp_path, a, b)
    assert "disagree on the split column of clip" in line and "0008.mp4" in line
    assert "(val vs train)" in line


def test_stores_whose_labels_disagree_are_refused(tmp_path):
    labels = [c % 2 for c in range(12)]
    a = make_store(tmp_path / "a.h5", clips=12, dim=16, labels=labels)
    # the same clip names, one label flipped in b's label column
    b = make_store(tmp_path / "b.h5", clips=12, dim=24, labels=labels)
    import h5py

    with h5py.File(b, "r+") as f:
        lab = f["label"][()]
        lab[3] = 1 - lab[3]
        f["label"][...] = lab
    line = _refusal(tmp_path, a, b)
    assert "disagree on the label of clip" in line


def _extract(folder, store, backbone):
    status, _, err = run_cli(["extract", str(folder), str(store), "--backbone", backbone,
                              "--weights", "random", "--batch-clips", "2", "--quiet"])
    assert status == 0, err
    return store


@pytest.mark.slow
def test_compare_two_backbones_same_clips_same_split(synthetic_set, tmp_path):
    """Two stores of the same 8 synthetic clips (mobilenet_v3_small 576-d, mobilenet_v3_large
    960-d, random weights): one row per store with its backbone and D, the (small) hybrid's
    parameter count for that D, and the same validation clips in both runs."""
    a = _extract(synthetic_set, tmp_path / "mnv3s.h5", "mobilenet_v3_small")
    b = _extract(synthetic_set, tmp_path / "mnv3l.h5", "mobilenet_v3_large")
    out = tmp_path / "cmp"
    status, text, err = run_cli(["compare", str(a), str(b), "--presets", "hybrid",
                                 *(a for kv in SMALL for a in ("--set", kv)),
                                 "--epochs", "2", "--out", str(out), "--val-fraction", "0.25"])
    assert status == 0, err
    table = text[text.index("| Store | Backbone | D | Configuration"):]
    print("\n" + table)
    assert "| mnv3s | mobilenet_v3_small avg_pool | 576 | hybrid |" in table
    assert "| mnv3l | mobilenet_v3_large avg_pool | 960 | hybrid |" in table

    with open(out / "compare.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["store"], r["backbone"], r["dim"], r["preset"]) for r in rows] == [
        ("mnv3s", "mobilenet_v3_small avg_pool", "576", "hybrid"),
        ("mnv3l", "mobilenet_v3_large avg_pool", "960", "hybrid")]
    for r in rows:
        for k in ("balanced", "violent", "nonviolent"):
            assert 0.0 <= float(r[k]) <= 1.0
        assert int(r["epochs"]) == 2 and float(r["wall_s"]) > 0

    # parameter counts are the (small) hybrid's for each D (the model differs only in its
    # input width)
    from vd.model.builder import build_model
    from vd.model.presets import apply_overrides, get_preset

    small, _ = apply_overrides(get_preset("hybrid"), SMALL)
    for r in rows:
        model = build_model(small, 20, int(r["dim"]))
        assert int(r["params"]) == model.count_params()
    assert int(rows[1]["params"]) > int(rows[0]["params"])

    # the same validation clips: recomputed from each store, and recorded by compare
    val = []
    for store in (a, b):
        with open_store(store) as st:
            sp = split_store(st, val_fraction=0.25, seed=0)
            val.append(sorted(str(v) for v in st.video[sp.val]))
    assert val[0] == val[1] and len(val[0]) == 2
    assert (out / "val_clips.txt").read_text().split() == val[0]
    splits = [json.loads((out / s / "hybrid" / "config.json").read_text())["split"]
              for s in ("mnv3s", "mnv3l")]
    assert splits[0]["val"] == splits[1]["val"] == {"rows": 2, "violent": 1, "nonviolent": 1}
    dims = [json.loads((out / s / "hybrid" / "config.json").read_text())["dim"]
            for s in ("mnv3s", "mnv3l")]
    assert dims == [576, 960]
    assert np.isfinite([float(r["balanced"]) for r in rows]).all()
