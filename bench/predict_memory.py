"""Peak RSS and CPU time of `vd predict` with VGG16 against the frames sent per backbone call.

On a CPU, `vd predict` sends a clip's views through the backbone in calls of at most
``vd.score.predict.CPU_ACTIVATION_BYTES`` of the network's largest layer output (VGG16: 10
frames a call); before, all views went in one call (100 frames with TTA, 20 without). This
script measures both in one run, each `vd predict` as its own subprocess (peak RSS and CPU
seconds from ``os.wait4``), with the cap set in the child:

    tta       vd predict CLIP --json                                (5 views x 20 frames)
    timeline  vd predict REC --window 2 --stride 1 --no-tta --json  (1080p30 H.264)

The run is the hybrid preset built and saved untrained, recording VGG16 fc2 with
``random(seed=0)`` weights: scores mean nothing, and both caps must give the same ones (within
float16 rounding: batch-mates change the CPU kernels' rounding). Media are cached in
``.cache/bench-predict-memory/`` (never committed). Needs ffmpeg.

    python bench/predict_memory.py [--caps-mb 128 100000] [--cases tta timeline] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench-predict-memory"
CHILD = ("import sys, vd.score.predict as p; p.CPU_ACTIVATION_BYTES = int(sys.argv[1]) * 2**20; "
         "from vd.cli.main import main; sys.exit(main(sys.argv[2:]))")


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def media(seconds: float) -> tuple[Path, Path]:
    """(a 3 s 640x360 25 fps clip, a ``seconds`` 1080p30 recording), H.264, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for name, size, rate, dur in (("clip.mp4", "640x360", 25, 3), (f"rec_{seconds:g}s_1080p30.mp4", "1920x1080", 30, seconds)):
        path = CACHE / name
        if not path.is_file():
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size={size}:rate={rate}:duration={dur:g}", "-c:v", "libx264",
                            "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)
        out.append(path)
    return out[0], out[1]


def untrained_vgg16_run(out: Path) -> Path:
    sys.path.insert(0, str(REPO))
    from vd import __version__, runtime
    from vd.data.store import EXTRACTOR_KEYS
    from vd.extract.run import store_attrs
    from vd.model.builder import build_model
    from vd.model.presets import get_preset
    from vd.model.runfolder import write_json
    from vd.model.runconfig import RUN_SCHEMA

    keras = runtime.load_keras()
    out.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    build_model(get_preset("hybrid"), 20, 4096).save(out / "model.keras")
    a = store_attrs("random(seed=0)", None, 1, 0, 20)
    write_json(out / "config.json", {"vd_run_schema": RUN_SCHEMA, "vd_version": __version__,
                                     "preset": "hybrid", "frames": 20, "dim": 4096,
                                     "extractor": {k: a.get(k) for k in EXTRACTOR_KEYS},
                                     "threshold": 0.5, "label_map": {"0": "nonviolent", "1": "violent"}})
    return out


def child(cap_mb: int, args: list[str]) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(cap_mb), *args], stdout=fo,
                                stderr=fe, env=env(), cwd=tempfile.gettempdir())
        _, status, ru = os.wait4(proc.pid, 0)
        fo.seek(0), fe.seek(0)
        out, err = fo.read().decode(), fe.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"vd predict failed:\n{err[-2000:]}")
    d = json.loads(out.strip().splitlines()[-1])
    probs = [w["violent_probability"] for w in d.get("windows", [])] or [d["violent_probability"]]
    return {"rss_mb": ru.ru_maxrss / 1024, "cpu_s": ru.ru_utime + ru.ru_stime,
            "wall_s": time.perf_counter() - start, "probs": probs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--caps-mb", type=int, nargs="+", default=[128, 100000],
                    help="activation budgets per call, MB (100000 = every view in one call)")
    ap.add_argument("--cases", nargs="+", default=["tta", "timeline"], choices=["tta", "timeline"])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the 1080p recording")
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("needs ffmpeg")
    clip, rec = media(args.seconds)
    tmp = Path(tempfile.mkdtemp(prefix="vd-predict-mem-"))
    try:
        run = untrained_vgg16_run(tmp / "run")
        cases = {"tta": [str(clip)], "timeline": [str(rec), "--window", "2", "--stride", "1", "--no-tta"]}
        print("vd predict with VGG16 (random weights), untrained hybrid run; each row its own process")
        print(f"{'case':>9} {'cap MB':>7} {'peak RSS MB':>12} {'CPU s':>7} {'wall s':>7}  max |Δp| vs first cap")
        for case in args.cases:
            first = None
            for cap in args.caps_mb:
                r = child(cap, ["predict", *cases[case], "--model", str(run), "--json"])
                first = first or r
                dp = max(abs(a - b) for a, b in zip(r["probs"], first["probs"]))
                print(f"{case:>9} {cap:7d} {r['rss_mb']:12.0f} {r['cpu_s']:7.1f} {r['wall_s']:7.1f}  {dp:.2e}",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
