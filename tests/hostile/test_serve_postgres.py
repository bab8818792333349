"""`vd serve --db postgresql://…` answers ``/v1/events`` (filters, pages, reviews) exactly as
with the SQLite database: the same events.jsonl imported into both, the same reviews posted to
both, every answer compared. Two real server processes, one on the PostgreSQL server the tests
start (tests/pgserver.py)."""

import json
import shutil
import signal
import uuid

import pytest

from serveproc import Serve, untrained_run

pytest.importorskip("httpx")

SOURCES = ("a", "b", "c")


def _events(clips, clip) -> None:
    """Nine incidents of three cameras: ended ones with clips, one still open, two starting in
    the same second (the id breaks the tie), one with an end but no clip."""
    lines = []
    for i in range(9):
        ident, src = f"inc-{i}", SOURCES[i % 3]
        second = min(i, 7)  # inc-7 and inc-8 start at the same time
        clip_path = None
        if i != 5:
            clip_path = str(clips / f"{ident}.mp4")
            shutil.copyfile(clip, clip_path)
        base = {"source": src, "id": ident, "start_s": float(i), "peak": 0.5 + i / 20,
                "peak_s": i + 0.5, "threshold": 0.5, "alarm": {"k": 2, "n": 3, "cooldown": 4.0},
                "start_time": f"2026-01-01T00:00:0{second}.000+00:00", "snapshot": None,
                "clip": clip_path}
        lines.append(json.dumps(dict(base, type="start", end_s=None)))
        if i != 4:  # inc-4 never ended
            lines.append(json.dumps(dict(base, type="end", end_s=i + 1.0, reason="cooldown",
                                         end_time=f"2026-01-01T00:00:0{second}.900+00:00")))
    (clips / "events.jsonl").write_text("\n".join(lines) + "\n")


def _server(run, root, clip, cfg, *db):
    clips = root / "clips"
    clips.mkdir(parents=True)
    _events(clips, clip)
    return Serve(run, root, "--config", cfg, "--clips", clips, "--timeout", "5",
                 "--backoff-cap", "2", *db)


def _answer(srv, **params) -> dict:
    r = srv.http.get("/v1/events", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    events = [{k: v for k, v in e.items() if k != "updated"} for e in body["events"]]
    return {"events": events, "more": body.get("cursor") is not None}


def _pages(srv, **params) -> list:
    """Every page of a query, following the cursor (the ids of each page)."""
    out, cursor = [], None
    for _ in range(20):
        body = srv.http.get("/v1/events", params=dict(params, cursor=cursor or "")).json()
        out.append([e["id"] for e in body["events"]])
        cursor = body["cursor"]
        if cursor is None:
            return out
    raise AssertionError(f"the cursor never ended: {out}")


@pytest.mark.postgresql
def test_postgresql_answers_events_like_sqlite(pg_server, tmp_path_factory, opencv_clips):
    run = untrained_run(tmp_path_factory)
    clip = opencv_clips["mp4v.mp4"]
    root = tmp_path_factory.mktemp("serve-pg")
    cfg = root / "cameras.yaml"  # threshold 1: the watched camera adds no incident of its own
    cfg.write_text(f"cameras:\n  - name: cam\n    url: {clip}\n    threshold: 1.0\n")
    pg_url = pg_server.fresh_db("serve" + uuid.uuid4().hex[:10])
    pg = _server(run, root / "pg", clip, cfg, "--db", pg_url)
    sq = _server(run, root / "sqlite", clip, cfg)  # the default: CLIPS/events.db
    try:
        pg.wait_ready()
        sq.wait_ready()
        assert (root / "sqlite" / "clips" / "events.db").is_file()
        assert not (root / "pg" / "clips" / "events.db").exists()
        assert "event database postgresql" in pg.text() and "event database sqlite" in sq.text()
        before = max(pg.http.get("/v1/events").json()["now"], sq.http.get("/v1/events").json()["now"])
        for srv in (pg, sq):
            for ident, label in (("inc-1", "violent"), ("inc-3", "false alarm"),
                                 ("inc-8", "violent")):
                r = srv.http.post(f"/v1/events/{ident}/review", json={"label": label})
                assert r.status_code == 200, r.text
        queries = [{}, {"source": "a"}, {"source": "b", "limit": 1}, {"review": "violent"},
                   {"review": "nonviolent"}, {"review": "none", "limit": 3},
                   {"since": before}, {"until": before}, {"source": "c", "review": "none"},
                   {"source": "nobody"}]
        for q in queries:
            got = _answer(pg, **q)
            assert got == _answer(sq, **q), q
        everything = _answer(pg)["events"]
        assert [e["id"] for e in everything] == [f"inc-{i}" for i in (8, 7, 6, 5, 4, 3, 2, 1, 0)]
        assert {e["id"] for e in _answer(pg, since=before)["events"]} == {"inc-1", "inc-3", "inc-8"}
        assert _pages(pg, limit=2) == _pages(sq, limit=2)
        assert sum(_pages(pg, limit=2), []) == [e["id"] for e in everything]
        assert _pages(pg, source="a", limit=1) == [["inc-6"], ["inc-3"], ["inc-0"]]
        for bad in ({"limit": 0}, {"cursor": "garbage!"}, {"review": "maybe"}):
            a, b = pg.http.get("/v1/events", params=bad), sq.http.get("/v1/events", params=bad)
            assert a.status_code == b.status_code == 422 and a.json() == b.json(), bad
    finally:
        for srv in (pg, sq):
            assert srv.stop() in (0, -signal.SIGTERM), srv.text()
