"""How many live sources `vd watch` sustains, per backbone; how late its alarm comes; RSS and
CPU share over a long run.

Sources: k copies of the synthetic long clip (calm 4 s / violent 4 s / calm 4 s, 320x240, 25
fps; ``vd.synthetic.write_long_clip``) served as live MPEG-TS over TCP on 127.0.0.1: the clip
looped and encoded once (libx264 ultrafast, zerolatency, a keyframe every 10 frames), sent in
real time to every source by one relay process (see Capacity; ``ffmpeg ... tcp://...?listen=1``
servers took one connection, and vd's probe of a ``tcp://`` source is one already). ``vd
watch`` (no TTA, ``--window W`` (default 2 s), stride W/2: 20/W sampled frames/s needed per
source; ``--window 4`` = 5 frames/s) runs on them for ``--seconds`` wall seconds, then gets
SIGTERM (``term_s``: how long it took to exit). From its status lines (every 5 s, per source)
the table takes, per k: the achieved/needed sampled frames/s summed over sources (last
interval), the largest lag at the first and last status, dropped windows/frames; from
``os.wait4`` the process's own wall, CPU seconds and peak RSS. k doubles (1, 2, 4, ...) until a
run falls behind: frames dropped, lag grew by more than one stride, or achieved < 90 % of needed.
The throughput runs' models are hybrid trained 1 epoch on planted random features of the
backbone's width (weights ``random(seed=0)``): they measure throughput, not accuracy.

Alarm latency (``--latency-backbones``): the long clip watched once as a file with
``--realtime`` (read at its own pace, as a camera sends it), window 2 s, stride 1 s, smooth
2/3. The model: ``--latency-preset`` trained ``--latency-epochs`` on ``vd extract --weights
random`` features of 12+12 synthetic clips (``--latency-train camera``: of the long clip's own
camera at later times, threshold from ``vd evaluate --target-recall 0.9`` on held-out clips of
it; see ``make_camera_run``); its own threshold, or with ``--latency-above-calm``
one just above every window score of the calm first 4 s (``vd predict`` on the clip: the
pipeline's latency, where the model alone does not fire). Stream latency = end of the newest
scored window when the ``start`` line arrived − onset (4 s); wall latency = the event's
``event_time`` − the wall time the onset frame was read (``start_time − start_s + 4``).

Soak (``--soak SECONDS``): ``--soak-sources`` looped sources of the first backbone for that
long; RSS and CPU share (CPU seconds / wall seconds of the last 30 s) sampled from /proc.

Capacity (``--capacity``): realistic camera sub-streams. One recording is rendered and encoded
ONCE (640x360 H.264, 15 fps, a keyframe a second, 512 kb/s; people walk 4 s of every 16 s,
then stand still: 25 % of the time moving), and one relay process (``--relay``, plain Python:
no decoding, no encoding) serves it to every camera on its own TCP port, each camera starting
at another second of the 16 s period (so their moving parts do not line up), each packet sent
at its own time. Per ``--motion-gate`` mode (``--cap-gates auto,off``), ``vd watch`` (window
``--cap-window`` 4 s, stride ``--cap-stride`` 2 s, ``--threshold 1e-6``: a window the gate lets
through is hot, a still one is not, so each walk is an incident at a known onset) watches k
cameras (``--cap-k`` in turn until a run falls behind); ``--warmup`` seconds after the first
connection are not counted (the backbone's first calls), then ``--seconds``. Per k: sustained
(no window dropped after the warm-up, lag not growing by more than 1 s, and without the gate
backbone frames/s ≥ 90 % of the need), the backbone's vs the needed frames/s, windows and
still windows, the share of a core used by vd watch and by the relay, alarm latency p50/p90
(a start event's ``event_time`` minus the wall time the walk's first frame was sent) and
score delay p50/p90 (when a scored window's ``--scores`` line appeared minus the wall time its
last frame was sent). Decode cost: one process that only grabs (decodes) every frame of one
stream, in CPU seconds per wall second, and the file decoded as fast as it goes. Then a plan
line: cameras per core with and without the gate; per GPU on paper (``--gpu-backbone-fps``).

Every ffmpeg server, relay and vd watch started here is ended in ``finally``. Needs ffmpeg.

    python bench/watch_sources.py [--backbones mobilenet_v3_small,vgg16] [--seconds 40]
                                  [--window 2] [--max-k 8] [--latency-backbones mobilenet_v3_small]
                                  [--latency-preset hybrid] [--latency-above-calm] [--latency-only]
                                  [--latency-train synthetic|camera] [--latency-epochs 20]
                                  [--soak 600 --soak-sources 1] [--work .cache/bench-watch]
    python bench/watch_sources.py --capacity [--seconds 60] [--warmup 20] [--cap-k 4,8,16,24,32,48]
                                  [--cap-gates auto,off] [--decode-seconds 30] [--gpu-backbone-fps F]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STATUS = re.compile(r"(?P<name>[^\s\]]+): stream (?P<t>[\d.]+) s, lag (?P<lag>[\d.]+) s, "
                    r"sampled (?P<fps>[\d.]+)/(?P<need>[\d.]+) fps, .*windows (?P<win>\d+), "
                    r"dropped (?P<dw>\d+) windows/(?P<df>\d+) frames")
ONSET_S = 4.0


def looped_ts(work: Path, clip: Path, seconds: float) -> Path:
    """``clip`` looped to at least ``seconds`` and encoded ONCE to MPEG-TS (libx264 ultrafast,
    zerolatency, a keyframe every 10 frames, as the sweep's servers always encoded it), with the
    relay's packet index; cached. The relay (:func:`relay_main`) serves it to every source:
    unlike ``ffmpeg ... tcp://...?listen=1`` it accepts more than one connection, as vd's
    probe of a ``tcp://`` source needs."""
    seconds = 60.0 * math.ceil(seconds / 60.0)
    path = work / f"{clip.stem}-looped-{int(seconds)}s.ts"
    if path.with_suffix(".json").exists():
        return path
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-stream_loop", "-1", "-i", str(clip), "-t", f"{seconds:g}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10", "-pix_fmt",
                    "yuv420p", "-f", "mpegts", str(path)], check=True)
    index_ts(path, {"duration_s": seconds})
    return path


