"""`vd serve`: a malformed line of CLIPS/events.jsonl is skipped with one warning and the
server starts; only regular single-link files inside the clips folder are served (a hard
link or a symbolic link to a file outside is 404). Before: one line with ``"id": {"a": 1}``
and the server no longer started (internal error, exit 3); a hard link was served."""

import pytest

from serveproc import shared_server

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def test_malformed_lines_skipped_with_one_warning(server):
    events = {e["id"]: e for e in server.http.get("/v1/events").json()["events"]}
    assert {"good-1", "hard-1", "sym-1"} <= set(events)
    assert "bad-clip" not in events
    warnings = [ln for ln in server.text().splitlines() if "malformed line" in ln]
    assert len(warnings) == 1, server.text()
    assert "skipped 5 malformed line(s) (first: line 1: no text id" in warnings[0]


def test_only_regular_single_link_files_inside_the_folder_are_served(server):
    outside = server.prepared["outside"]
    assert outside.stat().st_nlink == 2  # the hard link in the clips folder
    r = server.http.get("/v1/events/good-1/clip")
    assert r.status_code == 200 and r.content == (server.root / "clips" / "good-1.mp4").read_bytes()
    for ident in ("hard-1", "sym-1"):
        r = server.http.get(f"/v1/events/{ident}/clip")
        assert r.status_code == 404, (ident, r.status_code)
        assert r.json() == {"error": "no such clip (or the incident has not ended)"}
