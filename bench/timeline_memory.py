"""Peak memory of `vd predict --window` against the recording's length (streaming timelines).

Builds 1080p30 H.264 recordings of the given lengths (ffmpeg testsrc2, into .cache/, never
committed), a small run (a random-weights store extracted from `vd.synthetic` clips, trained
1 epoch), then runs, per length, as its own subprocess:

    vd predict REC --model RUN --window 2 --stride 1 --no-tta --json

and prints the child's peak RSS (``os.wait4`` rusage, ``ru_maxrss``), the frames that went
through the backbone (from predict's summary line) and the windows scored. Flat RSS over
lengths is the claim; frames grow linearly.

VGG16 on a CPU does about 4 frames/s, and a 2 s / 1 s timeline samples about 10 frames per
second of video: keep lengths small there (the default 0.5 and 1 minute take minutes). With a
faster backbone (``--backbone NAME`` is passed to ``vd extract`` when that option exists) or a
GPU, run 10 and 60 minutes:

    python bench/timeline_memory.py [--minutes 0.5 1] [--backbone NAME] [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench-timeline"
VD = [sys.executable, "-m", "vd.cli.main"]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def recording(minutes: float) -> Path:
    """A 1080p30 H.264 recording of ``minutes`` (cached; ffmpeg's moving test pattern).

    Whole-minute lengths above one are one encoded minute repeated by ffmpeg's concat demuxer
    with stream copy (timestamps continue; encoding an hour of 1080p would take longer than
    the measurement): the decoder still decodes every frame of the hour.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"rec_{minutes:g}min_1080p30.mp4"
    if path.is_file() and path.stat().st_size > 0:
        return path
    tmp = path.with_name(".partial-" + path.name)
    ff = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if minutes > 1 and float(minutes).is_integer():
        unit = recording(1)
        listing = CACHE / f"concat_{minutes:g}.txt"
        listing.write_text(f"file '{unit.name}'\n" * int(minutes))
        subprocess.run(ff + ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(tmp)],
                       check=True)
    else:
        subprocess.run(ff + ["-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={minutes * 60:g}",
                             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(tmp)],
                       check=True)
    os.replace(tmp, path)
    return path


def has_option(command: str, option: str) -> bool:
    r = subprocess.run(VD + [command, "--help"], capture_output=True, text=True, env=env())
    return option in r.stdout


def small_run(tmp: Path, backbone: str | None, epochs: int) -> Path:
    from vd.synthetic import make_synthetic_set

    make_synthetic_set(tmp / "clips", n_per_class=4, seed=0)
    extract = VD + ["extract", str(tmp / "clips"), str(tmp / "f.h5"), "--weights", "random", "-q"]
    if backbone:
        if not has_option("extract", "--backbone"):
            sys.exit("vd extract has no --backbone option here")
        extract += ["--backbone", backbone]
    subprocess.run(extract, check=True, env=env())
    subprocess.run(VD + ["train", str(tmp / "f.h5"), "--epochs", str(epochs), "--out",
                         str(tmp / "run")], check=True, env=env(), stdout=subprocess.DEVNULL)
    return tmp / "run"


def run_child(cmd_rec: Path, run: Path) -> dict:
    """One `vd predict --window` subprocess: peak RSS (MB, its own rusage via wait4), backbone
    frames, windows, seconds."""
    cmd = VD + ["predict", str(cmd_rec), "--model", str(run), "--window", "2", "--stride", "1",
                "--no-tta", "--json"]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env())
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        fo.seek(0), fe.seek(0)
        out, err = fo.read().decode(), fe.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"vd predict failed:\n{err[-2000:]}")
    import json

    m = re.search(r"(\d+) (?:VGG16|backbone) frames", err)
    windows = sum(len(json.loads(line).get("windows", [])) for line in out.splitlines() if line.strip())
    return {"rss_mb": usage.ru_maxrss / 1024, "frames": int(m.group(1)) if m else -1,
            "windows": windows, "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--backbone", default=None, help="passed to `vd extract --backbone` (if it exists)")
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("needs ffmpeg")

    sys.path.insert(0, str(REPO))
    recs = {m: recording(m) for m in args.minutes}
    tmp = Path(tempfile.mkdtemp(prefix="vd-timeline-mem-"))
    try:
        run = small_run(tmp, args.backbone, args.epochs)
        print(f"vd predict REC --window 2 --stride 1 --no-tta --json; 1080p30 H.264; "
              f"backbone {args.backbone or 'vgg16 (random weights)'}")
        print(f"{'minutes':>8} {'peak RSS MB':>12} {'backbone frames':>16} {'windows':>8} {'seconds':>8}")
        rows = []
        for m in args.minutes:
            r = run_child(recs[m], run)
            rows.append((m, r))
            print(f"{m:8g} {r['rss_mb']:12.0f} {r['frames']:16d} {r['windows']:8d} {r['seconds']:8.0f}",
                  flush=True)
        if len(rows) > 1:
            (m0, a), (m1, b) = rows[0], rows[-1]
            print(f"{m1:g} min vs {m0:g} min: RSS ×{b['rss_mb'] / a['rss_mb']:.2f}, "
                  f"backbone frames ×{b['frames'] / max(a['frames'], 1):.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