def reap(proc: subprocess.Popen, block: bool = False):
    """Reap ``proc`` if it ended (``os.wait4``: its own rusage); True once it has ended."""
    if proc.returncode is not None:
        return True
    pid, status, ru = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if not pid:
        return False
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.rusage = ru
    return True


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, grace: float = 15.0):
    """End one process we started (``sig``, then SIGKILL after ``grace`` s); its rusage."""
    if not reap(proc):
        proc.send_signal(sig)
        deadline = time.monotonic() + grace
        while not reap(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.returncode is None:
            proc.kill()
            reap(proc, block=True)
    return getattr(proc, "rusage", None)


def make_run(work: Path, backbone: str, dim: int) -> Path:
    """Hybrid trained 1 epoch on planted features (D = the backbone's width), cached."""
    run = work / f"run-{backbone}"
    if (run / "model.keras").exists():
        return run
    from vd.data.store import write_plain_store
    from vd.extract.run import store_attrs
    from vd.model.train import train

    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = rng.normal(0.0, 1.0, (40, 20, dim))
    x[y == 1, 5:10, :8] += 2.0
    videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
    store = write_plain_store(work / f"{backbone}.h5", x.astype(np.float16), y, videos,
                              attrs=store_attrs("random(seed=0)", None, 1, 0, 20, backbone))
    train(store, epochs=1, out=run, seed=0, checkpoint_every=0, tensorboard=False)
    return run


def make_latency_run(work: Path, backbone: str, preset: str = "hybrid", epochs: int = 20) -> Path:
    """``preset`` trained ``epochs`` epochs on ``vd extract --weights random`` features of 12+12
    synthetic clips (violent vs calm motion style), cached: a model that may score the long
    clip's violent part above its calm part, so that the alarm has an onset to answer."""
    run = work / f"latency-run-{backbone}-{preset}-{epochs}"
    if (run / "model.keras").exists():
        return run
    from vd.synthetic import make_synthetic_set

    clips = work / "synthetic-n12"
    if not clips.exists():
        make_synthetic_set(clips, n_per_class=12, seed=1)
    store = work / f"synthetic-n12-{backbone}.h5"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not store.exists():
        subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(clips), str(store),
                        "--backbone", backbone, "--weights", "random", "--quiet"], check=True,
                       cwd=ROOT, env=env, timeout=900)
    subprocess.run([sys.executable, "-m", "vd.cli.main", "train", str(store), "--preset", preset,
                    "--epochs", str(epochs), "--out", str(run), "--checkpoint-every", "0"],
                   check=True, cwd=ROOT, env=env, timeout=1800, stdout=subprocess.DEVNULL)
    return run


def make_camera_run(work: Path, backbone: str, preset: str = "motion-small", epochs: int = 60) -> Path:
    """``preset`` trained ``epochs`` epochs on the long clip's own camera at later times
    (``vd.synthetic.write_camera_clips``: 8+8 clips of 2.4 s rendered on past the clip's 12 s,
    none of its frames), its threshold chosen by ``vd evaluate --target-recall 0.9
    --save-threshold --no-tta`` on 4+4 further held-out clips of that camera: what a user of a
    fixed camera can do, and a model that really detects (issue 12: random-weight features move
    differently per scene, so a model of other scenes does not transfer to this one). Cached."""
    run = work / f"camera-run-{backbone}-{preset}-{epochs}"
    if (run / "model.keras").exists():
        return run
    from vd.synthetic import write_camera_clips

    long_parts = (("calm", 4.0), ("violent", 4.0), ("calm", 4.0))
    train_parts = (("violent", 2.4), ("calm", 2.4)) * 8
    cam = work / "camera-clips"
    if not cam.exists():
        write_camera_clips(cam / "train", train_parts, skip=long_parts, seed=0)
        write_camera_clips(cam / "held", (("violent", 2.4), ("calm", 2.4)) * 4,
                           skip=long_parts + train_parts, seed=0)
    store = work / f"camera-{backbone}.h5"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    vd = [sys.executable, "-m", "vd.cli.main"]
    if not store.exists():
        subprocess.run([*vd, "extract", str(cam / "train"), str(store), "--backbone", backbone,
                        "--weights", "random", "--quiet"], check=True, cwd=ROOT, env=env, timeout=900)
    subprocess.run([*vd, "train", str(store), "--preset", preset, "--epochs", str(epochs), "--out",
                    str(run), "--checkpoint-every", "0"], check=True, cwd=ROOT, env=env,
                   timeout=1800, stdout=subprocess.DEVNULL)
    subprocess.run([*vd, "evaluate", str(cam / "held"), "--model", str(run), "--no-tta",
                    "--target-recall", "0.9", "--save-threshold"], check=True, cwd=ROOT, env=env,
                   timeout=900, stdout=subprocess.DEVNULL)
    return run


