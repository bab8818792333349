"""`vd serve`: window and stride are checked against the uploaded clip before anything is
decoded (finite; window ≥ 20 frames at the clip's rate and ≤ --max-seconds; stride ≥ 0.1 s
and one frame; at most 1000 windows a request), each refusal a 422 with a one-line error,
and the server's memory does not move. Before: ``window=1 stride=1e-300`` never answered
while the server grew ~115 MB/s; ``window=0.0002`` made 120,000 windows (3.3 GB peak)."""

import pytest

from serveproc import one_line_error, shared_server, upload, write_mjpg

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def test_window_and_stride_refused_unless_the_clip_allows_them(server, opencv_clips):
    clip = opencv_clips["mp4v.mp4"]  # 2 s, 25 fps
    base = server.reset_peak()
    cases = {
        ("1", "1e-300"): "stride must be between 0.1 s and 400 s, not 1e-300",
        ("0.0002", None): "window must be between 0.8 s (20 frames at 25 fps) and 400 s, "
                          "not 0.0002",
        ("1e9", None): "window must be between 0.8 s (20 frames at 25 fps) and 400 s, not 1e+09",
        ("inf", None): "not inf",
        ("nan", None): "not nan",
        ("-1", None): "not -1",
        ("1", "inf"): "stride must be between 0.1 s and 400 s, not inf",
        ("1", "0"): "stride must be between 0.1 s and 400 s, not 0",
        (None, "1"): "stride needs window",
    }
    for (window, stride), want in cases.items():
        params = {k: v for k, v in (("window", window), ("stride", stride)) if v is not None}
        assert want in one_line_error(upload(server.http, clip, **params), 422), params
    print(f"peak growth over 9 refusals: {server.peak_growth_mb(base):.1f} MB")
    assert server.peak_growth_mb(base) < 64
    # at the bounds it is scored
    r = upload(server.http, clip, window="0.8", stride="0.1", tta="false")
    assert r.status_code == 200, r.text
    assert len(r.json()["windows"]) == 13  # as counted before scoring: (2 - 0.8) / 0.1 + 1
    assert not server.leftovers()


def test_windows_per_request_are_capped(server, tmp_path):
    long = write_mjpg(tmp_path / "long.avi", 300.0, 5.0)  # 300 s at 5 fps: window ≥ 4 s
    r = upload(server.http, long, window="4", stride="0.2")
    err = one_line_error(r, 422)
    assert "makes 1481 windows" in err and "the most per request is 1000" in err
    r = upload(server.http, long, window="4", stride="0.1")  # below one frame interval
    assert "stride must be between 0.2 s" in one_line_error(r, 422)
