"""Soak: `vd watch` left running on real RTSP cameras whose servers die and come back; does it
lose incidents, write unplayable clips, grow, or overrun its clips budget?

Cameras. ``--sources`` N (default 3) cameras, each the same synthetic recording of one fixed
camera (``vd.synthetic.write_recording``, 25 fps, people walking, fights of ``--fight-s`` s at
the ``--fights`` offsets of a ``--loop-s`` s loop) served by its own GStreamer RTSP server
(``tests/rtsp_server.py``, the tests' server: H.264 over RTP, in real time, each client gets
the recording from its start). At its end the stream ends, `vd watch` reconnects and the
recording plays again from 0: a loop. Every ``--kill-every`` s one server (in turn) is killed
(SIGKILL) and restarted ``--down`` s later on the same port; the bench records each down
interval.

Model. One that really detects these fights: motion-small on mobilenet_v3_small ``--weights
random`` features of the camera's own later footage, its threshold from held-out clips
(``make_camera_run`` of ``bench/watch_sources.py``, the run the tests train), cached under
``--work``. Before the soak, ``vd evaluate --annotations`` on one loop says its recall and
false alarms (cached beside it).

Watcher. ``vd watch --sources CSV --clips DIR --max-clips-gb G --events FILE --log-format
json --backoff-cap B`` with ``VD_RETENTION_EVERY_S=--sweep-every`` (retention sweeps every
minute instead of every 10: several sweeps in a 30-minute run). Every ``--sample-every`` s one
line: RSS, open file descriptors (``/proc/PID/fd``), threads (``/proc/PID/status``), CPU share,
database size (events.db + WAL), the clips folder's size (every file), its incidents' files
(clips + snapshots), the part of them old enough that a sweep must have counted them (older
than the sweep interval + one sample: retention counts an ended incident's files at once,
measured or not), incidents so far,
load average. After ``--minutes``, SIGTERM; the exit status and seconds to exit.

Report (stdout, and ``report.json`` in the run's folder):
- expected fights: each connection's fights (connection start = the watcher's ``connected`` /
  ``stream back`` log line, end = its next ``stream lost`` / ``cannot connect`` line or the
  stop) that ended at least ``--margin`` s before the connection did and whose span (with the
  pre-roll and margin) touched no recorded down interval of that server; found = an incident of
  that camera in the database overlapping it (``--tol`` s either side); lost = expected, not
  found; false alarms = incidents that overlap no fight of any connection of their camera;
  how far the found incidents' starts lie from the fights' onsets (min, median, max: checks
  the timing the matching assumes);
- clips: every clip the database names probed with ffprobe (playable = exit 0 and at least one
  video packet); expired rows (clip null, ``expired_at`` set); rows with neither (no clip);
  files in the folder no row names;
- budget: the largest settled incident files and the largest whole folder over the run vs
  ``--max-clips-gb``;
- RSS / FDs / threads: median of minutes [warm-up, warm-up + 10) vs of the last 10 minutes;
  flat = RSS up by at most max(5 %, 30 MB), FDs by at most 4, threads by at most 2; and each
  one's least-squares slope per hour after the warm-up (a 30-minute run cannot tell a slow
  leak from a plateau: the slope says how much a day would add if it went on).

The run's folder keeps ``state.json`` (connections, down intervals, exit), ``rows.jsonl`` and
the database: ``--report RUN_DIR`` makes the report again without running.

Runs unchanged for a day: the bench keeps one row per sample, one tuple per connection and per
kill; the watcher's stderr goes to a file rotated at ``--log-max-mb`` (one old copy); each
server's stderr file is truncated when it restarts. Every process started here is ended in
``finally``. Needs ffmpeg/ffprobe and GStreamer's RTSP server for the system python
(``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``).

    python bench/soak.py [--minutes 30] [--sources 3] [--kill-every 180] [--down 20]
                         [--loop-s 60] [--fights 15,40] [--max-clips-gb 0.02] [--sweep-every 60]
                         [--work .cache/bench-soak]
    python bench/soak.py --report .cache/bench-soak/run-YYYYMMDDTHHMMSS
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from watch_sources import _proc_sample, make_camera_run, reap, stop  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = ROOT / "tests" / "rtsp_server.py"
BACKBONE = "mobilenet_v3_small"
DROPPED = re.compile(r"dropped (\d+) windows/(\d+) frames")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for one RTSP server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the recording and the model


def recording(work: Path, loop_s: float, fights: list[float], fight_s: float) -> tuple[Path, list]:
    """The looped recording (cached by its parameters) and its fights [(start_s, end_s)]."""
    from vd.synthetic import write_recording

    tag = f"loop-{loop_s:g}s-" + "-".join(f"{f:g}" for f in fights) + f"-{fight_s:g}"
    path = work / tag / "loop.mp4"
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        spans = write_recording(path, loop_s, [("violent", f, fight_s) for f in fights],
                                fps=25.0, seed=0)
        meta.write_text(json.dumps(spans))
    return path, [tuple(x) for x in json.loads(meta.read_text())]


def vd_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "vd.cli.main", *map(str, args)]


def check_model(run: Path, rec: Path, fights: list) -> dict:
    """``vd evaluate --annotations`` on one loop of the recording (cached): recall, false alarms."""
    out = rec.parent / f"evaluate-{run.name}.json"
    if not out.exists():
        ann = rec.parent / "annotations.csv"
        ann.write_text("video,start_s,end_s\n" + "".join(f"{rec.name},{a:.3f},{b:.3f}\n"
                                                           for a, b in fights))
        got = subprocess.run(vd_cmd("evaluate", rec.parent, "--annotations", ann, "--model", run,
                                    "--json"), capture_output=True, text=True, cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=900)
        if got.returncode != 0:
            raise RuntimeError(f"vd evaluate failed: {got.stderr[-2000:]}")
        s = json.loads(got.stdout)["summary"]
        out.write_text(json.dumps({k: s.get(k) for k in ("intervals", "detected", "recall",
                                                         "false_alarms", "latency_max_s")}))
    return json.loads(out.read_text())


# ---------------------------------------------------------------- servers


class Server:
    """One camera: tests/rtsp_server.py serving the recording on a fixed port; kill/restart."""

    def __init__(self, name: str, rec: Path, port: int, logs: Path):
        self.name, self.rec, self.port, self.logs = name, rec, port, logs
        self.url = f"rtsp://127.0.0.1:{port}/{name}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait for its ``ready`` line (the port may still be held for a moment
        after a kill: retried until ``timeout``)."""
        end = time.monotonic() + timeout
        while True:
            with open(self.logs / f"server-{self.name}.err", "w") as err:
                self.proc = subprocess.Popen(
                    [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(self.port), "--mount",
                     f"/{self.name}", str(self.rec)], stdout=subprocess.PIPE, stderr=err, text=True)
            sel = selectors.DefaultSelector()
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            line = self.proc.stdout.readline() if sel.select(30.0) else ""
            sel.close()
            if line.startswith("ready "):
                return
            stop(self.proc, signal.SIGKILL)
            if time.monotonic() > end:
                raise RuntimeError(f"RTSP server {self.name} did not start on port {self.port}")
            time.sleep(1.0)

    def kill(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)
            self.proc.stdout.close()
            self.proc = None