def watch_cmd(run: Path, args: list[str], window: float = 2.0) -> list[str]:
    return [sys.executable, "-m", "vd.cli.main", "watch", "--model", str(run), "--status-every",
            "5", "--window", f"{window:g}", "--stride", f"{window / 2:g}", *args]


@contextlib.contextmanager
def watching(run: Path, clip: Path, k: int, work: Path, tag: str, window: float, seconds: float):
    """k live MPEG-TS sources of ``clip`` looped (:func:`looped_ts`, long enough for
    ``seconds`` and vd's start), served by one relay on 127.0.0.1, and one ``vd watch`` of them
    all: yields (the watch process, its stderr file, the monotonic time it started); the relay
    is stopped and the watch process killed (if still running) on the way out."""
    relay, proc = None, None
    err_path = work / f"{tag}-k{k}.err"
    try:
        log = work / f"{tag}-k{k}.relay.jsonl"
        log.unlink(missing_ok=True)
        relay, ports = start_relay(looped_ts(work, clip, seconds + 120.0), log, [0.0] * k)
        csv = work / f"{tag}-k{k}.csv"
        csv.write_text("".join(f"cam{i + 1},tcp://127.0.0.1:{p}\n" for i, p in enumerate(ports)))
        with open(err_path, "w") as err:
            t0 = time.monotonic()
            proc = subprocess.Popen(watch_cmd(run, ["--sources", str(csv)], window),
                                    stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
                                    env=dict(os.environ, PYTHONPATH=str(ROOT)))
            yield proc, err_path, t0
    finally:
        if proc is not None and proc.returncode is None:
            stop(proc, signal.SIGKILL)   # only after an error in the caller
        if relay is not None:
            stop(relay, grace=5.0)


def sources_run(run: Path, clip: Path, k: int, seconds: float, work: Path, window: float = 2.0) -> dict:
    with watching(run, clip, k, work, "watch", window, seconds) as (proc, err_path, t0):
        while not reap(proc) and time.monotonic() - t0 < seconds:
            time.sleep(0.2)
        t_term = time.monotonic()
        ru = stop(proc)
        term_s = time.monotonic() - t_term
        wall = time.monotonic() - t0
    per: dict[str, list[dict]] = {}
    for line in err_path.read_text().splitlines():
        m = STATUS.search(line)
        if m:
            per.setdefault(m["name"], []).append({k2: float(v) for k2, v in m.groupdict().items()
                                                  if k2 != "name"})
    if proc.returncode == 143:
        # a clean SIGTERM exit prints one more status line per source, covering the short
        # interval since the last periodic one: rates come from the periodic lines
        per = {n: rows[:-1] if len(rows) >= 2 else rows for n, rows in per.items()}
    # rates: each source's last periodic (5 s) interval
    fps = need = 0.0
    lag0 = lag1 = 0.0
    dw = df = 0
    for name, rows in per.items():
        rate = rows[-1]
        fps += rate["fps"]
        need += rate["need"]
        lag0 = max(lag0, rows[0]["lag"])
        lag1 = max(lag1, rows[-1]["lag"])
        dw += int(rows[-1]["dw"])
        df += int(rows[-1]["df"])
    ok = (len(per) == k and dw == 0 and df == 0 and lag1 <= lag0 + 1.0 and fps >= 0.9 * need
          and need > 0)
    return {"k": k, "sources_reporting": len(per), "achieved_fps": round(fps, 1),
            "needed_fps": round(need, 1), "lag_first_s": lag0, "lag_last_s": lag1,
            "dropped_windows": dw, "dropped_frames": df, "wall_s": round(wall, 1),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 1) if ru else None,
            "peak_rss_mb": round(ru.ru_maxrss / 1024) if ru else None,
            "exit": proc.returncode, "term_s": round(term_s, 1), "sustained": ok}


