"""vd/data/discover.py: walking input trees, labels and splits from folder names, CSV overrides."""

import os

import pytest

from vd.data.discover import discover, label_from_parts, read_labels_csv, split_from_parts
from vd.errors import UserError


def touch(root, *rels):
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


@pytest.mark.parametrize("name,label", [
    ("Fight", 1), ("fight", 1), ("Violence", 1), ("violent", 1), ("VIOLENT", 1),
    ("NonFight", 0), ("NonViolence", 0), ("non_violent", 0), ("nonviolent", 0), ("Non-Violence", 0),
    ("cats", -1), ("Real Life Violence Dataset", -1),
])
def test_label_words(name, label):
    assert label_from_parts([name]) == label


def test_nearest_folder_wins():
    assert label_from_parts(["Violence", "NonViolence"]) == 0
    assert label_from_parts(["NonFight", "extra", "Fight", "cam1"]) == 1
    assert split_from_parts(["train", "Fight"]) == "train"
    assert split_from_parts(["data", "Val", "NonFight"]) == "val"
    assert split_from_parts(["Fight"]) == ""


def test_rwf2000_layout(tmp_path):
    touch(tmp_path, "train/Fight/a.avi", "train/NonFight/b.avi", "val/Fight/c.avi", "val/NonFight/d.avi")
    clips = {c.video: c for c in discover(tmp_path)}
    assert (clips["train/Fight/a.avi"].label, clips["train/Fight/a.avi"].split) == (1, "train")
    assert (clips["val/NonFight/d.avi"].label, clips["val/NonFight/d.avi"].split) == (0, "val")


def test_real_life_violence_layout(tmp_path):
    touch(tmp_path, "Real Life Violence Dataset/Violence/V_1.mp4",
          "Real Life Violence Dataset/NonViolence/NV_1.mp4")
    clips = {c.video: c for c in discover(tmp_path)}
    assert clips["Real Life Violence Dataset/Violence/V_1.mp4"].label == 1
    assert clips["Real Life Violence Dataset/NonViolence/NV_1.mp4"].label == 0


def test_all_containers_found_recursively_and_other_files_ignored(tmp_path):
    exts = ["mp4", "avi", "mkv", "mov", "webm", "mpg", "mpeg", "m4v", "wmv", "flv", "MP4"]
    touch(tmp_path, *[f"x/y/clip{i}.{e}" for i, e in enumerate(exts)], "x/readme.txt", "x/img.png")
    found = [c.video for c in discover(tmp_path)]
    assert len(found) == len(exts)
    assert found == sorted(found)


def test_same_name_in_two_folders_stays_distinct(tmp_path):
    touch(tmp_path, "a/000.mp4", "b/000.mp4")
    assert [c.video for c in discover(tmp_path)] == ["a/000.mp4", "b/000.mp4"]


def test_symlink_loop_and_directory_named_like_a_video(tmp_path):
    touch(tmp_path, "Fight/ok.mp4")
    (tmp_path / "x.mp4").mkdir()
    os.symlink(tmp_path, tmp_path / "Fight" / "loop")
    assert [c.video for c in discover(tmp_path)] == ["Fight/ok.mp4"]


def test_unlabelled_clips_are_kept_as_minus_one(tmp_path):
    touch(tmp_path, "cam/a.mp4")
    assert discover(tmp_path)[0].label == -1


def test_csv_overrides_folder_labels(tmp_path):
    touch(tmp_path, "Fight/a.mp4", "cam/b.mp4")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nFight/a.mp4,nonviolent\ncam/b.mp4,1\n")
    clips = {c.video: c.label for c in discover(tmp_path, csv)}
    assert clips == {"Fight/a.mp4": 0, "cam/b.mp4": 1}


def test_bad_csv_label_names_line(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("a.mp4,maybe\n")
    with pytest.raises(UserError, match=r"labels.csv:1: unknown label"):
        read_labels_csv(csv)


def test_missing_and_empty_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="input not found"):
        discover(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no video files"):
        discover(tmp_path / "empty")


def test_single_file_input(tmp_path):
    touch(tmp_path, "clip.mp4")
    clips = discover(tmp_path / "clip.mp4")
    assert [c.video for c in clips] == ["clip.mp4"]