# ---------------------------------------------------------------- the watcher's log


class LogTail:
    """Reads the watcher's stderr (JSON log lines) in a thread: writes every line to a file
    rotated at ``max_bytes`` (one old copy), and keeps per camera (``names``) the connection
    intervals ``(start, end)`` (unix seconds) and the last status line's dropped windows and
    frames; the count of retention sweeps that deleted files and of other warnings."""

    def __init__(self, stream, path: Path, max_bytes: int, names):
        self.stream, self.path, self.max_bytes = stream, path, max_bytes
        self.conns: dict[str, list[list]] = {n: [] for n in names}
        self.dropped: dict[str, str] = {}
        self.deleting_sweeps = 0
        self.warnings = 0
        self.last_warning = ""
        self._thread = threading.Thread(target=self._run, name="soak-log", daemon=True)

    def start(self) -> "LogTail":
        self._thread.start()
        return self

    def join(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        out = open(self.path, "w")
        try:
            for line in self.stream:
                out.write(line)
                out.flush()
                if out.tell() > self.max_bytes:
                    out.close()
                    os.replace(self.path, self.path.with_suffix(self.path.suffix + ".1"))
                    out = open(self.path, "w")
                self._parse(line)
        finally:
            out.close()

    def _parse(self, line: str) -> None:
        try:
            rec = json.loads(line)
            t = datetime.fromisoformat(rec["time"]).timestamp()
            msg = str(rec.get("message", ""))
        except (ValueError, KeyError, TypeError):
            return
        name, _, what = msg.partition(": ")
        conns = self.conns.get(name)
        if conns is None and str(rec.get("level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
            self.warnings += 1   # not a camera's reconnecting line
            self.last_warning = msg[:300]
        if msg.startswith("retention:") and "deleted" in msg:
            self.deleting_sweeps += 1
        if conns is None:
            return
        m = DROPPED.search(what)
        if m:
            self.dropped[name] = f"{m[1]} windows/{m[2]} frames"
        if what in ("connected", "stream back"):
            if conns and conns[-1][1] is None:
                conns[-1][1] = t
            conns.append([t, None])
        elif what.startswith(("stream lost", "cannot connect")) and conns and conns[-1][1] is None:
            conns[-1][1] = t

    def state(self) -> dict:
        return {k: getattr(self, k) for k in ("conns", "dropped", "deleting_sweeps", "warnings",
                                             "last_warning")}

    def close_open(self, t: float) -> None:
        for conns in self.conns.values():
            if conns and conns[-1][1] is None:
                conns[-1][1] = t


# ---------------------------------------------------------------- sampling


def folder_sizes(clips: Path, settled_before: float) -> tuple[int, int, int]:
    """(every file's bytes, incidents' clips + snapshots, those last changed before
    ``settled_before``) in the clips folder."""
    total = media = settled = 0
    with os.scandir(clips) as it:
        for e in it:
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:   # deleted by retention meanwhile
                continue
            total += st.st_size
            if e.name.endswith((".mp4", ".jpg")) and ".partial." not in e.name:
                media += st.st_size
                if st.st_mtime < settled_before:
                    settled += st.st_size
    return total, media, settled


def db_count(db: Path) -> int | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        try:
            return con.execute("SELECT count(*) FROM incidents").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None


def sample(pid: int, clips: Path, t0: float, last: dict, sweep_every: float, every: float) -> dict:
    """One row: the watcher's RSS, FDs, threads, CPU share; the database and clips folder."""
    rss, cpu = _proc_sample(pid)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if x.startswith("Threads:"))
    now = time.time()
    db = clips / "events.db"
    db_bytes = sum(p.stat().st_size for p in (db, clips / "events.db-wal") if p.exists())
    # incident files a sweep has seen (retention counts ended incidents' files at once, measured
    # or not): older than the sweep interval + one sample
    total, media, settled = folder_sizes(clips, now - sweep_every - every)
    row = {"min": round((time.monotonic() - t0) / 60, 1), "rss_mb": round(rss, 1), "fds": fds,
           "threads": threads,
           "cpu": round((cpu - last["cpu"]) / max(1e-6, now - last["t"]), 2),
           "db_mb": round(db_bytes / 1e6, 2), "folder_mb": round(total / 1e6, 1),
           "media_mb": round(media / 1e6, 1), "settled_mb": round(settled / 1e6, 1),
           "incidents": db_count(db), "load1": round(os.getloadavg()[0], 2)}
    last.update(cpu=cpu, t=now)
    return row


# ---------------------------------------------------------------- the run


def watch(a, run: Path, servers: list[Server], out: Path) -> tuple[subprocess.Popen, LogTail]:
    """Start `vd watch` on the servers' URLs; its stderr read by a :class:`LogTail`."""
    csv = out / "sources.csv"
    csv.write_text("".join(f"{s.name},{s.url}\n" for s in servers))
    cmd = vd_cmd("watch", "--model", run, "--sources", csv, "--clips", out / "clips",
                 "--max-clips-gb", f"{a.max_clips_gb:g}", "--events", out / "events.jsonl",
                 "--status-every", "60", "--log-format", "json", "--backoff-cap",
                 f"{a.backoff_cap:g}")
    env = dict(os.environ, PYTHONPATH=str(ROOT), VD_RETENTION_EVERY_S=f"{a.sweep_every:g}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    tail = LogTail(proc.stderr, out / "watch.log", int(a.log_max_mb * 1e6),
                   [s.name for s in servers]).start()
    return proc, tail


def soak_loop(a, servers: list[Server], proc, clips: Path, out: Path) -> tuple[list, dict]:
    """Kill/restart the servers in turn and sample once a minute until ``--minutes`` or the
    watcher ends: (the rows, the down intervals per camera [(start, end)], unix seconds)."""
    t0 = time.monotonic()
    rows, downs = [], {s.name: [] for s in servers}
    next_kill, next_sample, kills = t0 + a.kill_every, t0 + a.sample_every, 0
    victim, restart_at, last = None, 0.0, {"t": time.time(), "cpu": 0.0}
    with open(out / "rows.jsonl", "w") as rows_file:
        while time.monotonic() - t0 < a.minutes * 60 and not reap(proc):
            now = time.monotonic()
            if victim is None and now >= next_kill:
                victim = servers[kills % len(servers)]
                downs[victim.name].append([time.time(), None])
                victim.kill()
                restart_at, kills, next_kill = now + a.down, kills + 1, next_kill + a.kill_every
            elif victim is not None and now >= restart_at:
                victim.start()
                downs[victim.name][-1][1] = time.time()
                victim = None
            if now >= next_sample:
                next_sample += a.sample_every
                try:
                    row = sample(proc.pid, clips, t0, last, a.sweep_every, a.sample_every)
                except (FileNotFoundError, ProcessLookupError, StopIteration):
                    continue   # the watcher just ended
                row["down"] = victim.name if victim is not None else ""
                rows.append(row)
                rows_file.write(json.dumps(row) + "\n")
                rows_file.flush()
                print(" ".join(f"{k} {v}" for k, v in row.items()), flush=True)
            time.sleep(0.25)
    if victim is not None:
        victim.start()
        downs[victim.name][-1][1] = time.time()
    return rows, downs


def terminate(proc) -> tuple[int | None, float]:
    """SIGTERM the watcher: (exit status, seconds it took); SIGKILL after 120 s."""
    t = time.monotonic()
    stop(proc, signal.SIGTERM, grace=120.0)
    return proc.returncode, round(time.monotonic() - t, 1)


# ---------------------------------------------------------------- the report


def incidents(db: Path) -> list[dict]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30.0)
    con.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in con.execute(
            "SELECT id, source, state, reason, start_wall, end_time, clip, snapshot, expired_at "
            "FROM incidents ORDER BY start_wall")]
    finally:
        con.close()
    for r in rows:
        r["end_wall"] = (datetime.fromisoformat(r["end_time"]).timestamp() if r["end_time"]
                         else r["start_wall"] + 1.0)
    return rows


