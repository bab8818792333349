"""vd/extract/frames.py: the frame source's times against ffprobe, its grab/retrieve
discipline, and a live MPEG-TS stream over TCP on the loopback interface."""

import socket
import time

import numpy as np
import pytest

import media
from vd.extract.frames import DecodeError, FrameSource, parse_target
from frame_numbers import read_frame_number


def times_and_numbers(target, every=1, **kw):
    with FrameSource(target, **kw) as src:
        out = [(f.time_s, read_frame_number(f.rgb(160)) if f.index % every == 0 else None)
               for f in src]
        return [t for t, _ in out], [n for _, n in out], src


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name", ["h264.mp4", "vfr.mp4", "h264.mkv", "vp9.webm", "clip.ts"])
def test_times_are_ffprobes_presentation_times(ffmpeg_clips, name):
    path = ffmpeg_clips[name]
    times, _, src = times_and_numbers(path, every=7)
    pts = np.array(media.ffprobe_frame_times(path))
    assert len(times) == len(pts) and src.timing == "pts" and src.notes == []
    assert np.allclose(times, pts - pts[0], atol=1e-6)  # seconds from the stream's start


@pytest.mark.ffmpeg
def test_variable_rate_times_and_duration(media_cache):
    path = media.vfr_numbered(media_cache)
    times, numbers, src = times_and_numbers(path, every=1)
    assert np.allclose(times, media.ffprobe_frame_times(path), atol=1e-6)
    assert np.allclose(times, media.vfr_pts(), atol=1e-6)
    assert numbers == list(range(105))          # frame k in order, each with its own time
    assert src.duration_s == pytest.approx(times[-1] + 0.2)
    # OpenCV's average rate says something else: frame number / fps puts the last frame early
    assert times[-1] - 104 / src.fps > 0.3


@pytest.mark.ffmpeg
def test_a_stream_without_timestamps_falls_back_to_the_frame_rate(ffmpeg_clips):
    times, _, src = times_and_numbers(ffmpeg_clips["raw.h264"], every=10)
    assert src.fps == pytest.approx(25.0) and src.timing == "fps" and src.notes
    assert np.allclose(times, np.arange(50) / 25.0)


def test_only_the_frame_just_grabbed_can_be_retrieved(numbered_clip):
    with FrameSource(numbered_clip) as src:
        first = src.grab()
        second = src.grab()
        assert read_frame_number(second.rgb(64)) == 1
        with pytest.raises(RuntimeError, match="gone"):
            first.rgb(64)
        assert src.frame_count_guess == 50 and src.fps == pytest.approx(25.0)
    assert src.grab() is None  # closed


def test_targets_are_files_devices_or_live_urls(tmp_path):
    assert parse_target(0) == ("device", 0) and parse_target("2") == ("device", 2)
    assert parse_target("rtsp://cam/x")[0] == "url" and parse_target("tcp://1.2.3.4:5")[0] == "url"
    assert parse_target(tmp_path / "a.mp4")[0] == "file"
    with pytest.raises(DecodeError, match="scheme"):
        parse_target("ftp://host/x.mp4")
    with pytest.raises(DecodeError, match="cannot open") as e:
        FrameSource(tmp_path / "missing.mp4")
    assert "\n" not in str(e.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ffmpeg
def test_nothing_listening_is_a_one_line_error():
    with pytest.raises(DecodeError) as e:
        FrameSource(f"tcp://127.0.0.1:{_free_port()}", open_timeout_s=3, read_timeout_s=3)
    assert "\n" not in str(e.value) and "stream" in str(e.value)


@pytest.mark.ffmpeg
def test_live_mpegts_over_tcp(media_cache):
    clip = media.cfr_numbered(75, 25.0, media_cache)     # 3 s, served in real time
    port = _free_port()
    server = media.serve_mpegts_tcp(clip, port)
    try:
        src = None
        for _ in range(50):  # the server needs a moment to listen
            try:
                src = FrameSource(f"tcp://127.0.0.1:{port}", open_timeout_s=5, read_timeout_s=5)
                break
            except DecodeError:
                if server.poll() is not None:
                    pytest.fail(server.stderr.read().decode())
                time.sleep(0.1)
        assert src is not None and src.live
        got = []
        with src:
            for f in src:
                got.append((f.index, f.time_s, read_frame_number(f.rgb(160))))
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    idx, times, numbers = map(np.array, zip(*got))
    assert len(got) == 75 and numbers.tolist() == list(range(75))
    assert np.allclose(times - times[0], np.arange(75) / 25.0, atol=2e-3)   # the stream's pts
    assert np.all(np.diff(times) > 0)
