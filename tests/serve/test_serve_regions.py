"""`vd serve --watch FILE --mask … --zone …`: `/v1/sources` gives each source's masks and zones
as fractions of the picture (pixel polygons divided by the decoded frame's size), and the
dashboard, in headless Chromium, draws them over the incident's snapshot. A real server on a
real file (320×240 synthetic clip), the untrained run (threshold 1e-6: every window raises)."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import media

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hostile"))
from serveproc import TOKEN, Serve, untrained_run, wait_for  # noqa: E402

pytest.importorskip("httpx")

MASK = "0.75,0 1,0 1,0.25 0.75,0.25"          # fractions: as given
ZONE = "0,0 160,0 160,120 0,120"              # pixels of the 320×240 frame: the top-left quarter


@pytest.fixture(scope="module")
def server(tmp_path_factory, long_clip):
    run = untrained_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("serve-regions")
    srv = Serve(run, root, "--watch", long_clip[0], "--mask", MASK, "--zone", ZONE,
                "--threshold", "1e-6", "--clips", root / "clips", "--status-every", "0")
    try:
        srv.wait_ready()
        assert wait_for(lambda: any(e["state"] == "ended" and e.get("snapshot")
                                    for e in srv.http.get("/v1/events").json()["events"]), 180), \
            srv.text()
        yield srv
    finally:
        assert srv.stop() in (0, -signal.SIGTERM), srv.text()


def test_sources_give_masks_and_zones_as_fractions(server):
    (src,) = server.http.get("/v1/sources").json()["sources"]
    assert src["regions"] == {"masks": [[[0.75, 0.0], [1.0, 0.0], [1.0, 0.25], [0.75, 0.25]]],
                              "zones": [[[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]]}


@pytest.mark.chromium
def test_the_dashboard_draws_them_over_the_snapshot(server, tmp_path):
    exe = media.have_chromium()
    (e,) = [e for e in server.http.get("/v1/events").json()["events"] if e.get("snapshot")][:1]
    p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000",
                        "--dump-dom", f"{server.url}/#token={TOKEN}"],
                       capture_output=True, text=True, timeout=120)
    item = p.stdout.split(f'data-id="{e["id"]}"', 1)[1].split("</li>", 1)[0]
    snap = item.split('class="snap"', 1)[1].split("</svg>", 1)[0]
    assert 'class="snapshot" src="blob:' in snap
    assert '<polygon class="mask" points="0.75,0 1,0 1,0.25 0.75,0.25">' in snap, snap
    assert '<polygon class="zone" points="0,0 0.5,0 0.5,0.5 0,0.5">' in snap, snap
