"""Score one video file with a graph from `vd export --with-backbone`, using only onnxruntime,
OpenCV and numpy (no vd, no TensorFlow).

    vd export runs/NAME --with-backbone clip.onnx
    python score_clip_onnx.py clip.onnx video.mp4 [--threshold 0.5]

Prints one JSON line: {"path", "violent_probability", "label", "n_frames", "frame_index"}.

It does what `vd predict --no-tta` does before the backbone, so the score is the same (within
1e-3): decode every frame in order, count the frames that really decode (container headers
lie), take the midpoints of T equal segments of them (frame floor((i + 0.5) * n / T)), resize
each kept frame to S x S with INTER_AREA and convert BGR -> RGB; then the graph takes the
(T, S, S, 3) uint8 frames and returns the violent probability (calibrated when the run was).
T and S are read from the graph's input shape.
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np
import onnxruntime as ort


def sample_indices(n_frames: int, k: int) -> np.ndarray:
    """k frame numbers spread uniformly over n_frames: the midpoint of each of k segments."""
    i = np.arange(k, dtype=np.float64)
    return np.minimum(np.floor((i + 0.5) * n_frames / k), n_frames - 1).astype(np.int64)


def to_rgb_square(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.ndim == 2 or frame.shape[2] == 1:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def count_frames(path: str) -> int:
    """Frames that decode (grab and retrieve), read in order: the header's count can be wrong."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {path}")
    n = 0
    while cap.grab():
        ok, _ = cap.retrieve()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def sampled_frames(path: str, frames: int, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(T, S, S, 3) uint8 RGB frames at the sampled indices, the indices, frames decoded."""
    n = count_frames(path)
    if n == 0:
        raise SystemExit(f"no frame of {path} decodes")
    wanted = sample_indices(n, frames)
    need = set(wanted.tolist())
    kept = {}
    cap = cv2.VideoCapture(path)
    for i in range(n):
        if not cap.grab():
            break
        if i in need:
            ok, frame = cap.retrieve()
            if not ok:
                break
            kept[i] = to_rgb_square(frame, size)
    cap.release()
    if not need <= set(kept):
        raise SystemExit(f"decoding {path} is not repeatable")
    return np.stack([kept[i] for i in wanted.tolist()]), wanted, n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("graph", help="ONNX file from `vd export --with-backbone`")
    ap.add_argument("video")
    ap.add_argument("--threshold", type=float, default=0.5,
                    help="decision threshold (vd export prints the run's)")
    args = ap.parse_args(argv)

    sess = ort.InferenceSession(args.graph, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    frames, size = int(inp.shape[0]), int(inp.shape[1])  # (T, S, S, 3) uint8
    pixels, index, n = sampled_frames(args.video, frames, size)
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, {inp.name: pixels})))
    p = float(out["violent_probability"][0])
    print(json.dumps({"path": args.video, "violent_probability": p, "label": int(p >= args.threshold),
                      "n_frames": n, "frame_index": index.tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
