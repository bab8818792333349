"""Batch plans and the two input paths: streaming yields exactly the in-memory batches."""

import numpy as np

from model_stores import make_store
from vd.data.store import open_store
from vd.model.data import InMemoryBatches, StreamingBatches, epoch_plan


def test_epoch_plan_is_a_seeded_permutation():
    rows = np.arange(3, 200, 2)
    a = epoch_plan(rows, 16, seed=1, epoch=0)
    assert sorted(np.concatenate(a).tolist()) == rows.tolist()
    assert all(len(b) <= 17 for b in a) and len(a[-1]) > 1
    assert all((x == y).all() for x, y in zip(a, epoch_plan(rows, 16, seed=1, epoch=0)))
    assert not (np.concatenate(a) == np.concatenate(epoch_plan(rows, 16, 1, 1))).all()


def test_epoch_plan_keeps_chunks_together():
    rows = np.arange(0, 64)
    batches = epoch_plan(rows, 8, seed=0, epoch=0, chunk=4)
    flat = np.concatenate(batches)
    chunks = flat // 4
    # every chunk appears as one contiguous run
    assert len(np.flatnonzero(np.diff(chunks))) + 1 == 16


def test_streaming_batches_equal_in_memory_batches(tmp_path):
    path = make_store(tmp_path / "s.h5", clips=50, dim=32, variants=2)
    with open_store(path) as store:
        rows = np.arange(0, store.n, 3)
        mem = InMemoryBatches(store, rows, batch_size=8, seed=3)
        st = StreamingBatches(store, rows, batch_size=8, seed=3)
        for epoch in range(2):
            assert len(mem) == len(st)
            for i in range(len(mem)):
                (xm, ym), (xs, ys) = mem[i], st[i]
                assert xm.dtype == np.float32 and xm.shape[1:] == (20, 32)
                np.testing.assert_array_equal(xm, xs)
                np.testing.assert_array_equal(ym, ys)
            mem.on_epoch_end()
            st.on_epoch_end()
        seen = np.concatenate([mem.batch_rows(i) for i in range(len(mem))])
        assert sorted(seen.tolist()) == rows.tolist()
        x, y = mem[0]
        np.testing.assert_array_equal(y[:, 1], store.label[mem.batch_rows(0)])
        np.testing.assert_array_equal(x, store.read_features(mem.batch_rows(0)))
