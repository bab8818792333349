"""`vd evaluate --checkpoints K [--promote]`: which saved models, in which order, scored on
features computed once; the seed's production decision at its boundaries; promotion round trip.

The ranking and the decision are pure (a run folder written here, no Keras). The rest shares
the small run of ``fast_run`` (trained once per session) and two real clips scored without TTA.
"""

import json
import math
import shutil

import numpy as np
import pytest

import media

from fast_run import shared_run
from vd.errors import UserError
from vd.model.runfolder import write_history, write_json
from vd.model.acceptance import production_decision
from vd.score.checkpoints import list_candidates, parse_k, rank_candidates, select_candidates
from clirun import run_cli


# --------------------------------------------------------------------------- ranking (no Keras)


def _fake_run(root, bal: dict, loss: dict | None = None, files=("model.keras", "last.keras"),
              checkpoints=(10, 20, 30), config=None):
    root.mkdir(parents=True)
    (root / "checkpoints").mkdir()
    rows = [{"epoch": e, "val_balanced_acc": bal.get(e, 0.5), "val_loss": (loss or {}).get(e, 1.0)}
            for e in range(1, 31)]
    write_history(root / "history.csv", rows)
    write_json(root / "config.json", config or {"threshold": 0.5})
    for e in checkpoints:
        (root / "checkpoints" / f"epoch-{e:03d}.keras").write_bytes(b"x")
    for f in files:
        (root / f).write_bytes(b"x")
    return root


def test_candidates_carry_their_epochs_and_rank_by_validation_balanced_accuracy(tmp_path):
    run = _fake_run(tmp_path / "r", bal={17: 0.91, 20: 0.80, 10: 0.70, 30: 0.75})
    cands = {c.label(): c.epoch for c in list_candidates(run)}
    # model.keras = the best history row (17); last.keras = epoch 30 = the epoch-030 checkpoint
    assert cands == {"checkpoints/epoch-010.keras": 10, "checkpoints/epoch-020.keras": 20,
                     "checkpoints/epoch-030.keras = last.keras": 30, "model.keras": 17}
    ranked = [c.epoch for c in rank_candidates(list_candidates(run))]
    assert ranked == [17, 20, 30, 10]
    chosen, notes = select_candidates(run, 2)
    assert [c.epoch for c in chosen] == [17, 20] and notes == []
    chosen, notes = select_candidates(run, parse_k("all"))
    assert len(chosen) == 4
    chosen, notes = select_candidates(run, 9)
    assert len(chosen) == 4 and "4 distinct" in notes[0]


def test_ties_go_to_the_lower_validation_loss_and_unknown_epochs_rank_last(tmp_path):
    run = _fake_run(tmp_path / "r", bal={10: 0.8, 20: 0.8, 30: 0.6}, loss={10: 0.9, 20: 0.4},
                    files=("last.keras",), checkpoints=(10, 20, 30, 40))
    (run / "model.keras").write_bytes(b"x")
    ranked = rank_candidates(list_candidates(run))
    # model.keras is epoch 20 (same balanced accuracy as 10, lower loss) = epoch-020.keras;
    # epoch 40 has no history row (history stops at 30)
    assert [c.label() for c in ranked] == [
        "checkpoints/epoch-020.keras = model.keras", "checkpoints/epoch-010.keras",
        "checkpoints/epoch-030.keras = last.keras", "checkpoints/epoch-040.keras"]
    assert math.isnan(ranked[-1].val_balanced_acc)
    _, notes = select_candidates(run, None)
    assert "epoch-040" in notes[0] and "ranked last" in notes[0]


def test_after_a_promotion_model_keras_has_the_promoted_epoch(tmp_path):
    cfg = {"promoted": {"from": "checkpoints/epoch-020.keras", "epoch": 20,
                        "previous": {"file": "model.prev.keras", "epoch": 17}}}
    run = _fake_run(tmp_path / "r", bal={17: 0.91, 20: 0.80}, config=cfg,
                    files=("model.keras", "last.keras", "model.prev.keras"))
    cands = {c.label(): c.epoch for c in list_candidates(run)}
    assert cands["checkpoints/epoch-020.keras = model.keras"] == 20
    assert cands["model.prev.keras"] == 17


@pytest.mark.parametrize("value", ["0", "-1", "five", ""])
def test_checkpoints_value_is_checked(value):
    with pytest.raises(UserError, match="--checkpoints"):
        parse_k(value)


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize("accuracy, decision", [
    (0.849, "revisit"), (0.85, "iterate"), (17 / 20, "iterate"), (0.90, "iterate"),
    (9 / 10, "iterate"), (0.1 + 0.8, "iterate"), (0.901, "deploy"), (0.5468, "revisit"),
    (1.0, "deploy"), (float("nan"), "revisit")])
