"""Resident memory and open file descriptors over a long `vd extract` run (issue 5, "Load").

Extracts N short synthetic clips with the real driver and prints RSS and the number of open
file descriptors after clip 20 and after the last clip: neither may grow with the number of
clips (target: RSS within 10 %, descriptors equal).

    python bench/extract_memory.py [--clips 200] [--weights random] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--weights", default="random")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--batch-frames", type=int, default=32)
    args = ap.parse_args()

    from vd.synthetic import make_synthetic_set
    from vd.extract.run import run_extract

    tmp = Path(tempfile.mkdtemp(prefix="vd-mem-"))
    make_synthetic_set(tmp / "clips", n_per_class=args.clips // 2, seed=0, sizes=((160, 120),), frames=(30, 40))
    marks = {}

    def progress(s, todo):
        done = s.clips_ok + s.clips_failed
        if done in (20, todo) and done not in marks:
            marks[done] = (rss_mb(), open_fds(), s.frames_per_second)

    s = run_extract(tmp / "clips", tmp / "f.h5", weights=args.weights, workers=args.workers,
                    batch_frames=args.batch_frames, progress=progress)
    (r20, f20, _), (rn, fn, fps) = marks[20], marks[s.clips_ok + s.clips_failed]
    print(f"{s.clips_ok} clips, {s.frames} frames at {fps:.1f} frames/s ({s.clips_failed} failed)")
    print(f"after clip 20:  RSS {r20:7.1f} MB, open fds {f20}")
    print(f"after clip {s.clips_ok + s.clips_failed}: RSS {rn:7.1f} MB, open fds {fn}")
    print(f"RSS change {100 * (rn / r20 - 1):+.1f} % (target within 10 %); fd change {fn - f20:+d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
