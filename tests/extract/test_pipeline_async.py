"""Asynchronous dispatch: the backbone in its own thread, batches assembled ahead.

The batches are those of the synchronous path, so a real backbone gives the same bits; clips
and failures reach the store in input order; an error in the backbone thread is raised in the
caller; Ctrl-C commits the finished clips and the rerun completes the store (both modes); at
most two batches are in flight. ``dispatch="auto"`` (the default) is async only where a GPU is
visible, so these tests name the mode they test."""

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

import media

from vd.data.discover import discover
from vd.data.store import Failure, open_store, shard_dir
from vd.extract.registry import get_spec
from vd.extract.clips import SHM_PREFIX, FrameBatcher, PipelinedBatcher, decoded_stream
from vd.extract.run import run_extract

LIGHT = "mobilenet_v3_small"  # ~100x cheaper a frame than VGG16


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synthetic_set):
    """3 good clips and one broken file between them (discover's order: folders, then names)."""
    root = tmp_path_factory.mktemp("async") / "v"
    media.copy_clips(synthetic_set, root, ("NonViolence/NV_000.mp4", "NonViolence/NV_001.mp4",
                                           "Violence/V_000.mp4"))
    (root / "NonViolence" / "NV_000b.mp4").write_text("not a video")
    return root


class PixelMeans:
    """A stand-in feature function for the plumbing tests (the dispatch is under test, not the
    network): each frame's mean of each channel, repeated to the light backbone's width."""

    def __init__(self, fail_on_call: int | None = None):
        self.dim = get_spec(LIGHT).feature_dim()
        self.calls, self.fail_on_call = [], fail_on_call

    def __call__(self, frames):
        self.calls.append(len(frames))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("device lost")
        means = frames.astype(np.float32).mean(axis=(1, 2))  # (N, 3)
        return np.tile(means, (1, -(-self.dim // 3)))[:, :self.dim]


def backbone_threads():
    return [t for t in threading.enumerate() if t.name == "vd-backbone"]


def store_content(path):
    with open_store(path) as st:
        return (st.read_features(dtype=np.float16), st.video.tolist(), st.frame_index.copy(),
                [(f.video, f.stage, f.message) for f in st.failures])


def shard_contents(index):
    out = []
    for p in sorted(shard_dir(index).glob("shard-*.h5")):
        with open_store(p) as st:
            out.append((st.video.tolist(), [f.video for f in st.failures]))
    return out


def test_async_gives_the_bits_and_shards_of_sync_with_a_real_backbone(videos, tmp_path):
    runs = {}
    for mode in ("sync", "async"):
        out = tmp_path / mode / "f.h5"
        out.parent.mkdir()
        s = run_extract(videos, out, weights="random", backbone=LIGHT, seed=5, batch_frames=16,
                        shard_clips=1, dispatch=mode)
        assert (s.clips_ok, s.clips_failed) == (3, 1)
        runs[mode] = out
    a, b = store_content(runs["sync"]), store_content(runs["async"])
    assert a[0].shape == (3, 20, get_spec(LIGHT).feature_dim()) and np.abs(a[0]).max() > 0
    assert np.array_equal(a[0], b[0])  # 16-frame batches span clips: the same batches, same bits
    assert a[1] == b[1] and np.array_equal(a[2], b[2])
    assert a[3] == b[3] and [f[0] for f in a[3]] == ["NonViolence/NV_000b.mp4"]
    # clips and failures are written in input order: shard by shard (one clip each), the same
    assert shard_contents(runs["sync"]) == shard_contents(runs["async"]) == [
        (["NonViolence/NV_000.mp4"], []), ([], ["NonViolence/NV_000b.mp4"]),
        (["NonViolence/NV_001.mp4"], []), (["Violence/V_000.mp4"], [])]


def test_the_batches_clips_and_failures_come_back_as_the_synchronous_batcher_gives_them(videos):
    items = list(decoded_stream(discover(videos), augment=2, seed=1))
    assert sum(isinstance(i, Failure) for i in items) == 1
    got = {}
    for cls in (FrameBatcher, PipelinedBatcher):
        net = PixelMeans()
        with cls(net, 24) as batcher:
            out = []
            for it in items:
                out += batcher.add(it)
            out += batcher.flush()
        got[cls] = (net.calls, out)
    (calls_s, out_s), (calls_a, out_a) = got[FrameBatcher], got[PipelinedBatcher]
    assert calls_a == calls_s == [24] * 5  # 3 clips x 2 variants x 20 frames, across clips
    assert [o[0] for o in out_a] == [o[0] for o in out_s] == items  # input order, failure included
    for (item, fa), (_, fs) in zip(out_a, out_s):
        if isinstance(item, Failure):
            assert fa is None and fs is None
        else:
            assert np.array_equal(fa, fs) and fa.shape == (40, net.dim)
            assert np.allclose(fa[:, 0], item.pixels[..., 0].reshape(40, -1).mean(axis=1), rtol=1e-5)
    assert not backbone_threads()


def test_at_most_two_batches_are_in_flight(videos):
    items = [i for i in decoded_stream(discover(videos), augment=1, seed=0) if not isinstance(i, Failure)]
    seen = []
    release = threading.Event()

    def net(frames):
        # the first call holds the device while the caller assembles as far ahead as it may
        if not seen:
            release.wait(0.5)
        seen.append(batcher.in_flight)
        return np.zeros((len(frames), 4), np.float32)

    batcher = PipelinedBatcher(net, 4, depth=2)
    out = []
    with batcher:
        for it in items:
            out += batcher.add(it)
        out += batcher.flush()
    assert len(seen) == 15 and max(seen) == 2  # 60 frames in batches of 4, never more than 2 ahead
    assert [o[0] for o in out] == items


@pytest.mark.parametrize("dispatch", ["sync", "async"])
def test_an_error_in_the_backbone_is_raised_in_the_caller_and_the_rerun_completes(videos, tmp_path, dispatch):
    out = tmp_path / "f.h5"
    with pytest.raises(RuntimeError, match="device lost"):
        run_extract(videos, out, weights="random", backbone=LIGHT, batch_frames=8, shard_clips=1,
                    network=PixelMeans(fail_on_call=4), dispatch=dispatch)
    assert not backbone_threads()
    s = run_extract(videos, out, weights="random", backbone=LIGHT, batch_frames=8, shard_clips=1,
                    network=PixelMeans())
    assert s.clips_skipped + s.clips_ok + s.clips_failed == 4
    with open_store(out) as st:
        assert st.video.tolist() == ["NonViolence/NV_000.mp4", "NonViolence/NV_001.mp4",
                                               "Violence/V_000.mp4"]


@pytest.mark.parametrize("dispatch", ["sync", "async"])
def test_ctrl_c_commits_the_finished_clips_and_the_rerun_gives_the_one_shot_store(videos, tmp_path, dispatch):
    whole = tmp_path / "whole.h5"
    run_extract(videos, whole, weights="random", backbone=LIGHT, batch_frames=8, network=PixelMeans())

    def ctrl_c_after_two(summary, todo):  # the caller's thread, where a real Ctrl-C lands
        if summary.clips_ok == 2:
            raise KeyboardInterrupt

    out = tmp_path / "f.h5"
    with pytest.raises(KeyboardInterrupt):
        run_extract(videos, out, weights="random", backbone=LIGHT, batch_frames=8,
                    network=PixelMeans(), progress=ctrl_c_after_two, dispatch=dispatch)
    assert not backbone_threads()
    with open_store(out) as st:  # the interrupted run's finished clips were committed
        assert st.video.tolist() == ["NonViolence/NV_000.mp4", "NonViolence/NV_001.mp4"]
        assert [f.video for f in st.failures] == ["NonViolence/NV_000b.mp4"]
    s = run_extract(videos, out, weights="random", backbone=LIGHT, batch_frames=8, network=PixelMeans())
    assert (s.clips_skipped, s.clips_ok) == (3, 1)
    a, b = store_content(whole), store_content(out)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2]) and a[3] == b[3]


@pytest.mark.parametrize("dispatch", ["sync", "async"])
def test_a_real_sigint_while_the_backbone_runs_commits_the_clips_whose_features_are_back(videos, tmp_path,
                                                                                           dispatch):
    calls = []

    def net(frames):  # 8-frame batches: the first clip's 20 frames are back after the 3rd call
        calls.append(len(frames))
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, wherever the caller's thread is now
        return PixelMeans()(frames)

    out = tmp_path / "f.h5"
    # SIGINT raises KeyboardInterrupt, as in a terminal (a pytest-xdist worker ignores it)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_extract(videos, out, weights="random", backbone=LIGHT, batch_frames=8, network=net,
                        dispatch=dispatch)
    finally:
        signal.signal(signal.SIGINT, before)
    assert not backbone_threads()
    with open_store(out) as st:
        assert st.video.tolist()[:1] == ["NonViolence/NV_000.mp4"]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm to look into")
def test_ctrl_c_with_decode_processes_leaves_no_shared_memory_block(videos, tmp_path):
    def ours():  # this process's blocks: other test processes may extract at the same time
        return {p.name for p in Path("/dev/shm").glob(f"{SHM_PREFIX}{os.getpid()}_*")}

    before = ours()

    def ctrl_c_at_first_clip(summary, todo):
        if summary.clips_ok == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        run_extract(videos, tmp_path / "f.h5", weights="random", backbone=LIGHT, batch_frames=8,
                    workers=1, network=PixelMeans(), progress=ctrl_c_at_first_clip, dispatch="async")
    assert caught.tb is not None  # the run's frames (its decode stream too) are still alive here
    assert ours() <= before
    with open_store(tmp_path / "f.h5") as st:
        assert st.video.tolist() == ["NonViolence/NV_000.mp4"]