def fight_spans(conns: dict, downs: dict, fights: list, a) -> tuple[list, list]:
    """(expected, every) fights as (camera, wall start, wall end): every fight that began in a
    connection; expected = those that ended ``--margin`` s before their connection did, with no
    down interval of that camera from the pre-roll before them to the margin after them."""
    every, expected = [], []
    for name, cl in conns.items():
        for c0, c1 in cl:
            for f0, f1 in fights:
                w0, w1 = c0 + f0, c0 + f1
                if w0 >= c1:
                    continue
                every.append((name, w0, w1))
                hit = any(d0 < w1 + a.margin and (d1 is None or d1 > w0 - a.pre_roll)
                          for d0, d1 in downs.get(name, ()))
                if w1 + a.margin <= c1 and not hit:
                    expected.append((name, w0, w1))
    return expected, every


class Spans:
    """Intervals ``(start, end)`` per camera, sorted, asked whether any overlaps a given one
    (bisect: a day's thousands of incidents against thousands of fights stays fast)."""

    def __init__(self, items):
        self.by: dict[str, list] = {}
        for name, a, b in items:
            self.by.setdefault(name, []).append((a, b))
        self.longest = {n: max(b - a for a, b in v) for n, v in self.by.items()}
        for v in self.by.values():
            v.sort()

    def first(self, name: str, w0: float, w1: float, tol: float) -> float | None:
        """The start of the earliest interval of ``name`` overlapping [w0 - tol, w1 + tol]."""
        v = self.by.get(name, [])
        lo = bisect.bisect_left(v, (w0 - tol - self.longest.get(name, 0.0), -math.inf))
        hi = bisect.bisect_right(v, (w1 + tol, math.inf))
        return next((a for a, b in v[lo:hi] if b >= w0 - tol), None)

    def hit(self, name: str, w0: float, w1: float, tol: float) -> bool:
        return self.first(name, w0, w1, tol) is not None


