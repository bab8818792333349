"""`vd serve` answers ``GET /v1/events?source=&since=&until=&review=&limit=&cursor=`` from the
event database (SQLite in the clips folder): an old events.jsonl is imported once, pages follow
the cursor without repeating or losing an incident, a review is stored in the database, and a
bad parameter is one line (422). A real server process."""

import json
import shutil

import pytest

from serveproc import Serve, one_line_error, untrained_run

pytest.importorskip("httpx")


def _old_events(clips, clip):
    lines = []
    for i in range(5):
        ident, src = f"old-{i}", "a" if i % 2 == 0 else "b"
        shutil.copyfile(clip, clips / f"{ident}.mp4")
        base = {"source": src, "id": ident, "start_s": float(i), "peak": 0.9, "peak_s": i + 0.5,
                "threshold": 0.5, "start_time": f"2026-01-01T00:00:0{i}.000+00:00",
                "snapshot": None, "clip": str(clips / f"{ident}.mp4")}
        lines.append(json.dumps(dict(base, type="start", end_s=None)))
        lines.append(json.dumps(dict(base, type="end", end_s=i + 1.0, reason="cooldown")))
    (clips / "events.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory, opencv_clips):
    run = untrained_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("serve-eventdb")
    clips = root / "clips"
    clips.mkdir()
    _old_events(clips, opencv_clips["mp4v.mp4"])
    srv = Serve(run, root, "--watch", opencv_clips["mp4v.mp4"], "--threshold", "0.99",
                "--clips", clips, "--timeout", "5", "--backoff-cap", "2")
    srv.wait_ready()
    srv.clips = clips
    yield srv
    srv.stop()


def test_events_are_paged_from_the_database(server):
    assert (server.clips / "events.db").is_file()
    r = server.http.get("/v1/events", params={"source": "a", "limit": 2})
    assert r.status_code == 200, r.text
    first = r.json()
    assert [e["id"] for e in first["events"]] == ["old-4", "old-2"]  # newest start first
    assert first["cursor"] and first["now"] > 0
    assert all(e["state"] == "ended" and e["clip"] == f"/v1/events/{e['id']}/clip"
               for e in first["events"])
    second = server.http.get("/v1/events", params={"source": "a", "limit": 2,
                                                   "cursor": first["cursor"]}).json()
    assert [e["id"] for e in second["events"]] == ["old-0"] and second["cursor"] is None
    b = server.http.get("/v1/events", params={"source": "b"}).json()["events"]
    assert sorted(e["id"] for e in b) == ["old-1", "old-3"]
    clip = server.http.get("/v1/events/old-3/clip")
    assert clip.status_code == 200 and clip.content == (server.clips / "old-3.mp4").read_bytes()


def test_a_review_is_stored_and_filters(server):
    before = server.http.get("/v1/events").json()["now"]
    r = server.http.post("/v1/events/old-1/review", json={"label": "false alarm"})
    assert r.status_code == 200, r.text
    got = server.http.get("/v1/events", params={"review": "nonviolent"}).json()["events"]
    assert [e["id"] for e in got] == ["old-1"] and got[0]["review"] == "nonviolent"
    changed = server.http.get("/v1/events", params={"since": before}).json()["events"]
    assert "old-1" in [e["id"] for e in changed] and "old-3" not in [e["id"] for e in changed]
    assert "old-1,nonviolent" in (server.clips / "labels.csv").read_text().replace(".mp4", "")


@pytest.mark.parametrize("params, says", [
    ({"cursor": "garbage!"}, "cursor"),
    ({"limit": 0}, "limit"),
    ({"review": "maybe"}, "review"),
    ({"until": "yesterday"}, "until"),
])
def test_bad_parameters_are_one_line(server, params, says):
    assert says in one_line_error(server.http.get("/v1/events", params=params), 422)


def test_serve_watches_the_cameras_of_a_config_file(tmp_path_factory, opencv_clips):
    run = untrained_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("serve-config")
    cfg = root / "cameras.yaml"
    cfg.write_text(f"defaults:\n  threshold: 0.99\ncameras:\n"
                   f"  - name: door\n    url: {opencv_clips['mp4v.mp4']}\n"
                   f"  - name: yard\n    url: {opencv_clips['mp4v.mp4']}\n    enabled: false\n")
    srv = Serve(run, root, "--config", cfg, "--timeout", "5", "--backoff-cap", "2")
    try:
        srv.wait_ready()
        names = [s["name"] for s in srv.http.get("/v1/sources").json()["sources"]]
        assert names == ["door"]
        assert (root / "vd-incidents" / "events.db").is_file()  # the default clips folder
    finally:
        srv.stop()
