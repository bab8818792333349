"""vd/data/store.py: schema-1 round trip, shards, index guards, locking, resume bookkeeping."""

import json

import h5py
import numpy as np
import pytest

from vd.data.store import (ClipRows, Failure, StoreWriter, base_attrs, create_store, open_store, shard_dir,
                           write_plain_store)
from vd.errors import UserError

T, D = 20, 16


def clip(i, variants=2, label=None):
    rng = np.random.default_rng(i)
    return ClipRows(
        video=f"{'ab'[i % 2]}/{i:03d}.mp4", label=i % 2 if label is None else label,
        split=["train", "val", ""][i % 3],
        features=rng.normal(size=(variants, T, D)).astype(np.float16),
        variant=np.arange(variants, dtype=np.int8),
        frame_index=np.tile(np.arange(T, dtype=np.int32) * (i + 1), (variants, 1)),
        n_frames=T * (i + 1), fps=25.0 + i)


def attrs(**kw):
    a = base_attrs(frames=T, feature_dim=D, backbone="vgg16", layer="fc2", weights="random(seed=0)",
                   image_size=224, preprocess="p", augment=2)
    a.update(kw)
    return a


def write(path, clips, failures=(), shard_clips=2, **kw):
    with StoreWriter(path, attrs(**kw), shard_clips=shard_clips) as w:
        for c in clips:
            w.add(c)
        for f in failures:
            w.add_failure(f)


def test_round_trip_every_dataset_and_attribute(tmp_path):
    clips = [clip(i) for i in range(5)]
    write(tmp_path / "f.h5", clips, [Failure("bad.mp4", "decode", "no frame decodes")])
    assert len(list(shard_dir(tmp_path / "f.h5").glob("shard-*.h5"))) == 3
    with open_store(tmp_path / "f.h5") as st:
        assert (st.n, st.frames, st.dim) == (10, T, D)
        feats = st.read_features()
        for i, c in enumerate(clips):
            rows = slice(2 * i, 2 * i + 2)
            assert np.array_equal(feats[rows].astype(np.float16), c.features)
            assert list(st.video[rows]) == [c.video] * 2
            assert list(st.label[rows]) == [c.label] * 2
            assert list(st.split[rows]) == [c.split] * 2
            assert st.variant[rows].tolist() == [0, 1]
            assert np.array_equal(st.frame_index[rows], c.frame_index)
            assert st.n_frames[rows].tolist() == [c.n_frames] * 2
            assert np.allclose(st.fps[rows], c.fps)
        assert st.failures == [Failure("bad.mp4", "decode", "no frame decodes")]
        for k, v in attrs().items():
            assert st.attrs[k] == v
        assert st.extractor()["weights"] == "random(seed=0)"
        assert st.read_features([9, 0, 0]).shape == (3, T, D)
        assert np.array_equal(st.read_features([9, 0, 0])[1:], feats[[0, 0]])


def test_store_opens_from_another_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "f.h5", [clip(i) for i in range(3)])
    monkeypatch.chdir("/")
    with open_store(tmp_path / "f.h5") as st:
        assert st.read_features().shape == (6, T, D)


def test_missing_shard_is_an_error_naming_it(tmp_path):
    write(tmp_path / "f.h5", [clip(i) for i in range(4)])
    victim = shard_dir(tmp_path / "f.h5") / "shard-000001.h5"
    victim.unlink()
    with pytest.raises(UserError, match="shard missing: .*shard-000001.h5"):
        open_store(tmp_path / "f.h5")


def test_truncated_shard_is_an_error_naming_it(tmp_path):
    write(tmp_path / "f.h5", [clip(i) for i in range(4)])
    victim = shard_dir(tmp_path / "f.h5") / "shard-000000.h5"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="shard-000000.h5"):
        open_store(tmp_path / "f.h5")


