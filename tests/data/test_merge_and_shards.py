"""--shard i/n selection and `vd merge` (vd/data/discover.py, vd/data/merge.py)."""

import numpy as np
import pytest

from vd.data.discover import Clip, parse_shard, select_shard, shard_of
from vd.data.merge import merge_stores
from vd.data.store import Failure, open_store, write_plain_store
from vd.errors import UserError


def clips(names):
    return [Clip(path=None, video=v, label=0, split="") for v in names]


def test_parts_are_disjoint_complete_and_stable_when_clips_are_added():
    names = [f"cam{i % 7}/{i:04d}.mp4" for i in range(500)]
    parts = [select_shard(clips(names), (i, 4)) for i in range(4)]
    flat = [c.video for p in parts for c in p]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    assert all(60 < len(p) < 190 for p in parts)  # roughly even
    more = names + [f"new/{i}.mp4" for i in range(100)]
    assert all(shard_of(v, 4) == shard_of(v, 4) for v in more)
    before = {c.video: i for i in range(4) for c in parts[i]}
    after = {c.video: i for i in range(4) for c in select_shard(clips(more), (i, 4))}
    assert all(after[v] == before[v] for v in names)  # adding clips moves none


@pytest.mark.parametrize("spec,env,want", [
    ("1/3", {}, (1, 3)),
    ("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "5"}, (2, 5)),
    ("auto", {"JOB_COMPLETION_INDEX": "0", "VD_SHARD_COUNT": "2"}, (0, 2)),
    ("auto/4", {"JOB_COMPLETION_INDEX": "3"}, (3, 4)),
    (None, {}, None),
])
def test_shard_specs(spec, env, want):
    assert parse_shard(spec, env) == want


@pytest.mark.parametrize("spec,env", [("3/3", {}), ("x", {}), ("auto", {}), ("1/0", {})])
def test_bad_shard_specs_are_user_errors(spec, env):
    with pytest.raises(UserError):
        parse_shard(spec, env)


def store(path, videos, value, **attrs):
    n = len(videos)
    feats = np.full((n, 20, 8), value, np.float16) + np.arange(n, dtype=np.float16)[:, None, None]
    base = {"backbone": "vgg16", "layer": "fc2", "weights": "random(seed=0)", "feature_dim": 8, "augment": 1}
    base.update(attrs)
    return write_plain_store(path, feats, [1] * n, videos, attrs=base,
                             failures=[Failure("bad.mp4", "decode", "x")])


def test_merge_orders_by_path_and_keeps_each_clip_once(tmp_path):
    a = store(tmp_path / "a.h5", ["c.mp4", "a.mp4"], 10)
    b = store(tmp_path / "b.h5", ["b.mp4", "a.mp4"], 20)
    s = merge_stores(tmp_path / "m.h5", [a, b])
    assert (s.clips, s.rows, s.duplicates, s.failures) == (3, 3, ["a.mp4"], 1)
    with open_store(tmp_path / "m.h5") as m:
        assert list(m.video) == ["a.mp4", "b.mp4", "c.mp4"]
        f = m.read_features()[:, 0, 0]
        assert f.tolist() == [11, 20, 10]  # a.mp4 from the first input
        assert [x.video for x in m.failures] == ["bad.mp4"]


def test_merge_refuses_mixed_extractors(tmp_path):
    a = store(tmp_path / "a.h5", ["a.mp4"], 1)
    b = store(tmp_path / "b.h5", ["b.mp4"], 1, layer="fc1")
    with pytest.raises(UserError, match="layer=fc1"):
        merge_stores(tmp_path / "m.h5", [a, b])
    assert not (tmp_path / "m.h5").exists()
