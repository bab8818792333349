"""Seeking to sampled frames gives what sequential decoding gives, or is not used.

Every clip of the test media is read twice, ``seek="always"`` and ``seek="never"``
(sequential, the truth); the two must agree exactly: frame count, which frames (the numbers
read back from the pixels), their pixels bit for bit, times, duration and notes. The seek path
must be *taken* on the clips that prove it (so these tests can fail) and refused on those that
do not (variable frame rate, lying or missing frame count, MPEG-TS, damaged or truncated files).
"""

from __future__ import annotations

import numpy as np
import pytest

import media
from frame_numbers import read_frame_number
from vd.extract import decode
from vd.extract.decode import SEEK_CODECS, DecodeError, read_frames
from vd.extract.frames import FrameSource
from vd.extract.sampling import sample_indices

SIZE = 112  # enough for the frame-number grid; cheaper than 224

PLANS = {
    "20 midpoints": lambda n: sample_indices(n, 20),
    "5 midpoints": lambda n: sample_indices(n, 5),
    "ends and middle, unsorted, repeated": lambda n: [n - 1, 0, n // 2, n // 2],
}

SEEKS = {"h264.mp4", "h264.mkv", "mp4v.mp4", "mjpg.avi", "vp9.webm", "gray.avi", "rotated90.mp4",
         "short5.mp4", "big4k.mp4"}
SEQUENTIAL = {"vfr.mp4", "wrong_count.mp4", "raw.h264", "clip.ts", "damaged_middle.mp4",
              "truncated.avi", "short1.mp4"}
FAIL = {"audio_only.mp4", "truncated_moov.mp4", "no_frames.mp4"}


def _read(path, plan, seek):
    try:
        return read_frames(path, plan, SIZE, seek=seek)
    except DecodeError as e:
        return str(e)


def assert_same(a, b, where):
    assert a.n_frames == b.n_frames, where
    assert np.array_equal(a.indices, b.indices), where
    assert np.array_equal(a.frames, b.frames), where  # bit for bit: the same decoded frame
    assert np.array_equal(a.times, b.times), where
    assert a.duration_s == b.duration_s and a.notes == b.notes, where
    assert (a.width, a.height, a.fps) == (b.width, b.height, b.fps), where


@pytest.mark.ffmpeg
@pytest.mark.parametrize("gap", [0, 12])  # seek to every wanted frame / walk up to 12 forward
def test_every_ffmpeg_clip_seeks_exactly_or_not_at_all(ffmpeg_clips, gap, monkeypatch):
    monkeypatch.setattr(decode, "SEEK_GAP", gap)
    assert SEEKS | SEQUENTIAL | FAIL == set(ffmpeg_clips)
    tags = set()
    for name, path in sorted(ffmpeg_clips.items()):
        for what, plan in (PLANS.items() if gap == 0 else [("20 midpoints", PLANS["20 midpoints"])]):
            a, b = _read(path, plan, "always"), _read(path, plan, "never")
            where = f"{name}, {what}"
            if name in FAIL:
                assert isinstance(a, str) and a == b, where
                continue
            assert_same(a, b, where)
            assert a.method == ("seek" if name in SEEKS else "sequential"), where
            if name in SEEKS:
                # the numbers in the pixels: exactly the frames asked for (rotated90 is turned
                # upright by OpenCV, so its numbers read back too)
                assert [read_frame_number(f[..., ::-1]) for f in a.frames] == a.indices.tolist(), where
                with FrameSource(path) as src:
                    tags.add(src.fourcc)
    assert tags == SEEK_CODECS  # every codec on the allow-list is proven here


def test_opencv_written_clips_agree(opencv_clips):
    for name, path in sorted(opencv_clips.items()):
        plan = PLANS["20 midpoints"]
        a, b = _read(path, plan, "always"), _read(path, plan, "never")
        if isinstance(b, str):
            assert a == b, name
        else:
            assert_same(a, b, name)


def test_auto_seeks_only_long_clips(numbered_clip, media_cache, monkeypatch):
    short = read_frames(numbered_clip, PLANS["20 midpoints"], SIZE)
    assert short.method == "sequential"
    long = media.cfr_numbered(1500, root=media_cache)  # 60 s at 25 fps, GOP 25
    assert read_frames(long, PLANS["5 midpoints"], SIZE).method == (
        "seek" if decode.SEEK_MIN_FRAMES <= 1500 else "sequential")
    monkeypatch.setattr(decode, "SEEK_MIN_FRAMES", 1500)  # the threshold is tuning; the path is not
    monkeypatch.setattr(decode, "SEEK_GAP", 48)
    a = read_frames(long, PLANS["20 midpoints"], SIZE)
    b = read_frames(long, PLANS["20 midpoints"], SIZE, seek="never")
    assert a.method == "seek"
    assert_same(a, b, "cfr1500")
    assert [read_frame_number(f[..., ::-1]) for f in a.frames] == sample_indices(1500, 20).tolist()


def test_variable_frame_rate_is_never_seeked(media_cache):
    path = media.vfr_numbered(root=media_cache)
    a = read_frames(path, PLANS["20 midpoints"], SIZE, seek="always")
    b = read_frames(path, PLANS["20 midpoints"], SIZE, seek="never")
    assert a.method == "sequential"
    assert_same(a, b, "vfr")


def test_seek_argument_is_checked(numbered_clip):
    with pytest.raises(ValueError):
        read_frames(numbered_clip, PLANS["5 midpoints"], SIZE, seek="sometimes")


@pytest.mark.slow
def test_extract_rows_equal_sequential(tmp_path, media_cache, numbered_clip, monkeypatch):
    """`vd extract` on a long clip (seeked) and a short one: the same rows as with seeking off.

    Same frames, so the same pixels and (same batch-mates) features within the project's
    tolerance (tests/features_close.py); the frame numbers and counts exactly."""
    import shutil

    from features_close import assert_same_rows
    from vd.cli.main import main
    from vd.data.store import open_store

    videos = tmp_path / "v"
    (videos / "Violence").mkdir(parents=True)
    (videos / "NonViolence").mkdir()
    shutil.copy(media.cfr_numbered(1500, root=media_cache), videos / "Violence" / "long.mp4")
    shutil.copy(media.cfr_numbered(300, root=media_cache), videos / "NonViolence" / "short.mp4")
    args = ["--backbone", "mobilenet_v3_small", "--weights", "random", "--seed", "1", "--quiet",
            "--augment", "2"]
    monkeypatch.setattr(decode, "SEEK_MIN_FRAMES", 1500)  # the 1500-frame clip seeks, 300 does not
    used = []
    real = decode._seek_pass
    monkeypatch.setattr(decode, "_seek_pass", lambda *a, **k: used.append(r := real(*a, **k)) or r)
    assert main(["extract", str(videos), str(tmp_path / "seek.h5"), *args]) == 0
    assert len(used) == 1 and used[0] is not None  # the long clip seeked; the short one not tried
    monkeypatch.setattr(decode, "SEEK_CODECS", frozenset())
    assert main(["extract", str(videos), str(tmp_path / "seq.h5"), *args]) == 0
    with open_store(tmp_path / "seek.h5") as a, open_store(tmp_path / "seq.h5") as b:
        assert a.n == 4 and sorted(a.n_frames.tolist()) == [300, 300, 1500, 1500]
        assert_same_rows(a, b)
