"""A long clip costs about its sampled frames: `vd extract` on 10 minutes vs 10 seconds.

Two 1080p30 H.264 High-profile clips (ffmpeg libx264 -profile:v high -crf 23, B-frames, the
default GOP of 250; testsrc2 moving pattern), 10 s and 10 min, cached in .cache/bench-seek/
(never committed; encoding the 10-minute one takes ~15-20 min on 2 busy cores):

1. decode only — `read_frames` of the 20 sampled frames of the 10-minute clip, seeking
   (``seek="auto"``) vs sequential (``seek="never"``), and whether the two gave the same frames
   (pixels bit for bit, times, frame count);
2. end to end — `run_extract` (VGG16 fc2, random weights, network built and traced before the
   clock starts) on a folder holding only the 10-s clip, then one holding only the 10-min clip:
   seconds each and their ratio (target < 3).

    python bench/extract_seek.py [--minutes 10] [--preset veryfast] [--no-sequential]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench-seek"


def clip(seconds: int, preset: str) -> Path:
    """The cached 1080p30 H.264 High-profile clip of ``seconds`` (made with ffmpeg if absent)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"h264high_{seconds}s_1080p30.mp4"
    if path.is_file() and path.stat().st_size > 0:
        return path
    if shutil.which("ffmpeg") is None:
        sys.exit("needs ffmpeg to make the clips")
    tmp = path.with_name(".partial-" + path.name)
    print(f"encoding {path.name} (once; cached)", flush=True)
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}", "-c:v", "libx264",
                    "-profile:v", "high", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p",
                    "-f", "mp4", str(tmp)], check=True)
    os.replace(tmp, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--preset", default="veryfast", help="libx264 preset for making the clips")
    ap.add_argument("--no-sequential", action="store_true", help="skip the sequential decode (~1 min)")
    ap.add_argument("--batch-frames", type=int, default=32)
    args = ap.parse_args()

    from vd.extract.decode import read_frames
    from vd.extract.run import run_extract
    from vd.extract.sampling import sample_indices

    short, long = clip(10, args.preset), clip(args.minutes * 60, args.preset)
    plan = lambda n: sample_indices(n)  # noqa: E731

    t = time.perf_counter()
    a = read_frames(long, plan)
    seek_s = time.perf_counter() - t
    print(f"decode, {args.minutes}-min clip, 20 sampled frames: {a.method} {seek_s:.2f} s "
          f"({a.n_frames} frames in the clip)", flush=True)
    if not args.no_sequential:
        t = time.perf_counter()
        b = read_frames(long, plan, seek="never")
        seq_s = time.perf_counter() - t
        same = (a.n_frames == b.n_frames and np.array_equal(a.indices, b.indices)
                and np.array_equal(a.frames, b.frames) and np.array_equal(a.times, b.times))
        print(f"decode, sequential: {seq_s:.2f} s  ({seq_s / seek_s:.1f} x the seeking read; "
              f"same frames, pixels and times: {'yes' if same else 'NO'})", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))  # same filesystem: hard links
    secs = {}
    for name, path in (("10 s", short), (f"{args.minutes} min", long)):
        d = tmp / name.replace(" ", "") / "Violence"
        d.mkdir(parents=True)
        os.link(path, d / path.name)  # vd skips symlinks
        s = run_extract(d.parent, tmp / f"{name.replace(' ', '')}.h5", weights="random",
                        batch_frames=args.batch_frames, warm_up=True)
        assert s.clips_ok == 1, s.failures
        secs[name] = s.seconds
        print(f"vd extract, {name} clip: {s.seconds:.2f} s ({s.frames} frames through VGG16)", flush=True)
    ratio = secs[f"{args.minutes} min"] / secs["10 s"]
    print(f"ratio {args.minutes} min / 10 s: {ratio:.2f}   (target < 3)")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
