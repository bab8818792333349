"""`vd train --select-by alarms`: epochs ranked by the validation recordings' alarms.

The arithmetic (truth from the window labels, the replay, the ranking) is checked on window
scores this test writes; one real run (synthetic recordings through mobilenet_v3_small with
random weights, `vd extract --annotations`, `vd train`) checks that every epoch's alarm numbers
are recorded and that model.keras is the epoch the ranking picks, also for the tools that read
the run folder later (`vd evaluate --checkpoints`, `--promote`)."""

import json
import math

import numpy as np
import pytest

from vd.errors import UserError
from vd.model.runfolder import epoch_key, history_epochs, read_history
from vd.score.alarm_selection import AlarmSelection, selection_from

WINDOW, STRIDE = 2.0, 1.0


def _rows(name, duration, fight):
    """Window names and labels of one recording: violent inside ``fight``, calm elsewhere."""
    videos, labels, t = [], [], 0.0
    while t + WINDOW <= duration + 1e-9:
        videos.append(f"{name}@{t:.3f}-{t + WINDOW:.3f}")
        labels.append(1 if fight[0] <= t and t + WINDOW <= fight[1] else 0)
        t += STRIDE
    return videos, labels


def _val(n_recordings=3, duration=60.0):
    videos, labels = ["clip_a.mp4", "clip_b.mp4"], [1, 0]   # clips are not replayed
    for i in range(n_recordings):
        v, y = _rows(f"cam/rec_{i}.mp4", duration, (20.0 + i, 30.0 + i))
        videos += v
        labels += y
    return np.array(videos), np.array(labels)


def test_clean_scores_find_every_fight_without_false_alarms():
    videos, labels = _val()
    sel = AlarmSelection(target_recall=1.0)
    line = sel.prepare(videos, labels)
    assert "3 validation recordings (3 fights" in line
    logs = sel.logs(np.where(labels == 1, 0.9, 0.1))
    assert logs["val_alarm_recall"] == 1.0 and logs["val_alarm_fa_per_hour"] == 0.0
    assert 0.1 <= logs["val_alarm_threshold"] <= 0.9


def test_calm_spikes_are_counted_as_false_alarms_per_calm_hour():
    videos, labels = _val()
    probs = np.where(labels == 1, 0.9, 0.1)
    spikes = [i for i, v in enumerate(videos) if v.startswith("cam/rec_0.mp4@5.")
              or v.startswith("cam/rec_0.mp4@6.") or v.startswith("cam/rec_0.mp4@7.")]
    probs[spikes] = 0.95  # three hot calm windows: one incident, hotter than any fight
    sel = AlarmSelection(target_recall=1.0)
    sel.prepare(videos, labels)
    logs = sel.logs(probs)
    calm_h = sum(60.0 - (30.0 - 20.0) for _ in range(3)) / 3600.0  # truth spans 20–30 s
    assert logs["val_alarm_recall"] == 1.0
    assert logs["val_alarm_fa_per_hour"] == pytest.approx(1 / calm_h, rel=0.05)
    # a threshold above the spikes misses every fight: the target cannot be met without it
    assert logs["val_alarm_threshold"] <= 0.9


def test_ranking_prefers_the_target_then_fewer_false_alarms():
    sel = {"metric": "alarms", "target_recall": 0.9}
    rows = [
        {"epoch": 1, "val_balanced_acc": 0.99, "val_loss": 0.1, "val_alarm_recall": 0.8,
         "val_alarm_fa_per_hour": 0.0},                         # best windows, misses a fight
        {"epoch": 2, "val_balanced_acc": 0.80, "val_loss": 0.5, "val_alarm_recall": 1.0,
         "val_alarm_fa_per_hour": 12.0},
        {"epoch": 3, "val_balanced_acc": 0.70, "val_loss": 0.6, "val_alarm_recall": 0.9,
         "val_alarm_fa_per_hour": 2.0},                         # the alarm to keep
        {"epoch": 4, "val_balanced_acc": 0.95, "val_loss": 0.2, "val_alarm_recall": math.nan,
         "val_alarm_fa_per_hour": math.nan},
    ]
    assert history_epochs(rows, sel) == (3, 4)
    assert history_epochs(rows) == (1, 4)                       # the default ranking
    assert history_epochs(rows, {"metric": "balanced_accuracy"}) == (1, 4)
    assert epoch_key(rows[1], sel) > epoch_key(rows[0], sel)


def test_no_validation_fight_is_one_line_and_bad_targets_are_refused():
    with pytest.raises(UserError, match="no validation recording holds a window labelled violent"):
        AlarmSelection().prepare(["a.mp4", "b.mp4"], [1, 0])
    with pytest.raises(UserError, match="--target-recall"):
        AlarmSelection(0.0)
    assert selection_from("balanced-accuracy", 0.9) is None
    assert selection_from("alarms", 0.8).target_recall == 0.8
    # a resumed run selects as it started, whatever the command line says now
    assert selection_from("alarms", 0.8, {"metric": "balanced_accuracy"}) is None
    assert selection_from("balanced-accuracy", 0.9, {"metric": "alarms", "target_recall": 0.7}
                          ).target_recall == 0.7


@pytest.mark.slow
def test_a_run_records_alarms_every_epoch_and_saves_the_epoch_they_rank_best(tmp_path):
    from vd.score.checkpoints import list_candidates, rank_candidates
    from vd.score.recording_windows import extract_recordings
    from vd.model.train import train
    from vd.synthetic import write_recordings

    ann = write_recordings(tmp_path / "recs", count=5, duration_s=24.0, fights=1, fight_s=5.0,
                           nuisances=("shake",), nuisance_s=3.0, size=(128, 96), seed=4)
    store = tmp_path / "w.h5"
    extract_recordings(tmp_path / "recs", store, ann, window=WINDOW, stride=STRIDE,
                       weights="random", backbone="mobilenet_v3_small")
    r = train(store, preset="motion-small", epochs=4, out=tmp_path / "run", tensorboard=False,
              seed=0, val_fraction=0.4, checkpoint_every=1,
              selection=lambda saved: selection_from("alarms", 0.5, saved))
    history = read_history(r.run_dir / "history.csv")
    assert len(history) == 4
    for row in history:
        assert 0.0 <= row["val_alarm_recall"] <= 1.0
        assert not math.isnan(row["val_alarm_threshold"])
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["selection"] == {"metric": "alarms", "target_recall": 0.5, "smooth": "2/3",
                                "cooldown": 4.0}
    best, _ = history_epochs(history, cfg["selection"])
    assert r.best_epoch == best
    assert r.best["alarm_recall"] == next(h for h in history if h["epoch"] == best)["val_alarm_recall"]
    assert any("epochs ranked by alarms" in n for n in r.notes)
    # vd evaluate --checkpoints: model.keras is that same epoch, and it is ranked first
    cands = list_candidates(r.run_dir)
    model = next(c for c in cands if "model.keras" in c.files)
    assert model.epoch == best
    assert rank_candidates(cands)[0] is model
