"""``make demo``: what vd is for, on a small synthetic camera, with the commands a user types.

One fixed camera (``vd.synthetic``: drawn figures walking; now and then they fight):

1. labelled clips of that camera (other days) → ``vd extract`` with mobilenet_v3_small;
2. ``vd train --preset auto`` (the small-data preset it picks below 300 clips);
3. ``vd predict`` on a held-out clip;
4. ``vd watch`` on an untrimmed recording of the camera: incidents with a clip and a snapshot;
5. ``vd evaluate RECORDINGS --annotations``: fights found, false alarms per hour of calm
   footage, seconds to alarm; the alarm setting for a budget of 1 false alarm per hour is
   chosen and saved, and the report draws each recording's scores.

Why not VGG16: it is vd's default for real footage, but its ImageNet weights need internet and
on this kind of CPU it runs at 4–11 frames/s; the demo uses a light backbone with random
weights (``--weights random``) so it runs anywhere in a few minutes. The clips are drawn
shapes: they show every stage working on real encoded video; they are NOT a violence dataset,
and nothing measured here says anything about real footage (:data:`CAVEAT`).

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

from vd.cli.main import main


CAVEAT = ("synthetic clips with a random-weight backbone say nothing about real footage: "
          "no production decision is drawn from them")
BACKBONE = ["--backbone", "mobilenet_v3_small", "--weights", "random"]
CLIP_S = 2.4
# the camera's footage before its training clips (so training and recordings never share frames)
RECORDED = (("calm", 60.0),) * 2


def _run(args: list[str], capture: bool = False) -> tuple[int, str]:
    """``vd ARGS`` in this process, echoed like a shell; with ``capture``, stdout is returned
    instead of printed (progress and errors still reach the terminal)."""
    print(f"\n$ vd {' '.join(shlex.quote(a) for a in args)}", flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        status = main(args)
    print(f"(exit status {status})", flush=True)
    return status, out.getvalue()


def alarm_summary(ev: dict) -> list[str]:
    """The operator's numbers from ``vd evaluate RECORDINGS --annotations --json``, with the caveat."""
    s = ev["summary"]
    lines = [f"measured on {s['recordings']} synthetic recordings ({s['hours'] * 60:.0f} min, "
             f"{s['intervals']} fights): {s['detected']} fights found, {s['false_alarms']} false "
             f"alarm(s) ({_fmt(s['false_alarms_per_hour'])} per calm hour), seconds from a fight's "
             f"start to its alarm p50 {_fmt(s['latency_p50_s'], '{:.1f}')}, p90 "
             f"{_fmt(s['latency_p90_s'], '{:.1f}')}"]
    if ev.get("chosen"):
        c = ev["chosen"]
        lines.append(f"alarm for ≤ 1 false alarm per hour: threshold {c['threshold']:.3g}, "
                     f"{c['smooth']}, cooldown {c['cooldown']:g} s (tuned on these recordings)")
    lines.append(f"what it does not show: {CAVEAT}")
    return lines


def _fmt(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def _material(out: Path) -> tuple[Path, Path, Path, Path]:
    """Training clips, held-out clips and two annotated recordings of one synthetic camera."""
    from vd.synthetic import write_camera_clips, write_recording

    clips, held, recs = out / "clips", out / "held-out", out / "recordings"
    parts = (("violent", CLIP_S), ("calm", CLIP_S))
    if not clips.exists():
        write_camera_clips(clips, parts * 8, skip=RECORDED, seed=0)
    if not held.exists():
        write_camera_clips(held, parts * 2, skip=RECORDED + parts * 8, seed=0)
    ann = recs / "annotations.csv"
    if not ann.exists():
        rows = ["video,start_s,end_s"]
        for name, fights in (("rec_000.mp4", (12.0, 40.0)), ("rec_001.mp4", (25.0,))):
            for a, b in write_recording(recs / name, 60.0, [("violent", t, 5.0) for t in fights],
                                        fps=25.0, seed=0):
                rows.append(f"{name},{a:.3f},{b:.3f}")
        ann.write_text("\n".join(rows) + "\n")
    return clips, held, recs, ann


def run_demo(out: Path, epochs: int = 60) -> int:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    clips, held, recs, ann = _material(out)
    print(f"one synthetic camera (drawn figures walking, sometimes fighting; not a violence "
          f"dataset): labelled clips {clips} (16), held-out clips {held} (4), untrimmed "
          f"recordings {recs} (2 x 60 s, fights in {ann.name})")
    store, run_dir = out / "features.h5", out / "runs" / "demo"
    if _run(["extract", str(clips), str(store), *BACKBONE, "-q"])[0] not in (0, 1):
        return 1
    _run(["info", str(store)])
    status, _ = _run(["train", str(store), "--preset", "auto", "--epochs", str(epochs),
                      "--out", str(run_dir)])
    if status != 0:
        return status
    first = sorted((held / "Violence").glob("*.mp4"))[0]
    _run(["predict", str(first), "--model", str(run_dir)])
    _run(["watch", str(recs / "rec_000.mp4"), "--model", str(run_dir), "--events",
          str(out / "events.jsonl"), "--clips", str(out / "incidents"), "--status-every", "0"])
    status, text = _run(["evaluate", str(recs), "--annotations", str(ann), "--model", str(run_dir),
                         "--target-false-alarms-per-hour", "1", "--save-alarm", "--report",
                         str(out / "report"), "--json"], capture=True)
    summary = [f"measured: no evaluation ran; {CAVEAT}"]
    if status in (0, 1):
        summary = alarm_summary(json.loads(text))
    print()
    print("\n".join(summary))
    print(f"incident clips and snapshots: {out / 'incidents'}/; pictures of each recording's "
          f"scores: {out / 'report'}/")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; everything is under {out}/")
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
    sys.exit(run_demo(target))