def _proc_sample(pid: int) -> tuple[float, float]:
    """(RSS MB, user+system CPU seconds) of a live process, from /proc (Linux)."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def soak(run: Path, clip: Path, k: int, seconds: float, every: float, work: Path,
         window: float) -> list[dict]:
    """k looped sources watched for ``seconds``: RSS and CPU share sampled every ``every`` s."""
    rows = []
    with watching(run, clip, k, work, "soak", window, seconds) as (proc, err_path, t0):
        last_t, last_cpu = t0, 0.0
        while not reap(proc) and time.monotonic() - t0 < seconds:
            time.sleep(every)
            rss, cpu = _proc_sample(proc.pid)
            now = time.monotonic()
            rows.append({"t_s": round(now - t0), "rss_mb": round(rss), "cpu_s": round(cpu, 1),
                         "cpu_share": round((cpu - last_cpu) / (now - last_t), 2),
                         "load1": round(os.getloadavg()[0], 2)})
            print("| " + " | ".join(str(v) for v in rows[-1].values()) + " |", flush=True)
            last_t, last_cpu = now, cpu
        stop(proc)
    last = [ln for ln in err_path.read_text().splitlines() if STATUS.search(ln)][-k:]
    for ln in last:
        print(ln)
    return rows


def alarm_latency(run: Path, clip: Path, work: Path, seconds: float, above_calm: bool = False) -> dict:
    """The long clip watched once with ``--realtime`` (frames at their own pace, as a camera
    sends them) at the run's own threshold. Stream latency: the end of the newest scored window
    when the ``start`` line arrived minus the onset (4 s). Wall latency, from the event itself:
    ``event_time`` minus the wall time the onset frame was read (``start_time − start_s`` is
    the wall time of stream time 0)."""
    from datetime import datetime

    out = subprocess.run([sys.executable, "-m", "vd.cli.main", "predict", str(clip), "--model",
                          str(run), "--no-tta", "--window", "2", "--stride", "1", "--json", "-q"],
                         capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    doc = json.loads(out.stdout)
    windows, threshold = doc["windows"], float(doc["threshold"])
    extra = []
    if above_calm:  # the pipeline's latency, not the model's: a threshold from the clip itself
        threshold = float(np.nextafter(max(w["violent_probability"] for w in windows
                                           if w["end_s"] <= ONSET_S + 1e-6), 1.0))
        extra = ["--threshold", repr(threshold)]
    res = {"threshold": threshold, "threshold_from": "above calm" if above_calm else "run",
           "predict_scores": [round(w["violent_probability"], 3) for w in windows]}
    scores = work / "latency-scores.jsonl"
    scores.unlink(missing_ok=True)
    proc = None
    seen: set = set()
    try:
        proc = subprocess.Popen(
            watch_cmd(run, [str(clip), "--realtime", "--scores", str(scores), *extra]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        os.set_blocking(proc.stdout.fileno(), False)
        t0, buf = time.monotonic(), ""
        while time.monotonic() - t0 < seconds:
            ended = reap(proc)
            if scores.exists():
                for line in scores.read_text().splitlines():
                    try:
                        seen.add(json.loads(line)["end_s"])
                    except ValueError:
                        pass
            try:
                buf += os.read(proc.stdout.fileno(), 1 << 16).decode()
            except (BlockingIOError, ValueError):
                pass
            for line in buf.splitlines():
                ev = json.loads(line) if line.startswith("{") else {}
                if ev.get("type") == "start":
                    wall0 = datetime.fromisoformat(ev["start_time"]).timestamp() - ev["start_s"]
                    fired = datetime.fromisoformat(ev["event_time"]).timestamp()
                    res.update(event_start_s=ev["start_s"],
                               stream_latency_s=round(max(seen) - ONSET_S, 2),
                               wall_latency_s=round(fired - (wall0 + ONSET_S), 2))
                    return res
            if ended:
                break
            time.sleep(0.05)
        res["note"] = "no start event: the model did not fire on the violent part"
        return res
    finally:
        if proc is not None:
            stop(proc)


# ============================================================== capacity (realistic sub-streams)

SUB_FPS, SUB_SIZE, PERIOD_S, MOVING_S = 15, (640, 360), 16.0, 4.0
STILL = re.compile(r"still (?P<still>\d+)$")


def make_substream(work: Path, duration_s: float, seed: int = 0) -> tuple[Path, dict]:
    """One camera sub-stream, encoded ONCE and cached: 640x360, 15 fps, H.264 (libx264, no
    B-frames, a keyframe every second, 512 kb/s, as IP cameras' second streams) in MPEG-TS.
    Every ``PERIOD_S`` (16 s) the people walk for ``MOVING_S`` (4 s: 25 % of the time), then
    stand still for 12 s (the last moving frame, with sensor-like noise of 1.5 gray levels so
    that still frames are not bit-identical). Also cached: the video packets' byte positions,
    times and keyframe flags (ffprobe), which the relay paces and starts by."""
    path = work / f"substream-{int(duration_s)}s-{seed}.ts"
    meta_path = path.with_suffix(".json")
    if meta_path.exists():
        return path, json.loads(meta_path.read_text())
    from vd.synthetic import _Scene   # the synthetic scene renderer (bench only)

    w, h = SUB_SIZE
    rng = np.random.default_rng([seed, 7])
    scene = _Scene(rng, w, h)
    noise = [np.random.default_rng([seed, 9, i]).normal(0, 1.5, (h, w, 3)).astype(np.float32)
             for i in range(8)]
    enc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
         "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(SUB_FPS), "-i", "-", "-c:v", "libx264",
         "-preset", "veryfast", "-profile:v", "main", "-bf", "0", "-g", str(SUB_FPS),
         "-keyint_min", str(SUB_FPS), "-sc_threshold", "0", "-b:v", "512k", "-maxrate", "768k",
         "-bufsize", "1024k", "-pix_fmt", "yuv420p", "-f", "mpegts", str(path)],
        stdin=subprocess.PIPE)
    frame = None
    for i in range(int(round(duration_s * SUB_FPS))):
        if (i / SUB_FPS) % PERIOD_S < MOVING_S or frame is None:
            frame = scene.step("calm")
        out = np.clip(frame.astype(np.float32) + noise[i % len(noise)], 0, 255).astype(np.uint8)
        enc.stdin.write(out.tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        raise RuntimeError("ffmpeg could not encode the sub-stream")
    return path, index_ts(path, {"duration_s": duration_s, "period_s": PERIOD_S,
                                 "moving_s": MOVING_S})


def index_ts(path: Path, meta: dict) -> dict:
    """The video packets' byte positions, times (from the first) and keyframes (ffprobe),
    written beside ``path`` (``.json``) with ``meta``: what the relay paces and starts by."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "packet=pts_time,pos,flags", "-of", "json", str(path)],
                           capture_output=True, text=True, check=True)
    pk = [p for p in json.loads(probe.stdout)["packets"] if "pos" in p and "pts_time" in p]
    t0 = float(pk[0]["pts_time"])
    meta = {**meta, "pos": [int(p["pos"]) for p in pk],
            "t": [round(float(p["pts_time"]) - t0, 4) for p in pk],
            "key": [i for i, p in enumerate(pk) if p["flags"].startswith("K")],
            "size": path.stat().st_size, "bytes_per_s": path.stat().st_size / meta["duration_s"]}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return meta


