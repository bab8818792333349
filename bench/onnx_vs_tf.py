"""TensorFlow (Keras, oneDNN on) against ONNX Runtime for the VGG16 fc2 graph, on this CPU.

One run, same process, same frames, same weights. The ONNX graph is built here with
``onnx.helper`` straight from the Keras model's weights (``tf2onnx`` ran out of memory on
VGG16): uint8 RGB NHWC in → Cast → channel flip (RGB→BGR) → minus the ImageNet BGR means
(exactly vd's in-graph ``vgg_preprocess_layer``) → NCHW → 13 × (Conv 3x3 same + ReLU) with
5 MaxPools → back to NHWC before Flatten (so fc1's Keras weights line up) → Gemm fc1 + ReLU →
Gemm fc2 + ReLU. Both runtimes take the same uint8 frames.

Per batch size (1, 8, 20, 32): a warm-up call each, then TF and ORT calls interleaved (so load
from other processes hits both alike); frames/s from the median call. Equality: TF vs ORT on
the same frames, as vd stores them (float16): max abs diff, max relative error, whether the
float16 arrays are equal, the fraction of float16-equal values and the largest float16 ULP gap;
and, as the yardstick, TF against itself at a different batch size (oneDNN picks kernels per
shape, so TF is not bit-stable across batch sizes either).

Needs ``pip install onnx onnxruntime`` (not vd dependencies).

Usage: python bench/onnx_vs_tf.py [--batches 1,8,20,32] [--seconds-per-batch 30] [--weights random]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONV_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))  # (block, convs)


def load_line(ncpu: int) -> str:
    one, five, fifteen = os.getloadavg()
    note = "  <-- HIGH: other processes compete for the cores; fps and ratios may be distorted" \
        if one >= 0.5 * ncpu else ""
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {ncpu} cores{note}"


def build_onnx(keras_model):
    """The ``Backbone`` model (uint8 in → fc2) as an ONNX ModelProto, from its Keras weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from vd.extract.registry import IMAGENET_BGR_MEANS

    cut = keras_model.get_layer("vgg16_to_fc2")
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    nodes.append(helper.make_node("Cast", ["rgb_uint8"], ["x_f"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Gather", ["x_f", const("bgr_idx", np.array([2, 1, 0], np.int64))],
                                  ["x_bgr"], axis=3))
    nodes.append(helper.make_node("Sub", ["x_bgr", const("means", np.array(IMAGENET_BGR_MEANS, np.float32))],
                                  ["x_pre"]))
    nodes.append(helper.make_node("Transpose", ["x_pre"], ["x0"], perm=[0, 3, 1, 2]))  # NHWC → NCHW
    x = "x0"
    for block, convs in CONV_BLOCKS:
        for i in range(1, convs + 1):
            name = f"block{block}_conv{i}"
            kernel, bias = cut.get_layer(name).get_weights()  # HWIO, (O,)
            w = const(f"{name}_W", kernel.transpose(3, 2, 0, 1).astype(np.float32))  # → OIHW
            b = const(f"{name}_B", bias.astype(np.float32))
            nodes.append(helper.make_node("Conv", [x, w, b], [f"{name}_c"], kernel_shape=[3, 3],
                                          pads=[1, 1, 1, 1], strides=[1, 1]))
            nodes.append(helper.make_node("Relu", [f"{name}_c"], [name]))
            x = name
        pool = f"block{block}_pool"
        nodes.append(helper.make_node("MaxPool", [x], [pool], kernel_shape=[2, 2], strides=[2, 2]))
        x = pool
    nodes.append(helper.make_node("Transpose", [x], ["pool5_nhwc"], perm=[0, 2, 3, 1]))  # Keras order
    nodes.append(helper.make_node("Flatten", ["pool5_nhwc"], ["flat"], axis=1))
    x = "flat"
    for name in ("fc1", "fc2"):
        kernel, bias = cut.get_layer(name).get_weights()  # (in, out): Gemm's B without transB
        nodes.append(helper.make_node("Gemm", [x, const(f"{name}_W", kernel.astype(np.float32)),
                                               const(f"{name}_B", bias.astype(np.float32))], [f"{name}_g"]))
        out = "fc2_out" if name == "fc2" else name
        nodes.append(helper.make_node("Relu", [f"{name}_g"], [out]))
        x = out
    graph = helper.make_graph(
        nodes, "vgg16_fc2",
        [helper.make_tensor_value_info("rgb_uint8", TensorProto.UINT8, ["N", 224, 224, 3])],
        [helper.make_tensor_value_info("fc2_out", TensorProto.FLOAT, ["N", 4096])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vd-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def f16_ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float16 steps between a and b stored as float16 (monotone int map)."""
    def ordered(x):
        i = x.astype(np.float16).view(np.int16).astype(np.int32)
        return np.where(i < 0, -32768 - i, i)  # sign-magnitude → two's-complement order
    return np.abs(ordered(a) - ordered(b))


def f16_ulp_gap(a: np.ndarray, b: np.ndarray) -> int:
    return int(f16_ulps(a, b).max())


def compare(ref: np.ndarray, other: np.ndarray) -> dict:
    diff = np.abs(ref.astype(np.float64) - other.astype(np.float64))
    scale = float(np.abs(ref).max())
    big = np.abs(ref) >= 1e-3 * scale
    a16, b16 = ref.astype(np.float16), other.astype(np.float16)
    return {
        "max_abs": float(diff.max()),
        "scale": scale,
        "max_rel": float((diff[big] / np.abs(ref[big])).max()) if big.any() else 0.0,
        "f16_equal": bool(np.array_equal(a16, b16)),
        "f16_frac": float((a16 == b16).mean()),
        "ulp": f16_ulp_gap(ref, other),
        "ulp1_frac": float((f16_ulps(ref, other) <= 1).mean()),
    }


def fmt_cmp(c: dict) -> str:
    return (f"max|d| {c['max_abs']:.2g} (max|f| {c['scale']:.2g})  max rel {c['max_rel']:.2g}  "
            f"f16 equal: array {c['f16_equal']}, {100 * c['f16_frac']:.2f}% of values, "
            f"{100 * c['ulp1_frac']:.2f}% within 1 ulp, max {c['ulp']} ulp")


def bench_frames(n: int) -> np.ndarray:
    """n decoded 224x224 uint8 RGB frames from seeded synthetic clips (vd's decode path)."""
    from vd.synthetic import make_synthetic_set
    from vd.extract.decode import read_frames
    from vd.extract.sampling import sample_indices

    tmp = Path(tempfile.mkdtemp(prefix="vd-bench-onnx-"))
    clips = make_synthetic_set(tmp / "clips", n_per_class=1, seed=0)[:2]
    per = (n + len(clips) - 1) // len(clips)
    frames = np.concatenate([read_frames(p, lambda k: sample_indices(k, per)).frames for p in clips])
    if len(frames) < n:  # clips shorter than `per` repeat frames: read_frames keeps each once
        frames = np.concatenate([frames] * (n // len(frames) + 1))
    return np.ascontiguousarray(frames[:n].astype(np.uint8))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,8,20,32")
    ap.add_argument("--seconds-per-batch", type=float, default=25.0,
                    help="timed budget per batch size, both runtimes together (after warm-up)")
    ap.add_argument("--min-reps", type=int, default=2)
    ap.add_argument("--max-reps", type=int, default=40)
    ap.add_argument("--weights", default="random")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    ncpu = len(os.sched_getaffinity(0))
    t_start = time.perf_counter()

    try:
        import onnxruntime as ort
    except ImportError:
        print("needs onnx and onnxruntime: pip install onnx onnxruntime", file=sys.stderr)
        return 2
    from vd import runtime
    from vd.extract.network import Backbone

    keras = runtime.load_keras()
    import tensorflow as tf

    print(load_line(ncpu))
    print(f"TF {tf.__version__} / Keras {keras.__version__}, TF_ENABLE_ONEDNN_OPTS="
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, intra-op threads "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}; "
          f"onnxruntime {ort.__version__}")

    t = time.perf_counter()
    bb = Backbone(args.weights, "fc2", batch_frames=max(batches), seed=0)
    t_tf_build = time.perf_counter() - t
    t = time.perf_counter()
    proto = build_onnx(bb.model)
    t_graph = time.perf_counter() - t
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = ncpu
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    del proto
    t_ort_build = time.perf_counter() - t
    print(f"weights {bb.weights_label}; build: Keras VGG16 {t_tf_build:.1f} s, ONNX graph {t_graph:.1f} s + ORT session "
          f"{t_ort_build - t_graph:.1f} s (ORT intra-op threads {ncpu}, ORT_ENABLE_ALL)")

    frames = bench_frames(max(batches))
    print(f"{len(frames)} uint8 RGB frames from synthetic clips; timed budget {args.seconds_per_batch:.0f} s "
          f"per batch size; frames/s from the median call\n")

    def run_tf(x):
        return bb(x, batch_frames=len(x))

    def run_ort(x):
        return sess.run(None, {"rgb_uint8": x})[0]

    results, outs_tf = [], {}
    print("speed (frames/s from the median call; [slowest..fastest call])")
    print(f"{'batch':>5} {'reps':>4} {'TF (oneDNN)':>22} {'ONNX Runtime':>22} {'ORT/TF':>7}")
    for b in batches:
        x = frames[:b]
        t0 = time.perf_counter()
        f_tf = run_tf(x)  # warm-up (TF traces this shape) and the equality sample
        f_ort = run_ort(x)
        warm = time.perf_counter() - t0
        reps = int(min(args.max_reps, max(args.min_reps, args.seconds_per_batch // warm)))
        tt, to = [], []
        for i in range(reps):  # interleaved, alternating who goes first
            for name in (("tf", "ort") if i % 2 else ("ort", "tf")):
                t = time.perf_counter()
                run_tf(x) if name == "tf" else run_ort(x)
                (tt if name == "tf" else to).append(time.perf_counter() - t)
        fps_tf, fps_ort = b / statistics.median(tt), b / statistics.median(to)
        outs_tf[b] = f_tf
        results.append((b, fps_tf, fps_ort, compare(f_tf, f_ort)))
        col = lambda fps, ts: f"{fps:7.2f} [{b / max(ts):5.2f}..{b / min(ts):5.2f}]"  # noqa: E731
        print(f"{b:>5} {reps:>4} {col(fps_tf, tt):>22} {col(fps_ort, to):>22} {fps_ort / fps_tf:>6.2f}x",
              flush=True)

    print("\nequality, fc2 features on the same frames (max rel: over |f| >= 1e-3·max|f|)")
    for b, _, _, c in results:
        print(f"  TF vs ORT  batch {b:>2}: {fmt_cmp(c)}")
    ref_b = max(batches)
    for b in batches:
        if b != ref_b:
            print(f"  TF b{b:<2} vs TF b{ref_b}: {fmt_cmp(compare(outs_tf[ref_b][:b], outs_tf[b]))}")

    print(f"\nTF vs ORT, all batches: float16 arrays equal: {all(r[3]['f16_equal'] for r in results)}; "
          f"lowest f16-equal fraction {100 * min(r[3]['f16_frac'] for r in results):.2f}%; "
          f"largest gap {max(r[3]['ulp'] for r in results)} f16 ulp; "
          f"largest max|d| {max(r[3]['max_abs'] for r in results):.2g}")
    print(load_line(ncpu))
    print(f"total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
