"""``make demo``: the whole pipeline on a small synthetic clip set, with the commands a user types.

The clips are drawn shapes in two motion styles (``vd.synthetic``): they exercise every stage
on real encoded video; they are NOT a violence dataset, and the accuracy printed here (4
held-out clips: a smoke test; measured 50 % in one run here, 100 % in another elsewhere) says
nothing about real footage. VGG16 runs with ``--weights random`` because ImageNet
weights need internet; on your own data use the default ``--weights imagenet``.

So the demo prints what it measured and, beside it, :data:`CAVEAT`; it draws no production
decision from synthetic clips (``vd evaluate`` runs with ``--json`` here, and the demo prints
the numbers itself).

Usage: ``python -m vd.cli.demo OUT_DIR``
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import sys
import time
from pathlib import Path

from vd.cli.main import COMMANDS, LazyGroup, main


CAVEAT = ("synthetic clips with random VGG16 weights say nothing about real footage: "
          "no production decision is drawn from them")


def _run(args: list[str], capture: bool = False) -> tuple[int, str]:
    """``vd ARGS`` in this process, echoed like a shell; with ``capture``, stdout is returned
    instead of printed (progress and errors still reach the terminal)."""
    print(f"\n$ vd {' '.join(shlex.quote(a) for a in args)}", flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        status = main(args)
    print(f"(exit status {status})", flush=True)
    return status, out.getvalue()


def measured_summary(ev: dict, n_clips: int) -> list[str]:
    """What the demo measured on its held-out clips (``vd evaluate --json``), with the caveat."""
    m = ev.get("metrics") or {}
    if not m:
        return [f"measured: nothing (no labelled held-out clip was scored); {CAVEAT}"]
    how = "with TTA (" + ", ".join(ev["tta"]["views"]) + ")" if ev.get("tta") else "without TTA"
    return [f"measured on {n_clips} held-out synthetic clips (another seed), {how}: accuracy "
            f"{m['accuracy']:.1%}, violent {m['violent_acc']:.1%}, non-violent "
            f"{m['nonviolent_acc']:.1%}, ROC-AUC {m['roc_auc']:.3f}",
            f"what it shows: every stage ran end to end on real encoded video; {n_clips} clips "
            f"make this a smoke test, not a measurement of accuracy",
            f"what it does not: {CAVEAT} (on labelled real clips, with the default "
            f"--weights imagenet, `vd evaluate` prints one)"]


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
    print(f"synthetic clips (drawn shapes in two motion styles, not a violence dataset): "
          f"{clips} ({2 * per_class}), {held_out} (4, another seed)")
    store = out / "features.h5"
    weights = ["--weights", "random"]
    if _run(["extract", str(clips), str(store), *weights, "--augment", "2"])[0] not in (0, 1):
        return 1
    _run(["info", str(store)])
    run_dir = out / "runs" / "demo"
    if _available("train"):
        status, _ = _run(["train", str(store), "--epochs", str(epochs), "--out", str(run_dir),
                          "--val-fraction", "0.25", "--batch-size", "8", "--checkpoint-every", "5"])
        if status != 0:
            return status
    if _available("predict") and run_dir.exists():
        first = sorted((held_out / "Violence").glob("*.mp4"))[0]
        _run(["predict", str(first), "--model", str(run_dir), *weights])
    summary = [f"measured: no evaluation ran; {CAVEAT}"]
    if _available("evaluate") and run_dir.exists():
        status, text = _run(["evaluate", str(held_out), "--model", str(run_dir), *weights, "--json"],
                            capture=True)
        if status in (0, 1):
            n_clips = len(list(held_out.rglob("*.mp4")))
            summary = measured_summary(json.loads(text), n_clips)
    print()
    print("\n".join(summary))
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; everything is under {out}/")
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
    sys.exit(run_demo(target))
