"""vd/data/store.py: schema-1 round trip, shards, index guards, locking, resume bookkeeping."""

import h5py
import numpy as np
import pytest

from vd.data.store import (ClipRows, Failure, StoreWriter, base_attrs, open_store, shard_dir,
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