def relay_main(argv: list[str]) -> int:
    """``--relay FILE LOG OFFSET ...``: one process serving the sub-stream to every camera
    without re-encoding, one free port per OFFSET (printed after ``ready``): each port accepts any number of connections (vd's probe, then
    FFmpeg), and each connection gets the file's header packets, then its bytes from the
    keyframe at OFFSET seconds, each video packet sent at its own time (real time, as a camera
    sends). Each connection's start (wall time, file time of its first frame) is appended to
    LOG, so that stream time can be mapped to wall time."""
    import threading

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait
    path, log = Path(argv[0]), Path(argv[1])
    meta = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    pos, ts, lock = meta["pos"], meta["t"], threading.Lock()
    head = data[:pos[0]]

    def send(conn, port, first):
        try:
            w0 = time.time()
            with lock, open(log, "a") as fh:
                fh.write(json.dumps({"port": port, "wall0": w0, "t0": ts[first]}) + "\n")
            conn.sendall(head)
            for i in range(first, len(pos)):
                delay = w0 + ts[i] - ts[first] - time.time()
                if delay > 0:
                    time.sleep(delay)
                conn.sendall(data[pos[i]:pos[i + 1] if i + 1 < len(pos) else len(data)])
        except OSError:
            pass
        finally:
            conn.close()

    def listen(srv, offset):
        first = min((k for k in meta["key"] if ts[k] >= offset - 1e-6), default=0)
        port = srv.getsockname()[1]
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=send, args=(conn, port, first), daemon=True).start()

    ports = []
    for offset in argv[2:]:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        ports.append(srv.getsockname()[1])
        threading.Thread(target=listen, args=(srv, float(offset)), daemon=True).start()
    print("ready " + " ".join(map(str, ports)), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


def start_relay(media: Path, log: Path, offsets: list[float]) -> tuple[subprocess.Popen, list[int]]:
    """The relay (:func:`relay_main`) in its own process (its CPU is measured apart from vd's),
    one port per offset; returned once it listens."""
    proc = subprocess.Popen([sys.executable, __file__, "--relay", str(media), str(log),
                             *(f"{o:g}" for o in offsets)], stdout=subprocess.PIPE, text=True)
    ready = proc.stdout.readline().split()
    if ready[:1] != ["ready"] or len(ready) != len(offsets) + 1:
        stop(proc)
        raise RuntimeError("the relay did not start")
    return proc, [int(p) for p in ready[1:]]


DECODE_CHILD = """
import json, sys, time
import vd.runtime  # noqa: F401  (vd's OpenCV settings)
import cv2
url, seconds = sys.argv[1], float(sys.argv[2])
cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
assert cap.isOpened(), url
cpu0, t0, n = time.process_time(), time.monotonic(), 0
while time.monotonic() - t0 < seconds and cap.grab():
    n += 1
print(json.dumps({"frames": n, "wall_s": time.monotonic() - t0, "cpu_s": time.process_time() - cpu0}))
"""


def decode_cost(media: Path, work: Path, seconds: float) -> dict:
    """What decoding costs, apart from everything else: one process that only grabs (decodes)
    every frame of one sub-stream served live by the relay (CPU seconds per wall second = the
    share of a core one camera's decoding takes), and of the file as fast as it decodes
    (frames per CPU second: the decode capacity of one core, in 15 fps streams)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    relay, (port,) = start_relay(media, work / "decode-relay.jsonl", [0.0])
    t0 = time.monotonic()
    try:
        live = json.loads(subprocess.run(
            [sys.executable, "-c", DECODE_CHILD, f"tcp://127.0.0.1:{port}", str(seconds)],
            capture_output=True, text=True, check=True, env=env, timeout=seconds + 120).stdout)
    finally:
        wall = time.monotonic() - t0
        ru = stop(relay)
    fast = json.loads(subprocess.run([sys.executable, "-c", DECODE_CHILD, str(media), "1e9"],
                                     capture_output=True, text=True, check=True, env=env,
                                     timeout=600).stdout)
    return {"live_fps": round(live["frames"] / live["wall_s"], 1),
            "decode_core_share": round(live["cpu_s"] / live["wall_s"], 3),
            "relay_core_share": round((ru.ru_utime + ru.ru_stime) / wall, 3) if ru else None,
            "file_frames_per_cpu_s": round(fast["frames"] / fast["cpu_s"], 1),
            "streams_per_core_decode_only": round(fast["frames"] / fast["cpu_s"] / SUB_FPS, 1)}


def _onsets(meta: dict, conn: dict, until: float) -> list[float]:
    """Wall times at which people start moving on one connection (the first frame's file time
    ``t0`` was sent at ``wall0``); a connection that starts inside a moving part has no onset
    there."""
    period, out = meta["period_s"], []
    n = math.ceil(conn["t0"] / period + 1e-9)
    while conn["wall0"] + n * period - conn["t0"] < until:
        out.append(conn["wall0"] + n * period - conn["t0"])
        n += 1
    return out


def _wall(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 2) if xs else None


def _latencies(meta: dict, conns: dict, events: list[dict], arrivals: list[tuple], since: float) -> dict:
    """Alarm latency (a start event's ``event_time`` minus the wall time of the onset it
    answers: the last onset before it on that camera) and score delay (when a moving window's
    ``--scores`` line was seen minus the wall time its last frame was sent: ``wall0`` of the
    camera's connection + ``end_s``). Only onsets and window ends after ``since`` (the end of
    the warm-up) count."""
    alarm, delay = [], []
    for e in events:   # (none without the gate: every window is hot, one incident)
        c = conns.get(e["source"])
        if e.get("type") != "start" or c is None:
            continue
        fired = _wall(e["event_time"])
        before = [o for o in _onsets(meta, c, fired) if o <= fired]
        if before and before[-1] >= since and fired - before[-1] < meta["period_s"] - meta["moving_s"]:
            alarm.append(fired - before[-1])
    for seen, row in arrivals:
        c = conns.get(row["source"])
        if c is not None and not row.get("still") and c["wall0"] + row["end_s"] >= since:
            delay.append(seen - (c["wall0"] + row["end_s"]))
    return {"alarms": len(alarm), "alarm_p50_s": _pct(alarm, 50), "alarm_p90_s": _pct(alarm, 90),
            "score_delay_p50_s": _pct(delay, 50), "score_delay_p90_s": _pct(delay, 90)}


def _status_rows(err_path: Path) -> dict[str, list[dict]]:
    per: dict[str, list[dict]] = {}
    for line in err_path.read_text().splitlines():
        m = STATUS.search(line)
        if m:
            row = {k2: float(v) for k2, v in m.groupdict().items() if k2 != "name"}
            st = STILL.search(line)
            row["still"] = float(st["still"]) if st else 0.0
            per.setdefault(m["name"], []).append(row)
    return per


def _poll_scores(path: Path, at: int, arrivals: list) -> int:
    """New whole lines of ``--scores`` since byte ``at``, each with the wall time it was seen."""
    if not path.exists():
        return at
    with open(path, "rb") as fh:
        fh.seek(at)
        chunk = fh.read()
    end = chunk.rfind(b"\n") + 1
    now = time.time()
    for line in chunk[:end].splitlines():
        with contextlib.suppress(ValueError):
            arrivals.append((now, json.loads(line)))
    return at + end


def capacity_run(run: Path, media: Path, meta: dict, k: int, gate: str, a, work: Path) -> dict:
    """k cameras of the sub-stream, staggered (camera i starts i·16/k s into the 16 s period,
    to the second: its moving parts do not line up with the others'), watched by one ``vd
    watch --motion-gate GATE`` for ``a.seconds``. Threshold 1e-6 with the default smoothing:
    a window the gate lets through is hot, a still one (score 0) is not, so each moving part
    is an incident whose start event answers a known onset."""
    tag = f"cap-{gate}-k{k}"
    log, scores, events = (work / f"{tag}.{x}" for x in ("relay.jsonl", "scores.jsonl", "events.jsonl"))
    for p in (log, scores, events):
        p.unlink(missing_ok=True)
    offsets = [float(round(i * meta["period_s"] / k)) % meta["period_s"] for i in range(k)]
    relay, ports = start_relay(media, log, offsets)
    proc, arrivals, at = None, [], 0
    err_path = work / f"{tag}.err"
    try:
        csv = work / f"{tag}.csv"
        csv.write_text("".join(f"cam{i + 1},tcp://127.0.0.1:{p}\n" for i, p in enumerate(ports)))
        with open(err_path, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vd.cli.main", "watch", "--model", str(run), "--sources",
                 str(csv), "--status-every", "5", "--window", f"{a.cap_window:g}", "--stride",
                 f"{a.cap_stride:g}", "--motion-gate", gate, "--threshold", "1e-6", "--scores",
                 str(scores), "--events", str(events)],
                stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            t0 = time.monotonic()   # --seconds count from the first camera's connection
            while not reap(proc) and not log.exists() and time.monotonic() - t0 < 300:
                time.sleep(0.1)
            t0, cpu0, warm = time.monotonic(), None, None
            while not reap(proc) and time.monotonic() - t0 < a.warmup + a.seconds:
                time.sleep(0.1)
                at = _poll_scores(scores, at, arrivals)
                if cpu0 is None and time.monotonic() - t0 >= a.warmup:
                    cpu0, warm, t0w = _proc_sample(proc.pid)[1], time.time(), time.monotonic()
            ru = stop(proc)
        wall = time.monotonic() - (t0w if cpu0 is not None else t0)
    finally:
        if proc is not None and proc.returncode is None:
            stop(proc, signal.SIGKILL)
        rru = stop(relay, grace=5.0)
    by_port: dict[int, list[dict]] = {}
    for line in (log.read_text().splitlines() if log.exists() else []):
        c = json.loads(line)
        by_port.setdefault(c["port"], []).append(c)
    # each port's first connection is vd's probe (one byte read), the second FFmpeg's
    conns = {f"cam{i + 1}": (by_port[p][1] if len(by_port.get(p, [])) > 1 else by_port[p][0])
             for i, p in enumerate(ports) if p in by_port}
    ev = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
    warm = warm or time.time()
    return {"k": k, "gate": gate, **_sustained(_status_rows(err_path), k, proc.returncode, gate, a.warmup),
            **_latencies(meta, conns, ev if gate == "auto" else [], arrivals, warm),
            "wall_s": round(wall, 1),
            "vd_core_share": round((ru.ru_utime + ru.ru_stime - (cpu0 or 0.0)) / wall, 2) if ru else None,
            "relay_core_share": round((rru.ru_utime + rru.ru_stime) / wall, 3) if rru else None,
            "peak_rss_mb": round(ru.ru_maxrss / 1024) if ru else None, "load1": round(os.getloadavg()[0], 2)}


def _sustained(per: dict, k: int, returncode, gate: str, warmup: float) -> dict:
    """The sweep's rule on the status lines (see :func:`sources_run`; the backbone's frames/s:
    the mean of the status intervals after the warm-up), counted from the last status line of
    the warm-up (the first backbone calls build the graph: windows dropped then
    say nothing about the load), plus the still windows. With the gate on, the frames of still
    windows never reach the backbone: the backbone's frames/s is then below the sampling need
    by design, and only lag and drops decide."""
    if returncode == 143:   # SIGTERM's last status line covers a short interval: use the periodic ones
        per = {n: rows[:-1] if len(rows) >= 2 else rows for n, rows in per.items()}
    fps = need = lag0 = lag1 = 0.0
    dw = df = still = win = 0
    skip = max(0, int(warmup // 5) - 1)   # status lines come every 5 s
    for rows in per.values():
        base = rows[min(skip, len(rows) - 1)] if skip else {"lag": rows[0]["lag"], "dw": 0, "df": 0,
                                                          "still": 0, "win": 0}
        after = rows[skip + 1:] or rows[-1:]   # the status intervals after the warm-up
        fps, need = fps + sum(r["fps"] for r in after) / len(after), need + rows[-1]["need"]
        lag0, lag1 = max(lag0, base["lag"]), max(lag1, rows[-1]["lag"])
        dw, df = dw + int(rows[-1]["dw"] - base["dw"]), df + int(rows[-1]["df"] - base["df"])
        still = still + int(rows[-1]["still"] - base["still"])
        win = win + int(rows[-1]["win"] - base["win"])
    ok = (len(per) == k and dw == 0 and df == 0 and lag1 <= lag0 + 1.0 and need > 0
          and (gate == "auto" or fps >= 0.9 * need))
    return {"sustained": ok, "sources_reporting": len(per), "backbone_fps": round(fps, 1),
            "needed_fps": round(need, 1), "lag_first_s": lag0, "lag_last_s": lag1,
            "dropped_windows": dw, "dropped_frames": df, "windows": win, "still_windows": still}


CAP_COLS = ("k", "sustained", "sources_reporting", "backbone_fps", "needed_fps", "lag_first_s",
            "lag_last_s", "dropped_windows", "dropped_frames", "windows", "still_windows",
            "vd_core_share", "relay_core_share", "alarms", "alarm_p50_s", "alarm_p90_s",
            "score_delay_p50_s", "score_delay_p90_s", "peak_rss_mb", "wall_s", "load1")


def capacity(a, work: Path) -> int:
    """The capacity sweep: decode cost, then per gate mode k cameras stepped up until a run
    falls behind; a plan line from the numbers."""
    from vd.extract.registry import get_spec

    name = a.backbones.split(",")[0].strip()
    media, meta = make_substream(work, max(120.0, 60.0 * math.ceil((a.warmup + a.seconds + PERIOD_S + 20.0) / 60.0)))
    run = make_run(work, name, get_spec(name).feature_dim())
    print(f"capacity: {name}, sub-stream 640x360 H.264 {SUB_FPS} fps "
          f"({meta['bytes_per_s'] * 8 / 1000:.0f} kb/s), people moving {MOVING_S:g} s of every "
          f"{PERIOD_S:g} s; window {a.cap_window:g} s, stride {a.cap_stride:g} s "
          f"({20 / a.cap_window:g} sampled frames/s per camera); {a.seconds:g} s per run after {a.warmup:g} s of warm-up; "
          f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    dec = decode_cost(media, work, a.decode_seconds)
    print(f"decode: {json.dumps(dec)}", flush=True)
    best = {}
    for gate in a.cap_gates.split(","):
        print(f"\n## --motion-gate {gate}\n| " + " | ".join(CAP_COLS) + " |\n|" + "---|" * len(CAP_COLS))
        best[gate] = None
        for k in [int(x) for x in a.cap_k.split(",")]:
            r = capacity_run(run, media, meta, k, gate, a, work)
            print("| " + " | ".join(str(r[c]) for c in CAP_COLS) + " |", flush=True)
            if not r["sustained"]:
                break
            best[gate] = r
    plan(best, dec, a)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def plan(best: dict, dec: dict, a) -> None:
    """Cameras per core (from the largest sustained k: vd's CPU per camera, decoding included,
    as measured) and per GPU on paper (decoding stays on the CPU; the backbone's frames/s per
    camera from the run; the GPU's backbone frames/s is an input, not measured here)."""
    need = 20 / a.cap_window
    for gate, r in best.items():
        if r is None:
            print(f"plan (--motion-gate {gate}): not even the smallest k kept up")
            continue
        per_cam = r["vd_core_share"] / r["k"]
        bb = r["backbone_fps"] / r["k"]
        print(f"plan (--motion-gate {gate}): {r['k']} cameras sustained ({r['vd_core_share']:.2f} "
              f"cores for vd watch, {per_cam:.3f} core per camera, of which decoding "
              f"{dec['decode_core_share']:.3f}): about {1 / per_cam:.1f} cameras per core; "
              f"backbone {bb:.2f} of {need:g} sampled frames/s per camera")
        decode = (f"decoding stays on the CPU: {1 / max(dec['decode_core_share'], 1e-9):.0f} live "
                  f"streams per core ({dec['streams_per_core_decode_only']:g} by the file's decode rate)")
        if a.gpu_backbone_fps:
            print(f"  per GPU (estimate, not measured): backbone {a.gpu_backbone_fps:g} frames/s / "
                  f"{bb:.2f} per camera = {a.gpu_backbone_fps / max(bb, 1e-9):.0f} cameras; {decode}")
        else:
            print(f"  per GPU (on paper): cameras = GPU backbone frames/s / {bb:.2f}; {decode} "
                  f"(give --gpu-backbone-fps to compute)")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", default="mobilenet_v3_small,vgg16")
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--max-k", type=int, default=8)
    ap.add_argument("--latency-backbones", default="mobilenet_v3_small",
                    help="Backbones whose alarm latency is measured (each extracts 16 clips).")
    ap.add_argument("--latency-preset", default="hybrid",
                    help="Preset (and --latency-epochs) of the latency run's model.")
    ap.add_argument("--latency-epochs", type=int, default=20)
    ap.add_argument("--latency-above-calm", action="store_true",
                    help="Threshold just above every window score of the calm first 4 s (from vd "
                         "predict on the clip): the pipeline's latency where the model's own "
                         "threshold does not fire.")
    ap.add_argument("--latency-train", choices=("synthetic", "camera"), default="synthetic",
                    help="The latency run's training clips: 12+12 make_synthetic_set clips (other "
                         "scenes), or 'camera': the long clip's own camera at later times, with "
                         "the threshold from vd evaluate --target-recall 0.9 on held-out clips "
                         "of it (a model that really detects; use --latency-preset motion-small "
                         "--latency-epochs 60).")
    ap.add_argument("--latency-only", action="store_true", help="Skip the sources sweep.")
    ap.add_argument("--work", default=str(ROOT / ".cache" / "bench-watch"))
    ap.add_argument("--window", type=float, default=2.0,
                    help="Window seconds (20 sampled frames each: 2 s = 10 frames/s, 4 s = 5).")
    ap.add_argument("--soak", type=float, default=0.0,
                    help="Instead of the k sweep: watch --soak-sources looped sources for this "
                         "many seconds, sampling RSS and CPU share every 30 s (first backbone).")
    ap.add_argument("--soak-sources", type=int, default=1)
    ap.add_argument("--capacity", action="store_true",
                    help="Instead of the k sweep: realistic sub-streams (640x360 H.264 15 fps, "
                         "people moving 25 %% of the time) with and without the motion gate, the "
                         "decode cost, alarm latency and a plan line (first backbone).")
    ap.add_argument("--cap-k", default="4,8,16,24,32,48",
                    help="Capacity: camera counts tried in turn, until one falls behind.")
    ap.add_argument("--cap-gates", default="auto,off", help="Capacity: --motion-gate modes.")
    ap.add_argument("--cap-window", type=float, default=4.0)
    ap.add_argument("--cap-stride", type=float, default=2.0)
    ap.add_argument("--decode-seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=20.0,
                    help="Capacity: seconds after the first connection before --seconds are "
                         "counted (the backbone's first calls; drops then are not counted).")
    ap.add_argument("--gpu-backbone-fps", type=float, default=0.0,
                    help="Capacity plan: a GPU's backbone frames/s, if known (an input, not measured).")
    return ap.parse_args()


def main() -> int:
    if sys.argv[1:2] == ["--relay"]:
        return relay_main(sys.argv[2:])
    a = parse_args()
    import vd.runtime  # noqa: F401  (TF/OpenCV defaults)
    from vd.extract.registry import get_spec
    from vd.synthetic import write_long_clip

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "long.mp4"
    if not clip.exists():
        write_long_clip(clip)
    load0 = os.getloadavg()
    if a.capacity:
        return capacity(a, work)
    if a.soak > 0:
        name = a.backbones.split(",")[0].strip()
        run = make_run(work, name, get_spec(name).feature_dim())
        print(f"soak: {name}, {a.soak_sources} looped source(s), window {a.window:g} s, "
              f"{a.soak:g} s; load average at start {load0[0]:.2f}")
        print("| t_s | rss_mb | cpu_s | cpu_share | load1 |\n|---|---|---|---|---|")
        soak(run, clip, a.soak_sources, a.soak, 30.0, work, a.window)
        return 0
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; "
          f"{os.cpu_count()} CPUs; {a.seconds:g} s per run; window {a.window:g} s, stride "
          f"{a.window / 2:g} s, no TTA")
    cols = ("k", "sources_reporting", "achieved_fps", "needed_fps", "lag_first_s", "lag_last_s",
            "dropped_windows", "dropped_frames", "wall_s", "cpu_s", "peak_rss_mb", "exit",
            "term_s", "sustained")
    for name in [b.strip() for b in a.backbones.split(",") if b.strip()]:
        run = make_run(work, name, get_spec(name).feature_dim())
        print(f"\n## {name} (D={get_spec(name).feature_dim()})")
        print("| " + " | ".join(cols) + " | load1 |")
        print("|" + "---|" * (len(cols) + 1))
        k, best = 1, 0
        while k <= a.max_k and not a.latency_only:
            r = sources_run(run, clip, k, a.seconds, work, a.window)
            print("| " + " | ".join(str(r[c]) for c in cols) + f" | {os.getloadavg()[0]:.2f} |",
                  flush=True)
            if not r["sustained"]:
                break
            best, k = k, k * 2
        if not a.latency_only:
            print(f"{name}: sustains {best} source(s) at {20 / a.window:g} sampled frames/s each "
                  f"(largest k tried that kept up)")
        if name in a.latency_backbones.split(","):
            make = make_camera_run if a.latency_train == "camera" else make_latency_run
            lat = alarm_latency(make(work, name, a.latency_preset, a.latency_epochs),
                                clip, work, seconds=120.0, above_calm=a.latency_above_calm)
            lat["trained_on"] = a.latency_train
            print(f"{name}: alarm latency: {json.dumps(lat)}", flush=True)
    load1 = os.getloadavg()
    print(f"\nload average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
