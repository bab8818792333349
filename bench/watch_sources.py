"""How many live sources `vd watch` sustains, per backbone; how late its alarm comes; RSS and
CPU share over a long run.

Sources: k copies of the synthetic long clip (calm 4 s / violent 4 s / calm 4 s, 320x240, 25
fps; ``vd.synthetic.write_long_clip``) served as live MPEG-TS over TCP on 127.0.0.1, one
``ffmpeg -re -stream_loop -1 ... -f mpegts tcp://127.0.0.1:PORT?listen=1`` per source. ``vd
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

Every ffmpeg server and vd watch started here is ended in ``finally``. Needs ffmpeg.

    python bench/watch_sources.py [--backbones mobilenet_v3_small,vgg16] [--seconds 40]
                                  [--window 2] [--max-k 8] [--latency-backbones mobilenet_v3_small]
                                  [--latency-preset hybrid] [--latency-above-calm] [--latency-only]
                                  [--latency-train synthetic|camera] [--latency-epochs 20]
                                  [--soak 600 --soak-sources 1] [--work .cache/bench-watch]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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

STATUS = re.compile(r"vd watch: (?P<name>\S+): stream (?P<t>[\d.]+) s, lag (?P<lag>[\d.]+) s, "
                    r"sampled (?P<fps>[\d.]+)/(?P<need>[\d.]+) fps, .*windows (?P<win>\d+), "
                    r"dropped (?P<dw>\d+) windows/(?P<df>\d+) frames")
ONSET_S = 4.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(path: Path, port: int, loop: bool) -> subprocess.Popen:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", str(path), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g", "10", "-pix_fmt", "yuv420p", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    train(store, epochs=1, out=run, seed=0, checkpoint_every=0, tensorboard=False,
          log=lambda m: None)
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
def watching(run: Path, clip: Path, k: int, work: Path, tag: str, window: float):
    """k looped MPEG-TS servers of ``clip`` on 127.0.0.1 and one ``vd watch`` of them all:
    yields (the watch process, its stderr file, the monotonic time it started); the servers
    are stopped and the watch process killed (if still running) on the way out."""
    servers, ports = [], []
    proc = None
    err_path = work / f"{tag}-k{k}.err"
    try:
        for _ in range(k):
            ports.append(free_port())
            servers.append(serve(clip, ports[-1], loop=True))
        time.sleep(0.5)
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
        for s in servers:
            stop(s, grace=5.0)


def sources_run(run: Path, clip: Path, k: int, seconds: float, work: Path, window: float = 2.0) -> dict:
    with watching(run, clip, k, work, "watch", window) as (proc, err_path, t0):
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
    with watching(run, clip, k, work, "soak", window) as (proc, err_path, t0):
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


def main() -> int:
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
    a = ap.parse_args()
    import vd.runtime  # noqa: F401  (TF/OpenCV defaults)
    from vd.extract.registry import get_spec
    from vd.synthetic import write_long_clip

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "long.mp4"
    if not clip.exists():
        write_long_clip(clip)
    load0 = os.getloadavg()
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