def test_production_decision_boundaries(accuracy, decision):
    d = production_decision(accuracy)
    assert d["decision"] == decision
    assert d["action"] == {"deploy": "Deploy", "iterate": "Iterate on augmentation",
                           "revisit": "Revisit architecture"}[decision]
    assert d["baseline"]["tta_accuracy"] == 0.5468 and d["baseline"]["violent_acc"] == 0.2297
    assert "> 90%" in d["rule"] and "85.0 and 90.0 included" in d["rule"]
    assert d["metric"] == "TTA accuracy" and "note" not in d
    assert "TTA" in production_decision(accuracy, tta=False)["note"]


# --------------------------------------------------------------------------- on the shared run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


@pytest.fixture(scope="module")
def videos(synthetic_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt_videos")
    media.copy_clips(synthetic_set, root)
    return root


@pytest.mark.slow  # the shared run trains
def test_videos_are_decoded_and_through_the_backbone_once_for_all_checkpoints(run, videos, tmp_path,
                                                                     monkeypatch):
    import vd.extract.decode as decode
    import vd.score.predict as predict

    opens, reads, frames = [], [], []
    real_open, real_read = decode._open, decode.read_frames
    monkeypatch.setattr(decode, "_open", lambda *a, **k: opens.append(a[0]) or real_open(*a, **k))
    monkeypatch.setattr(decode, "read_frames", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    real_features = predict.Predictor.features

    def counted(self, pixels, idx):
        out = real_features(self, pixels, idx)
        frames.append(out.shape[0] * out.shape[1])
        return out

    monkeypatch.setattr(predict.Predictor, "features", counted)
    _, run_dir = run
    report = tmp_path / "report"
    status, out, err = run_cli(["evaluate", str(videos), "--model", str(run_dir), "--checkpoints",
                                "all", "--no-tta", "--report", str(report), "-q"])
    print(out)
    assert status == 0, err
    n_models = len(list_candidates(run_dir))
    assert n_models >= 3
    assert len(reads) == 2 and len(opens) == 2       # one decode pass per clip, not per model
    assert sum(frames) == 2 * 20                     # the backbone saw each sampled frame once
    data = json.loads((report / "checkpoints.json").read_text())
    assert data["vgg16_frames"] == 40 and data["clips"] == 2
    assert len(data["checkpoints"]) == n_models
    for row in data["checkpoints"]:
        assert sum(map(sum, row["confusion"])) == 2 and row["seconds"] > 0
        for key in ("epoch", "accuracy", "violent_acc", "nonviolent_acc", "gap", "roc_auc"):
            assert key in row
    assert data["decision"]["decision"] in ("deploy", "iterate", "revisit")
    assert data["decision"]["metric"] == "accuracy (no TTA)"       # --no-tta says so
    assert data["decision"]["checkpoint"] == data["best"]["checkpoint"]
    assert "production decision:" in out and "54.68%" in out and "22.97%" in out
    rows = (report / "checkpoints.csv").read_text().splitlines()
    assert rows[0].startswith("checkpoint,epoch,val_balanced_acc,accuracy,violent_acc")
    assert len(rows) == 1 + n_models


@pytest.mark.slow  # the shared run trains
def test_store_scores_match_each_model_alone_and_promote_round_trips(run, tmp_path):
    from vd.data.store import open_store
    from vd.model.loaded_run import load_run

    store, run_dir = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    status, out, err = run_cli(["evaluate", str(store), "--model", str(copy), "--checkpoints", "3",
                                "--json", "-q"])
    assert status == 0, err
    res = json.loads(out)
    assert res["source"] == "store" and res["tta"] is None and len(res["checkpoints"]) == 3
    ranked = [c.label() for c in select_candidates(copy, 3)[0]]
    assert [r["checkpoint"] for r in res["checkpoints"]] == ranked
    with open_store(store) as st:
        rows = np.flatnonzero(st.variant == 0)
        x, y = st.read_features(rows), st.label[rows]
    from vd.model.metrics import summarize

    r = res["checkpoints"][-1]  # a row = that file scored on its own (raw softmax)
    p = load_run(copy, which=r["file"]).violent_probability(x, calibrated=False)
    ref = summarize(y, p, 0.5)
    assert r["confusion"] == ref["confusion"] and r["accuracy"] == pytest.approx(ref["accuracy"])
    print("checkpoints on the store:", [(r["checkpoint"], r["epoch"], round(r["accuracy"], 3))
                                         for r in res["checkpoints"]], res["decision"]["decision"])

    # one evaluator: the model.keras row and `vd evaluate` of the run alone come from the same
    # store pass; calibration (single model only) moves neither the 0.5 decisions nor the ranking
    status, out, err = run_cli(["evaluate", str(store), "--model", str(copy), "--json", "-q"])
    assert status == 0, err
    single = json.loads(out)
    row = next((r for r in res["checkpoints"] if "model.keras" in r["files"]), None)
    if row is not None:
        assert row["confusion"] == single["metrics"]["confusion"]
        assert row["roc_auc"] == pytest.approx(single["metrics"]["roc_auc"], abs=1e-3)
        assert single["on_training_store"] is True     # the structured flag, not a note's words

    # --promote: a checkpoint that is not model.keras becomes model.keras
    from vd.model.promote import promote_checkpoint

    target = next(c for c in list_candidates(copy) if "model.keras" not in c.files
                  and c.name.startswith("checkpoints/"))
    old_model = (copy / "model.keras").read_bytes()
    old_temperature = json.loads((copy / "calibration.json").read_text())["temperature"]
    row = {"file": target.name, "files": target.files, "epoch": target.epoch, "accuracy": 0.5}
    rec = promote_checkpoint(copy, row, source="test")
    assert (copy / "model.keras").read_bytes() == (copy / target.name).read_bytes()
    assert (copy / "model.prev.keras").read_bytes() == old_model
    cfg = json.loads((copy / "config.json").read_text())
    assert cfg["promoted"]["from"] == target.name and cfg["promoted"]["epoch"] == target.epoch
    assert cfg["promoted"]["when"] and cfg["promoted"]["previous"]["file"] == "model.prev.keras"
    assert "recalibrated" in rec["calibration"]
    new_temperature = json.loads((copy / "calibration.json").read_text())["temperature"]
    print(f"promoted {target.name}: temperature {old_temperature:.4g} -> {new_temperature:.4g}")
    promoted = load_run(copy)
    assert np.allclose(promoted.violent_probability(x[:4], calibrated=False),
                       load_run(copy, which=target.name).violent_probability(x[:4], calibrated=False))
    labels = {c.label(): c.epoch for c in list_candidates(copy)}
    assert labels[f"{target.name} = model.keras"] == target.epoch
    assert any("model.prev.keras" in k and e == cfg["promoted"]["previous"]["epoch"]
               for k, e in labels.items())

    # the CLI flag: whichever row is best ends up as model.keras (the weights it had before the
    # call: when the best is model.prev.keras, promoting swaps the two files)
    weights = {str(f.relative_to(copy)): f.read_bytes() for f in copy.rglob("*.keras")}
    status, out, err = run_cli(["evaluate", str(store), "--model", str(copy), "--checkpoints",
                                "2", "--promote", "--json", "-q"])
    assert status == 0, err
    res = json.loads(out)
    best = res["best"]
    assert (copy / "model.keras").read_bytes() == weights[best["file"]]
    if res["promoted"].get("unchanged"):
        assert "model.keras" in best["files"]
    else:
        assert json.loads((copy / "config.json").read_text())["promoted"]["from"] == best["file"]


@pytest.mark.slow  # the shared run trains
def test_usage_errors(run, videos):
    _, run_dir = run
    for args, word in ((["--promote"], "--checkpoints"),
                       (["--checkpoints", "0"], "--checkpoints"),
                       (["--checkpoints", "2", "--target-fpr", "0.05"], "one model")):
        status, out, err = run_cli(["evaluate", str(videos), "--model", str(run_dir), *args])
        assert status == 2 and word in err and len(err.strip().splitlines()) == 1, (args, err)


@pytest.mark.slow
def test_a_run_loaded_again_is_the_same_model_until_its_file_is_replaced(run, tmp_path):
    """load_run keeps recently loaded models by file identity: loading an unchanged run again
    neither reads nor traces it again, and a model.keras replaced on disk (as promotion does)
    is loaded anew, so its scores are the new file's."""
    import os

    from vd.model.loaded_run import load_run

    _, run_dir = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    x = np.random.default_rng(5).normal(0.0, 1.0, (6, 20, 576)).astype(np.float32)
    first, again = load_run(copy), load_run(copy)
    assert again.model is first.model and again._forward is first._forward
    before = first.violent_probability(x, calibrated=False)

    # a checkpoint whose weights score differently from model.keras
    scores = {p.name: load_run(copy, which=f"checkpoints/{p.name}").violent_probability(
        x, calibrated=False) for p in sorted((copy / "checkpoints").glob("epoch-*.keras"))}
    name, want = next((n, s) for n, s in scores.items() if not np.allclose(s, before, atol=1e-6))
    shutil.copy(copy / "checkpoints" / name, copy / "model.tmp.keras")
    os.replace(copy / "model.tmp.keras", copy / "model.keras")
    replaced = load_run(copy)
    assert replaced.model is not first.model
    assert np.allclose(replaced.violent_probability(x, calibrated=False), want, atol=1e-6)