def test_not_a_store_and_newer_schema_are_refused(tmp_path):
    (tmp_path / "junk.h5").write_text("hello")
    with pytest.raises(UserError, match="not a readable HDF5 file"):
        open_store(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(UserError, match="not a vd feature store"):
        open_store(tmp_path / "other.h5")
    write_plain_store(tmp_path / "new.h5", np.zeros((2, T, D)), [0, 1], ["a", "b"],
                      attrs={"vd_schema": 2, "vd_version": "9.0"})
    with pytest.raises(UserError, match="schema 2.*9.0.*reads schema 1"):
        open_store(tmp_path / "new.h5")
    with pytest.raises(UserError, match="not found"):
        open_store(tmp_path / "absent.h5")


def test_plain_store_reads_like_a_sharded_one(tmp_path):
    feats = np.random.default_rng(0).normal(size=(3, T, D)).astype(np.float16)
    write_plain_store(tmp_path / "p.h5", feats, [1, 0, -1], ["x.mp4", "y.mp4", "z.mp4"])
    with open_store(tmp_path / "p.h5") as st:
        assert np.array_equal(st.read_features().astype(np.float16), feats)
        assert st.label.tolist() == [1, 0, -1]


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    w = StoreWriter(tmp_path / "f.h5", attrs())
    try:
        with pytest.raises(UserError, match="another vd process is writing"):
            StoreWriter(tmp_path / "f.h5", attrs())
    finally:
        w.close()
    StoreWriter(tmp_path / "f.h5", attrs()).close()  # free again afterwards


def test_resume_knows_committed_clips_and_failures(tmp_path):
    write(tmp_path / "f.h5", [clip(i) for i in range(3)], [Failure("bad.mp4", "decode", "x")], shard_clips=10)
    w = StoreWriter(tmp_path / "f.h5", attrs())
    assert w.done() == {clip(i).video for i in range(3)} | {"bad.mp4"}
    w.add(clip(3))
    w.close()
    with open_store(tmp_path / "f.h5") as st:
        assert st.n == 8 and len(st.failures) == 1


def test_uncommitted_temporary_files_are_ignored_and_cleaned(tmp_path):
    write(tmp_path / "f.h5", [clip(0)])
    stale = shard_dir(tmp_path / "f.h5") / ".shard-000001.h5.tmp"
    stale.write_bytes(b"half a shard")
    w = StoreWriter(tmp_path / "f.h5", attrs())
    assert not stale.exists() and w.done() == {clip(0).video}
    w.close()


def test_a_damaged_shard_is_set_aside_with_a_logged_warning_not_a_print(tmp_path, caplog, capsys):
    write(tmp_path / "f.h5", [clip(0), clip(1)], shard_clips=1)
    shard = shard_dir(tmp_path / "f.h5") / "shard-000001.h5"
    shard.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with caplog.at_level("WARNING", logger="vd.data.store"):
        w = StoreWriter(tmp_path / "f.h5", attrs())
    w.close()
    assert w.done() == {clip(0).video}
    (record,) = [r for r in caplog.records if r.name == "vd.data.store"]
    assert record.levelname == "WARNING" and "shard-000001.h5 is damaged" in record.getMessage()
    assert shard.with_name(shard.name + ".corrupt").exists() and not shard.exists()
    assert capsys.readouterr().out == ""  # results own stdout; warnings go through logging


def test_different_settings_refuse_to_resume_unless_overwrite(tmp_path):
    write(tmp_path / "f.h5", [clip(0)])
    with pytest.raises(UserError, match="layer=fc2.*layer=fc1.*--overwrite"):
        StoreWriter(tmp_path / "f.h5", attrs(layer="fc1"))
    with StoreWriter(tmp_path / "f.h5", attrs(layer="fc1"), overwrite=True) as w:
        assert w.done() == set()
        w.add(clip(1))
    with open_store(tmp_path / "f.h5") as st:
        assert st.attrs["layer"] == "fc1" and st.n == 2


def test_output_folder_must_exist(tmp_path):
    with pytest.raises(UserError, match="output folder does not exist"):
        StoreWriter(tmp_path / "no" / "f.h5", attrs())


def test_unwritable_output_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")  # a file where a folder should be: fails even for root
    with pytest.raises(UserError, match="not writable"):
        StoreWriter(tmp_path / "file" / "f.h5", attrs())


# --------------------------------------------------------------------------- the public writer


def test_create_store_appends_rows_and_clips_and_reads_back(tmp_path):
    a, b = clip(0), clip(1, variants=3)
    with create_store(tmp_path / "p.h5", attrs(), frames=T, dim=D) as out:
        out.append_clip(a)
        out.append(b.features[:2], label=[1, 0], video=["x.mp4", "y.mp4"], variant=[0, 1],
                   split="val", frame_index=b.frame_index[:2], n_frames=[7, 8], fps=12.5)
        out.add_failures([Failure("bad.mp4", "decode", "x")])
        assert out.rows == 4
    with open_store(tmp_path / "p.h5") as st:
        assert (st.n, st.frames, st.dim) == (4, T, D)
        assert np.array_equal(st.read_features(dtype=np.float16), np.concatenate([a.features, b.features[:2]]))
        assert list(st.video) == [a.video] * 2 + ["x.mp4", "y.mp4"]
        assert st.label.tolist() == [a.label] * 2 + [1, 0]
        assert list(st.split) == [a.split] * 2 + ["val", "val"]  # a scalar fills every row
        assert st.n_frames.tolist() == [a.n_frames] * 2 + [7, 8]
        assert np.array_equal(st.frame_index[2:], b.frame_index[:2])
        assert st.fps.tolist() == [a.fps] * 2 + [12.5, 12.5]
        assert st.failures == [Failure("bad.mp4", "decode", "x")]
        assert st.attrs["layer"] == "fc2"


def test_create_store_is_all_or_nothing(tmp_path):
    path = tmp_path / "p.h5"
    write_plain_store(path, np.ones((1, T, D)), [1], ["old.mp4"])
    with pytest.raises(ZeroDivisionError):
        with create_store(path, attrs(), frames=T, dim=D) as out:
            out.append_clip(clip(0))
            1 / 0
    with open_store(path) as st:  # the file before is untouched, no temporary file is left
        assert list(st.video) == ["old.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]
    with pytest.raises(UserError, match=r"rows of \(20, 8\) features, the store holds \(20, 16\)"):
        with create_store(path, attrs(), frames=T, dim=D) as out:
            out.append_clip(clip(0))
            out.append(np.zeros((1, T, 8)), label=0, video="v", variant=0, split="",
                       frame_index=np.zeros((1, T)), n_frames=1, fps=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


# --------------------------------------------------------------------------- the index schedule


def index_state(path):
    """(videos, features) of the index on disk as a reader sees it, or None if there is none."""
    if not path.exists():
        return None
    with open_store(path) as st:
        return list(st.video), st.read_features(dtype=np.float16)


def indexed_shards(path) -> int:
    with h5py.File(path, "r") as f:
        return len(json.loads(f.attrs["shards"]))


def test_index_is_always_a_valid_prefix_and_rewritten_a_log_number_of_times(tmp_path, monkeypatch):
    from vd.data import store as store_mod

    monkeypatch.setattr(store_mod, "INDEX_MAX_AGE_S", 1e9)  # only the shard-count rules here
    path = tmp_path / "f.h5"
    clips = [clip(i, variants=1) for i in range(80)]
    versions = []
    with StoreWriter(path, attrs(), shard_clips=1) as w:
        for i, c in enumerate(clips):
            w.add(c)
            k = indexed_shards(path)
            assert 1 <= k <= i + 1  # never ahead of the commits, never missing
            assert i + 1 - k < max(store_mod.INDEX_MIN_NEW_SHARDS, store_mod.INDEX_GROWTH * k)
            if not versions or versions[-1] != k:  # a new index: check all of it as a reader
                versions.append(k)
                videos, feats = index_state(path)
                assert videos == [x.video for x in clips[:k]]
                assert np.array_equal(feats, np.concatenate([x.features for x in clips[:k]]))
    assert index_state(path)[0] == [c.video for c in clips]  # complete after close
    # rewritten at the first shard, then whenever the new shards reach max(8, a quarter of those
    # indexed): 1, 9, 17, 25, 33, 42, 53, 67 -- a count that grows with log(shards), so all
    # rewrites together cost O(shards)
    assert versions == [1, 9, 17, 25, 33, 42, 53, 67], versions


def test_an_exception_inside_the_writer_still_brings_the_index_up_to_date(tmp_path):
    path = tmp_path / "f.h5"
    clips = [clip(i, variants=1) for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        with StoreWriter(path, attrs(), shard_clips=2) as w:
            for c in clips:
                w.add(c)
            assert index_state(path)[0] == [c.video for c in clips[:2]]  # the first commit's
            raise KeyboardInterrupt
    assert index_state(path)[0] == [c.video for c in clips[:4]]  # both shards, not the pending clip
    StoreWriter(path, attrs()).close()  # the lock was released


KILL_WRITER = """
import sys, numpy as np
sys.path[:0] = [{tests!r}, {root!r}]
from test_store import clip, attrs
from vd.data.store import StoreWriter
w = StoreWriter({path!r}, attrs(), shard_clips=1)
for i in range(12):
    w.add(clip(i, variants=1))
w.close()
"""


def test_a_kill_leaves_a_stale_but_valid_index_and_the_next_writer_completes_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    path = tmp_path / "f.h5"
    code = KILL_WRITER.format(tests=str(tests), root=str(tests.parent.parent), path=str(path))
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, VD_FAULT="shard-rename@11"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-400:]
    assert len(list(shard_dir(path).glob("shard-*.h5"))) == 10
    videos, feats = index_state(path)  # written at shard 1 and 9: behind, but whole
    assert videos == [clip(i).video for i in range(9)]
    assert np.isfinite(feats).all()
    with StoreWriter(path, attrs()) as w:
        assert w.done() == {clip(i).video for i in range(10)}
    assert index_state(path)[0] == [clip(i).video for i in range(10)]


# --------------------------------------------------------------------------- feature_dim


def test_feature_dim_comes_from_the_rows_when_the_attribute_is_absent(tmp_path):
    no_dim = {k: v for k, v in attrs().items() if k != "feature_dim"}
    path = tmp_path / "f.h5"
    with StoreWriter(path, no_dim, shard_clips=1) as w:
        w.add(clip(0))
        w.add_failure(Failure("bad.mp4", "decode", "x"))  # a shard without rows, width known
    with StoreWriter(path, no_dim, shard_clips=1) as w:  # resumed: the width is read back
        assert w.dim == D
        w.add_failure(Failure("bad2.mp4", "decode", "x"))
        with pytest.raises(UserError, match=r"clip a/001.mp4 holds rows of \(20, 8\).*\(20, 16\)"):
            w.add(ClipRows("a/001.mp4", 0, "", np.zeros((1, T, 8), np.float16), np.zeros(1, np.int8),
                           np.zeros((1, T), np.int32), T, 25.0))
    with open_store(path) as st:
        assert (st.n, st.dim) == (2, D) and len(st.failures) == 2


def test_a_store_that_cannot_know_its_feature_dim_is_a_one_line_error(tmp_path):
    no_dim = {k: v for k, v in attrs().items() if k != "feature_dim"}
    w = StoreWriter(tmp_path / "f.h5", no_dim, shard_clips=1)
    with pytest.raises(UserError, match="feature width unknown: no feature_dim attribute and no rows"):
        w.add_failure(Failure("bad.mp4", "decode", "x"))
    w.abandon()


def test_reader_takes_the_width_from_the_features_and_refuses_a_contradiction(tmp_path):
    write_plain_store(tmp_path / "ok.h5", np.zeros((2, T, 5)), [0, 1], ["a", "b"])  # no attribute
    with open_store(tmp_path / "ok.h5") as st:
        assert st.dim == 5 and "feature_dim" not in st.attrs
    write_plain_store(tmp_path / "bad.h5", np.zeros((2, T, 5)), [0, 1], ["a", "b"], attrs={"feature_dim": 4096})
    with pytest.raises(UserError, match="feature_dim=4096 but its features are 5 wide"):
        open_store(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f.attrs["vd_schema"] = 1
        for k in ("features", "label", "video", "variant", "split", "frame_index", "n_frames", "fps"):
            f[k] = np.zeros(2)
    with pytest.raises(UserError, match=r"features has shape \(2,\), not \(rows, frames, feature_dim\)"):
        open_store(tmp_path / "flat.h5")


def test_a_lagging_index_reads_what_it_names_and_counts_the_shards_it_does_not(tmp_path):
    """After a kill the index may name fewer shards than are committed: it still reads its own
    rows, says how many committed shards it lacks, and the next writer brings it up to date."""
    import shutil

    from clirun import run_cli

    def resume(clips):  # what vd extract does: skip the clips already committed
        with StoreWriter(path, attrs(), shard_clips=2) as w:
            for c in clips:
                if c.video not in w.done():
                    w.add(c)

    path = tmp_path / "f.h5"
    resume([clip(i) for i in range(4)])
    with open_store(path) as st:
        assert (st.n, st.unindexed_shards) == (8, 0)
    stale = tmp_path / "stale-index.h5"
    shutil.copy(path, stale)                       # the index as it was with 2 shards
    resume([clip(i) for i in range(6)])            # a third shard commits
    shutil.copy(stale, path)                       # ... and the kill came before its index
    with open_store(path) as st:
        assert (st.n, st.unindexed_shards) == (8, 1)
    status, out, _ = run_cli(["info", str(path)])
    assert status == 0 and "1 committed shard(s) are not in this index" in out
    resume([clip(i) for i in range(6)])            # the same command again
    with open_store(path) as st:
        assert (st.n, st.unindexed_shards) == (12, 0)


def test_a_writer_refuses_a_fifo_before_making_its_lock(tmp_path):
    import os

    os.mkfifo(tmp_path / "f.h5")
    with pytest.raises(UserError, match="FIFO"):
        StoreWriter(tmp_path / "f.h5", attrs(), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]
