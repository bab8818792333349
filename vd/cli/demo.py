"""``make demo``: the whole pipeline on a small synthetic clip set, with the commands a user types.

The clips are drawn shapes in two motion styles (``vd.synthetic``): they show that the
pipeline sees motion end to end; they are NOT a violence dataset, and the accuracy printed
here says nothing about real footage. VGG16 runs with ``--weights random`` because ImageNet
weights need internet; on your own data use the default ``--weights imagenet``.

Usage: ``python -m vd.cli.demo OUT_DIR``
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from vd.cli.main import COMMANDS, LazyGroup, main


def _run(args: list[str]) -> int:
    print(f"\n$ vd {' '.join(shlex.quote(a) for a in args)}", flush=True)
    status = main(args)
    print(f"(exit status {status})", flush=True)
    return status


def _available(name: str) -> bool:
    return name in COMMANDS and LazyGroup._load(name) is not None


def run_demo(out: Path, per_class: int = 8, epochs: int = 25) -> int:
    from vd.synthetic import make_synthetic_set

    out.mkdir(parents=True, exist_ok=True)
    clips, held_out = out / "clips", out / "held-out"
    t0 = time.perf_counter()
    if not clips.exists():
        make_synthetic_set(clips, n_per_class=per_class, seed=0)
    if not held_out.exists():
        make_synthetic_set(held_out, n_per_class=2, seed=1)
    print(f"synthetic clips: {clips} ({2 * per_class}), {held_out} (4, another seed)")
    store = out / "features.h5"
    weights = ["--weights", "random"]
    if _run(["extract", str(clips), str(store), *weights, "--augment", "2"]) not in (0, 1):
        return 1
    _run(["info", str(store)])
    run_dir = out / "runs" / "demo"
    if _available("train"):
        status = _run(["train", str(store), "--epochs", str(epochs), "--out", str(run_dir),
                       "--val-fraction", "0.25", "--batch-size", "8", "--checkpoint-every", "5"])
        if status != 0:
            return status
    if _available("predict") and run_dir.exists():
        first = sorted((held_out / "Violence").glob("*.mp4"))[0]
        _run(["predict", str(first), "--model", str(run_dir), *weights])
    if _available("evaluate") and run_dir.exists():
        _run(["evaluate", str(held_out), "--model", str(run_dir), *weights])
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; everything is under {out}/")
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
    sys.exit(run_demo(target))