def probe_clip(path: str) -> bool:
    """Playable: ffprobe reads it (exit 0) and counts at least one video packet."""
    got = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                          "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path],
                         capture_output=True, text=True, timeout=60)
    try:
        return got.returncode == 0 and int(got.stdout.strip().split(",")[0]) > 0
    except ValueError:
        return False


def clips_report(rows: list[dict], clips: Path) -> dict:
    named, playable, bad = set(), 0, []
    for r in rows:
        for key in ("clip", "snapshot"):
            if r[key]:
                named.add(Path(r[key]).name)
        if r["clip"]:
            if Path(r["clip"]).is_file() and probe_clip(r["clip"]):
                playable += 1
            else:
                bad.append(r["id"])
    files = {p.name for p in clips.iterdir() if p.suffix in (".mp4", ".jpg")}
    return {"clips_named": sum(1 for r in rows if r["clip"]), "playable": playable,
            "unplayable": len(bad), "unplayable_ids": bad[:20],
            "expired": sum(1 for r in rows if r["expired_at"] is not None),
            "no_clip_not_expired": sum(1 for r in rows if not r["clip"] and r["expired_at"] is None),
            "files_no_row_names": sorted(files - named)[:20]}


def flatness(rows: list[dict], warm: float) -> dict:
    """Medians of minutes [warm, warm + 10) vs the last 10 minutes, and whether that is flat."""
    import statistics

    if not rows:
        return {}
    end = rows[-1]["min"]
    first = [r for r in rows if warm <= r["min"] < warm + 10] or rows[:1]
    last = [r for r in rows if r["min"] > end - 10] or rows[-1:]
    out = {}
    for key, tol in (("rss_mb", None), ("fds", 4), ("threads", 2)):
        m0 = statistics.median(r[key] for r in first)
        m1 = statistics.median(r[key] for r in last)
        allow = max(0.05 * m0, 30.0) if tol is None else tol
        out[key] = {"first": m0, "last": m1, "max": max(r[key] for r in rows),
                    "allowed_growth": round(allow, 1), "flat": m1 - m0 <= allow,
                    "slope_per_h": slope([(r["min"], r[key]) for r in rows if r["min"] >= warm])}
    return out


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares growth per hour of (minute, value) points (None with fewer than 3)."""
    if len(points) < 3:
        return None
    n = len(points)
    mx, my = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    return round(60 * sum((p[0] - mx) * (p[1] - my) for p in points) / var, 2) if var else None


def report(a, rows: list[dict], seen: dict, downs: dict, fights: list, out: Path) -> dict:
    """Expected vs found incidents, clips, budget, flatness (see the module's docstring);
    ``seen``: what the watcher's log said (:meth:`LogTail.state`)."""
    incs = incidents(out / "clips" / "events.db")
    conns = seen["conns"]
    expected, every = fight_spans(conns, downs, fights, a)
    got = Spans((i["source"], i["start_wall"], i["end_wall"]) for i in incs)
    lost = [e for e in expected if not got.hit(*e, a.tol)]
    offsets = sorted(got.first(*e, a.tol) - e[1] for e in expected if got.hit(*e, a.tol))
    fought = Spans(every)
    false = [i for i in incs if not fought.hit(i["source"], i["start_wall"], i["end_wall"], a.tol)]
    t_first = min((c[0] for cl in conns.values() for c in cl), default=0.0)
    budget_mb = a.max_clips_gb * 1000
    up = {}
    for name, cl in conns.items():
        span = (max(c[1] for c in cl) - cl[0][0]) if cl else 0.0
        down = sum((d1 or d0) - d0 for d0, d1 in downs.get(name, ()))
        up[name] = round(sum(c1 - c0 for c0, c1 in cl) / max(1e-6, span - down), 3)
    return {
        "incidents_in_db": len(incs),
        "expected_fights": len(expected), "found": len(expected) - len(lost), "lost": len(lost),
        "lost_at_s": [(n, round(w0 - t_first, 1)) for n, w0, _ in lost][:50],
        "incident_start_minus_fight_start_s": {
            "min": round(offsets[0], 2), "median": round(offsets[len(offsets) // 2], 2),
            "max": round(offsets[-1], 2)} if offsets else None,
        "fights_begun": len(every), "false_alarms": len(false),
        "false_alarms_at_s": [(i["source"], round(i["start_wall"] - t_first, 1)) for i in false][:50],
        "states": {s: sum(1 for i in incs if i["state"] == s) for s in {i["state"] for i in incs}},
        "connections": {n: len(cl) for n, cl in conns.items()},
        "connected_share_of_server_up": up,
        "kills": sum(len(d) for d in downs.values()),
        "clips": clips_report(incs, out / "clips"),
        "budget_mb": budget_mb,
        "max_settled_media_mb": max((r["settled_mb"] for r in rows), default=None),
        "max_media_mb": max((r["media_mb"] for r in rows), default=None),
        "max_folder_mb": max((r["folder_mb"] for r in rows), default=None),
        "max_db_mb": max((r["db_mb"] for r in rows), default=None),
        "deleting_sweeps": seen["deleting_sweeps"],
        "dropped_last_status": seen["dropped"],
        "watch_warnings": seen["warnings"], "last_warning": seen["last_warning"],
        "flat": flatness(rows, a.warm_up),
    }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--kill-every", type=float, default=180.0,
                    help="Seconds between server kills (one server, in turn).")
    ap.add_argument("--down", type=float, default=20.0, help="Seconds a killed server stays down.")
    ap.add_argument("--loop-s", type=float, default=60.0, help="The recording's length.")
    ap.add_argument("--fights", default="15,40", help="Fight onsets in the loop (seconds).")
    ap.add_argument("--fight-s", type=float, default=4.0)
    ap.add_argument("--max-clips-gb", type=float, default=0.02)
    ap.add_argument("--sweep-every", type=float, default=60.0,
                    help="VD_RETENTION_EVERY_S given to the watcher.")
    ap.add_argument("--sample-every", type=float, default=60.0)
    ap.add_argument("--backoff-cap", type=float, default=4.0)
    ap.add_argument("--margin", type=float, default=3.0,
                    help="Seconds a fight must end before its connection does to be expected.")
    ap.add_argument("--pre-roll", type=float, default=5.0)
    ap.add_argument("--tol", type=float, default=3.0,
                    help="Seconds either side of a fight an incident may start or end.")
    ap.add_argument("--warm-up", type=float, default=2.0,
                    help="Minutes left out of the 'first 10 minutes' of the flatness check.")
    ap.add_argument("--log-max-mb", type=float, default=20.0)
    ap.add_argument("--work", default=str(ROOT / ".cache" / "bench-soak"))
    ap.add_argument("--report", default=None, metavar="RUN_DIR",
                    help="Only (re)make the report of a finished run's folder (its matching "
                         "settings: --margin, --tol, --pre-roll, --warm-up, --max-clips-gb).")
    a = ap.parse_args(argv)
    if not 1 <= a.sources <= 16 or a.minutes <= 0 or a.down >= a.kill_every:
        ap.error("--sources 1..16, --minutes > 0, --down < --kill-every")
    return a


def run_soak(a, work: Path, run: Path, rec: Path, fights: list) -> Path:
    """Servers up, the watcher on them for ``--minutes``, SIGTERM; everything the report needs
    written to ``state.json`` in the run's folder (returned)."""
    out = work / datetime.now().strftime("run-%Y%m%dT%H%M%S")
    (out / "clips").mkdir(parents=True)
    load0 = os.getloadavg()
    print(f"soak: {a.sources} cameras, {a.minutes:g} min, a server killed every {a.kill_every:g} s "
          f"for {a.down:g} s, budget {a.max_clips_gb:g} GB, sweeps every {a.sweep_every:g} s; "
          f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; {out}", flush=True)
    servers = [Server(f"cam{i + 1}", rec, free_port(), out) for i in range(a.sources)]
    proc = None
    try:
        for s in servers:
            s.start()
        proc, tail = watch(a, run, servers, out)
        rows, downs = soak_loop(a, servers, proc, out / "clips", out)
        t_stop = time.time()
        code, exit_s = terminate(proc)
        tail.join()
        tail.close_open(t_stop)
    finally:
        if proc is not None and proc.returncode is None:
            stop(proc, signal.SIGKILL)
        for s in servers:
            s.kill()
    load1 = os.getloadavg()
    state = {"seen": tail.state(), "downs": downs, "fights": fights, "exit": code,
             "exit_s": exit_s, "load_start": [round(x, 2) for x in load0],
             "load_end": [round(x, 2) for x in load1], "settings": vars(a)}
    (out / "state.json").write_text(json.dumps(state))
    return out


def finish(a, out: Path) -> int:
    """The report of a finished run's folder (``state.json``, ``rows.jsonl``, the database):
    printed and written to ``report.json``; 0 when it passed."""
    state = json.loads((out / "state.json").read_text())
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines() if x.strip()]
    res = report(a, rows, state["seen"], state["downs"], [tuple(f) for f in state["fights"]], out)
    res.update(exit=state["exit"], exit_s=state["exit_s"],
               minutes=round(rows[-1]["min"], 1) if rows else 0, load_start=state["load_start"],
               load_end=state["load_end"], settings=state["settings"])
    (out / "report.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "settings"}, indent=1))
    ok = (res["lost"] == 0 and res["clips"]["unplayable"] == 0 and res["expected_fights"] > 0
          and all(v["flat"] for v in res["flat"].values())
          and (res["max_settled_media_mb"] or 0) <= res["budget_mb"])
    print(f"soak {'passed' if ok else 'FAILED'}: lost {res['lost']}/{res['expected_fights']}, "
          f"unplayable {res['clips']['unplayable']}, flat "
          f"{ {k: v['flat'] for k, v in res['flat'].items()} }, settled media "
          f"{res['max_settled_media_mb']} MB / budget {res['budget_mb']:g} MB")
    return 0 if ok else 1


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.report:
        return finish(a, Path(a.report).resolve())
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    fights_at = [float(x) for x in a.fights.split(",") if x.strip()]
    rec, fights = recording(work, a.loop_s, fights_at, a.fight_s)
    run = make_camera_run(work, BACKBONE)
    print(f"model {run.name}: one loop of {rec.parent.name}: "
          f"{json.dumps(check_model(run, rec, fights))}", flush=True)
    return finish(a, run_soak(a, work, run, rec, fights))


if __name__ == "__main__":
    sys.exit(main())
