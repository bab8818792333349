"""vd/extract/clips.py plumbing: decoding ahead (thread or processes) and cross-clip batches."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vd.data.discover import discover
from vd.data.store import Failure
from vd.extract.clips import SHM_PREFIX, FrameBatcher, decode_clip, decoded_stream


@pytest.fixture(scope="module")
def clips(tmp_path_factory, synthetic_set):
    root = tmp_path_factory.mktemp("stream")
    shutil.copytree(synthetic_set, root / "v")
    (root / "v" / "Violence" / "broken.mp4").write_bytes(b"\x00" * 100)
    return discover(root / "v")


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_keeps_order_and_records_bad_files(clips, workers):
    items = list(decoded_stream(clips, augment=2, seed=1, workers=workers))
    assert [i.video if isinstance(i, Failure) else i.clip.video for i in items] == [c.video for c in clips]
    bad = [i for i in items if isinstance(i, Failure)]
    assert [b.video for b in bad] == ["Violence/broken.mp4"] and "cannot open" in bad[0].message
    good = [i for i in items if not isinstance(i, Failure)]
    for item in good:
        ref = decode_clip(item.clip, augment=2, seed=1)
        assert np.array_equal(item.pixels, ref.pixels)  # same pixels whichever way it was decoded
        assert item.pixels.shape == (40, 224, 224, 3)
        assert item.variants.tolist() == [0, 1]


def test_augmented_variant_changes_pixels_within_the_recipe(clips):
    item = decode_clip(clips[0], augment=2, seed=1)
    base, aug = item.pixels[:20] / 255.0, item.pixels[20:] / 255.0
    assert not np.array_equal(base, aug)
    jittered = item.frame_index[1]
    assert np.all(np.abs(jittered.astype(int) - item.frame_index[0]) <= 2)


class SumBackbone:
    """A stand-in feature function (the batching is under test, not VGG16): sums pixels."""

    def __init__(self):
        self.calls = []

    def __call__(self, frames):
        self.calls.append(len(frames))
        return frames.reshape(len(frames), -1).sum(axis=1, keepdims=True).astype(np.float32)


def test_frame_batcher_spans_clips_and_returns_each_clips_own_features(clips):
    items = [i for i in decoded_stream(clips[:4], augment=1, seed=0) if not isinstance(i, Failure)]
    bb = SumBackbone()
    batcher = FrameBatcher(bb, batch=32)
    out = []
    for it in items:
        out += batcher.add(it)
    out += batcher.flush()
    assert [o[0].clip.video for o in out] == [i.clip.video for i in items]
    assert bb.calls[:-1] == [32] * (len(bb.calls) - 1) and sum(bb.calls) == 20 * len(items)
    for item, feats in out:
        assert np.allclose(feats[:, 0], item.pixels.reshape(20, -1).sum(axis=1), rtol=1e-5)


def our_blocks():
    """Shared-memory blocks named as this process's decode workers name them (other test
    processes may run extractions of their own at the same time)."""
    return {p.name for p in Path("/dev/shm").glob(f"{SHM_PREFIX}{os.getpid()}_*")}


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm to look into")
def test_shared_memory_blocks_are_unlinked_when_the_consumer_stops_early(clips):
    before = our_blocks()
    stream = decoded_stream(clips, augment=1, seed=0, workers=2)
    first = next(stream)  # 4 clips asked for ahead (2 per worker), one taken
    assert first.pixels.shape == (20, 224, 224, 3)
    stream.close()  # what an interrupted run does to the stream
    assert our_blocks() <= before


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm to look into")
def test_a_worker_killed_after_filling_its_block_fails_the_clip_and_leaves_no_block(clips, monkeypatch):
    before = our_blocks()
    monkeypatch.setenv("VD_FAULT", "shm-filled")  # each decode process SIGKILLs itself there
    items = list(decoded_stream(clips[:2], augment=1, seed=0, workers=1))
    assert [i.message for i in items] == ["the decoder process crashed on this file"] * 2
    assert our_blocks() <= before


SMALL_SHM = """
import sys
import numpy as np
from multiprocessing import shared_memory
from vd.data.discover import discover
from vd.extract.clips import _reserve, decode_clip, decoded_stream

if __name__ == "__main__":
    block = shared_memory.SharedMemory(create=True, size=64 << 20)  # more than /dev/shm holds
    assert not _reserve(block, 64 << 20)  # refused, where writing to it would SIGBUS
    block.close()
    block.unlink()
    clips = discover(sys.argv[1])[:2]
    items = list(decoded_stream(clips, augment=2, seed=1, workers=1))  # 24 MB of float32 a clip
    for it in items:
        assert np.array_equal(it.pixels, decode_clip(it.clip, augment=2, seed=1).pixels), it
    print("same pixels", len(items))
"""


def _can_mount_a_private_dev_shm() -> bool:
    """Root with the right to make a mount namespace (a container without CAP_SYS_ADMIN lacks it)."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("mount")):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_a_private_dev_shm(),
                    reason="a /dev/shm of its own needs root allowed to unshare -m and mount")
def test_clips_too_big_for_a_small_dev_shm_are_pickled_instead(clips, tmp_path):
    script = tmp_path / "small_shm.py"
    script.write_text(SMALL_SHM)
    mount = 'mount -t tmpfs -o size=16m tmpfs /dev/shm && exec "$0" "$@"'  # less than a clip
    proc = subprocess.run(["unshare", "-m", "sh", "-c", mount, sys.executable, str(script),
                           str(clips[0].path.parents[1])], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert "same pixels 2" in proc.stdout
