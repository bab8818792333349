"""`vd serve`: a clip's decoded size and length are capped from its container header, before
a frame is decoded (--max-pixels, default 3840×2160; --max-seconds, default 600 s), each a
413 with a one-line error, and the server's memory does not move. Before: a real two-frame
16000×16000 H.264 clip of 752 KB took the server from 1.57 to 4.18 GB, an 8192² one +720 MB.
"""

import subprocess

import pytest

import media
from serveproc import MAX_SECONDS, one_line_error, shared_server, upload, write_mjpg

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def _h264_square(side: int):
    """Two grey frames of side×side in H.264/MP4 (ffmpeg; built once into the media cache:
    making it takes ~3 GB for a moment)."""
    def make(tmp):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c=gray:s={side}x{side}:r=25", "-frames:v", "2", "-c:v", "libx264",
                        "-preset", "ultrafast", str(tmp)], check=True, timeout=300)
    return media.build(media.cache_root() / "hostile-serve" / f"h264-{side}.mp4", make)


def _mjpg_square(side: int):
    """Two frames of side×side in MJPG/AVI (OpenCV only), built once into the media cache."""
    import cv2
    import numpy as np

    def make(tmp):
        w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (side, side))
        frame = np.full((side, side, 3), 128, np.uint8)
        for _ in range(2):
            w.write(frame)
        w.release()
    return media.build(media.cache_root() / "hostile-serve" / f"mjpg-{side}.avi", make)


@pytest.mark.ffmpeg
def test_16000_square_h264_refused_before_decoding(server):
    assert media.have_ffmpeg()
    clip = _h264_square(16000)
    base = server.reset_peak()
    err = one_line_error(upload(server.http, clip), 413)
    assert err == ("frames of 16000x16000 are larger than this server's limit of 8294400 "
                   "pixels (--max-pixels)")
    print(f"16000x16000: peak growth {server.peak_growth_mb(base):.1f} MB")
    assert server.peak_growth_mb(base) < 64
    assert not server.leftovers()


def test_8192_square_mjpg_refused_before_decoding(server):
    clip = _mjpg_square(8192)
    base = server.reset_peak()
    assert "frames of 8192x8192 are larger" in one_line_error(upload(server.http, clip), 413)
    print(f"8192x8192: peak growth {server.peak_growth_mb(base):.1f} MB")
    assert server.peak_growth_mb(base) < 64


@pytest.mark.ffmpeg
def test_4k_is_within_the_default_limit(server, ffmpeg_clips):
    r = upload(server.http, ffmpeg_clips["big4k.mp4"], tta="false")  # 3840×2160, 5 frames
    assert r.status_code == 200, r.text
    assert r.json()["n_frames"] == 5


def test_a_clip_longer_than_max_seconds_is_refused(server, tmp_path):
    long = write_mjpg(tmp_path / "long.avi", MAX_SECONDS + 100, 5.0)
    err = one_line_error(upload(server.http, long), 413)
    assert err == (f"the clip lasts {MAX_SECONDS + 100:.1f} s, longer than this server's limit "
                   f"of {MAX_SECONDS:g} s (--max-seconds)")
