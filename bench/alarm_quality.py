"""What measuring alarm quality costs: `vd evaluate RECORDING --annotations` against `vd watch`
on the same untrimmed recording, and the search over alarm settings against the scoring.

    python bench/alarm_quality.py [--minutes 60] [--fps 15]

Writes one synthetic recording (one camera, people walking, a fight every ~5 minutes) and a
small trained run (the default preset trained one epoch on planted mobilenet_v3_small-width
features: what it scores does not matter here, only what it costs), then in one run:

1. ``vd watch REC --scores`` (the engine alone, every window scored),
2. ``vd evaluate REC --annotations ann.csv`` (the same engine plus the bookkeeping),
3. ``vd.score.alarm_quality.search`` over the window scores of step 1 (≥ 200 settings),

and prints the ratios: evaluate / watch, and the search's time as a share of the scoring.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_run(root: Path) -> Path:
    from vd.data.store import write_plain_store
    from vd.extract.run import store_attrs
    from vd.model.train import train

    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = rng.normal(0, 1, (40, 20, 576)).astype(np.float16)
    videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
    store = write_plain_store(root / "planted.h5", x, y, videos,
                              attrs=store_attrs("random(seed=0)", None, 1, 0, 20,
                                                backbone="mobilenet_v3_small"))
    run = root / "run"
    train(store, epochs=1, out=run, seed=0, checkpoint_every=0, tensorboard=False)
    return run


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--pairs", type=int, default=2, help="watch/evaluate pairs, alternating order")
    args = ap.parse_args()
    from vd.score.alarm_quality import Windows, search
    from vd.synthetic import write_recording

    with tempfile.TemporaryDirectory(prefix="vd-bench-alarm-") as tmp:
        root = Path(tmp)
        seconds = args.minutes * 60.0
        fights = [("violent", t, 6.0) for t in np.arange(120.0, seconds - 30.0, 300.0)]
        t = time.perf_counter()
        intervals = write_recording(root / "rec.mp4", seconds, fights, fps=args.fps, seed=0)
        made = time.perf_counter() - t
        (root / "ann.csv").write_text("video,start_s,end_s\n" + "".join(
            f"rec.mp4,{a:.3f},{b:.3f}\n" for a, b in intervals))
        run = make_run(root)
        vd = [sys.executable, "-m", "vd.cli.main"]
        common = ["--model", str(run), "--window", "4", "--stride", "2"]
        eval_cmd = [*vd, "evaluate", str(root / "rec.mp4"), "--annotations", str(root / "ann.csv"),
                    *common, "--json"]
        pairs = []
        for i in range(args.pairs):  # alternated, so a busy spell does not land on one side only
            watch_cmd = [*vd, "watch", str(root / "rec.mp4"), *common, "--scores",
                         str(root / f"scores-{i}.jsonl"), "--status-every", "0"]
            if i % 2 == 0:
                w = timed(watch_cmd)
                e = timed(eval_cmd)
            else:
                e = timed(eval_cmd)
                w = timed(watch_cmd)
            pairs.append((w, e))
        watch_s = min(w for w, _ in pairs)
        eval_s = min(e for _, e in pairs)
        rows = [json.loads(x) for x in (root / "scores-0.jsonl").read_text().splitlines()]
        w = Windows.of((r["start_s"], r["end_s"], r["violent_probability"]) for r in rows)
        t = time.perf_counter()
        choice = search([("rec.mp4", seconds, intervals, w)], target_fa_per_hour=1.0)
        search_s = time.perf_counter() - t
    print(f"recording: {args.minutes:g} min at {args.fps:g} fps, {len(intervals)} fights, "
          f"{len(w)} windows (4 s every 2 s); written in {made:.1f} s")
    print("pairs (watch s, evaluate s): " + ", ".join(f"({w:.1f}, {e:.1f})" for w, e in pairs))
    print(f"vd watch (scores only)      {watch_s:8.1f} s   (fastest of {len(pairs)})")
    print(f"vd evaluate --annotations   {eval_s:8.1f} s   ratio to watch {eval_s / watch_s:.3f}")
    print(f"search, {len(choice.tried)} settings     {search_s:8.2f} s   "
          f"{100 * search_s / watch_s:.2f} % of the scoring (goal < 5 %)")


if __name__ == "__main__":
    main()
