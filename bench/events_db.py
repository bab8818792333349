"""The event database at size: ``--incidents`` (default 100,000) incidents over ``--cameras``
cameras and a year, then the queries ``GET /v1/events`` makes, timed on SQLite and on
PostgreSQL (a throwaway server from Debian's package, ``tests/pgserver.py``, fsync on).

Loaded in bulk (one transaction, rows built by :meth:`EventStore.row_of`, 10 % reviewed
violent, 10 % false alarms, 1 % still open), plus ``--records`` incidents through
:meth:`EventStore.record` one committed event at a time (what ``vd watch`` pays per event).
Each query runs ``--repeat`` times; the table gives the median and the slowest, in ms:

- ``page``: the newest 50; ``source``: one camera's newest 50; ``poll``: what changed in the
  last minute (the dashboard's ``since``); ``range``: one day of updates in the middle, 50;
  ``violent``: reviewed violent, 50; ``unreviewed``: one camera, not reviewed, 50;
  ``deep``: the 50 after 40 pages of cursors (the cursor query itself); ``get``: one by id;
- ``measure``: the first :func:`vd.live.retention.sweep` over a folder holding an empty clip
  and snapshot per incident (made once): every incident's files measured (once in a
  database's life, e.g. after importing an old events file), run once;
  ``retention``: then a sweep with nothing to delete and a budget that fits (the periodic
  cost); ``expire 1 %``: one sweep whose age limit expires the oldest 1 % (files deleted, rows
  updated), run once.

    python bench/events_db.py [--incidents 100000] [--cameras 32] [--repeat 20] [--records 200]
                              [--engines sqlite,postgresql] [--work .cache/bench-events]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from vd.live.events import iso  # noqa: E402
from vd.live.eventstore import EventStore, incidents, open_store  # noqa: E402
from vd.live.retention import Policy, sweep  # noqa: E402

T_END = 1_780_000_000.0
YEAR = 365 * 86_400.0


def rows(n: int, cameras: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        start = T_END - YEAR + YEAR * i / n + rng.random()
        cam = f"cam{rng.randrange(cameras):02d}"
        ident = f"{cam}-{i:07d}"
        ev = {"id": ident, "source": cam, "start_s": 0.0, "end_s": 8.0, "start_time": iso(start),
              "end_time": iso(start + 8), "event_time": iso(start + 8), "peak": rng.random(),
              "peak_s": 3.0, "threshold": 0.5, "alarm": {"k": 2, "n": 3, "cooldown": 4.0},
              "clip": f"{ident}.mp4", "snapshot": f"{ident}.jpg", "reason": "cooldown"}
        row = EventStore.row_of(ev, start)
        u = rng.random()
        review = "violent" if u < 0.1 else "nonviolent" if u < 0.2 else None
        row.update(state="open" if rng.random() < 0.01 else "ended", review=review,
                   reviewed_at=start + 3600 if review else None, expired_at=None,
                   created=start, updated=start + (3600 if review else 8))
        yield row


def load(store, n, cameras) -> float:
    t = time.perf_counter()
    batch = []
    with store._write() as conn:
        for r in rows(n, cameras):
            batch.append(r)
            if len(batch) == 5000:
                conn.execute(incidents.insert(), batch)
                batch = []
        if batch:
            conn.execute(incidents.insert(), batch)
    if store.dialect == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE incidents")
    else:
        with store.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t


def timed(fn, repeat):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out), max(out)


def queries(store, cameras, work: Path):
    page40 = None
    cur = None
    for _ in range(40):
        cur = store.query(limit=50, cursor=cur)["cursor"]
    page40 = cur
    mid = T_END - YEAR / 2
    return {
        "page": lambda: store.query(limit=50),
        "source": lambda: store.query(source=f"cam{cameras // 2:02d}", limit=50),
        "poll": lambda: store.query(since=T_END - 60, limit=50),
        "range": lambda: store.query(since=mid, until=mid + 86_400, limit=50),
        "violent": lambda: store.query(review="violent", limit=50),
        "unreviewed": lambda: store.query(source="cam01", review="none", limit=50),
        "deep": lambda: store.query(limit=50, cursor=page40),
        "get": lambda: store.get("cam00-0050000") or store.get("x"),
        "retention": lambda: sweep(store, work / "files", Policy(retain_days=3650, max_clips_gb=1.0),
                                   now=T_END),
    }


def make_files(folder: Path, n: int, cameras: int) -> None:
    """An empty clip and snapshot per incident of :func:`rows` (those missing: kept between
    runs, the sweeps delete some)."""
    folder.mkdir(parents=True, exist_ok=True)
    have = set(os.listdir(folder))
    for r in rows(n, cameras):
        for name in (r["clip"], r["snapshot"]):
            if name not in have:
                open(folder / name, "wb").close()


def record_rate(store, k: int) -> float:
    t = time.perf_counter()
    for i in range(k):
        ev = {"type": "start", "id": f"live-{i}", "source": "live", "start_time": iso(T_END + i),
              "start_s": float(i), "peak": 0.9, "peak_s": i + 1.0, "threshold": 0.5}
        store.record(ev)
    return (time.perf_counter() - t) * 1000 / max(1, k)


def run(engine: str, args, work: Path) -> dict:
    srv = None
    if engine == "sqlite":
        db = str(work / "sqlite" / "events.db")
        shutil.rmtree(work / "sqlite", ignore_errors=True)
    else:
        import pgserver

        srv = pgserver.PgServer(fsync=True).start()
        db = srv.url
    try:
        store = open_store(db)
        load_s = load(store, args.incidents, args.cameras)
        per_event = record_rate(store, args.records)
        files = work / "files"
        t = time.perf_counter()
        sweep(store, files, Policy(), now=T_END)
        res = {"measure": ((time.perf_counter() - t) * 1000,) * 2}
        res.update({name: timed(fn, args.repeat if name != "retention" else 5)
                    for name, fn in queries(store, args.cameras, work).items()})
        before = store.count()
        t = time.perf_counter()
        done = sweep(store, files, Policy(retain_days=YEAR / 86_400 * 0.99), now=T_END)
        res["expire 1 %"] = ((time.perf_counter() - t) * 1000,) * 2
        assert 0.005 * before < len(done.expired) < 0.02 * before, (len(done.expired), before)
        n = store.count()
        store.close()
        return {"engine": engine, "rows": n, "load_s": load_s, "record_ms": per_event, **res}
    finally:
        if srv is not None:
            srv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--cameras", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--work", default=str(ROOT / ".cache" / "bench-events"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for e in [e.strip() for e in args.engines.split(",") if e.strip()]:
        make_files(work / "files", args.incidents, args.cameras)
        results.append(run(e, args, work))
    cols = ["page", "source", "poll", "range", "violent", "unreviewed", "deep", "get", "measure",
            "retention", "expire 1 %"]
    print(f"{'engine':<11}{'rows':>8}{'load s':>8}{'record ms':>10}  " +
          "  ".join(f"{c:>14}" for c in cols))
    for r in results:
        cells = "  ".join(f"{r[c][0]:7.1f}/{r[c][1]:6.1f}" for c in cols)
        print(f"{r['engine']:<11}{r['rows']:>8}{r['load_s']:>8.1f}{r['record_ms']:>10.2f}  {cells}")
    print("cells: median/slowest ms per query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
