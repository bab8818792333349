"""``vd export``: a run as one bundle file, or as an ONNX / TFLite / SavedModel graph.

Graphs (built with Keras, exported with Keras' own ``Model.export`` where it works):

- the **head** (default): input ``features`` float32 (N, T, D) — the run's features, T =
  ``frames`` (20), D = the backbone's feature dimension — and two outputs:
  ``violent_probability`` float32 (N,) = ``Run.violent_probability`` (calibrated with the
  run's temperature when the run has calibration.json, ``softmax(log p / T)`` column 1; the
  raw softmax column 1 otherwise) and ``softmax`` float32 (N, 2) = what the run's
  ``model.keras`` outputs (column 1 = violent, before calibration);
- ``with_backbone``: input ``frames`` uint8 (T, S, S, 3), one clip's T sampled RGB frames
  resized to the backbone's S×S (INTER_AREA, as vd decodes), → the same two outputs for that
  one clip, (1,) and (1, 2). Inside: the backbone with its in-graph preprocessing, the
  features rounded to float16 as vd's stores and ``vd predict`` keep them, then the head. This
  is ``vd predict --no-tta``'s score of a clip whose frames were sampled as vd samples them.

Formats: ``onnx`` (``model.export(format="onnx")``, tf2onnx underneath; the head's batch is
dynamic), ``savedmodel`` (``model.export(format="tf_saved_model")``, signature
``serving_default``), ``tflite`` (Keras exports a SavedModel with a fixed batch of 1, then
:func:`vd.runtime.tflite_from_saved_model` converts it with builtin ops only: Keras' own
``format="litert"`` keeps the LSTMs' TensorList loops as Flex (select TF) ops when the batch is
dynamic, which the TFLite interpreter cannot run without the Flex delegate). A TFLite head takes
one clip at a time: (1, T, D).

Every export is checked before it is reported: the written file is run (onnxruntime, the TFLite
interpreter, TensorFlow) on probe inputs and compared with Keras; ``ExportResult.check`` holds
the largest absolute difference in the violent probability.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError

FORMATS = ("bundle", "onnx", "tflite", "savedmodel")
SUFFIXES = {".vdm": "bundle", ".onnx": "onnx", ".tflite": "tflite"}
PROBE_ROWS = 4  # feature rows (head) the self-check compares


@dataclass
class ExportResult:
    """What ``vd export`` wrote. ``check``: {runtime, max_abs_diff, inputs} or None."""

    format: str
    path: str
    source: str
    bytes: int
    with_backbone: bool = False
    inputs: list = field(default_factory=list)     # [{name, shape, dtype}]
    outputs: list = field(default_factory=list)
    calibrated: bool = False
    temperature: float = 1.0
    threshold: float = 0.5
    extractor: dict = field(default_factory=dict)
    check: dict | None = None
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def format_for(out, fmt: str | None) -> str:
    """``--format``, or the one ``out``'s suffix names (``.vdm`` bundle, ``.onnx``, ``.tflite``);
    anything else without ``--format`` is a bundle."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return fmt
    return SUFFIXES.get(Path(out).suffix.lower(), "bundle")


# --------------------------------------------------------------------------- graphs


def _layers():
    """The export-only layers (never saved in a .keras file, so never loaded under safe_mode)."""
    from vd import runtime

    keras = runtime.load_keras()
    from keras import ops

    class ViolentProbability(keras.layers.Layer):
        """(N, 2) softmax → (N,) ``sigmoid((log p1 − log p0) / T)``: Run.violent_probability."""

        def __init__(self, temperature: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            self.temperature = float(temperature)

        def call(self, p):
            if self.temperature == 1.0:
                return p[:, 1]
            logp = ops.log(ops.maximum(p, 1e-37))
            return ops.sigmoid((logp[:, 1] - logp[:, 0]) / self.temperature)

    class Float16Round(keras.layers.Layer):
        """Features rounded to float16 and back, as vd's stores and ``vd predict`` keep them."""

        def call(self, x):
            return ops.cast(ops.cast(x, "float16"), "float32")

    class OneClip(keras.layers.Layer):
        """(T, D) → (1, T, D)."""

        def call(self, x):
            return ops.expand_dims(x, 0)

    return keras, ViolentProbability, Float16Round, OneClip


def head_model(run):
    """features (N, T, D) float32 → {violent_probability (N,), softmax (N, 2)}."""
    keras, ViolentProbability, _, _ = _layers()
    x = keras.Input((run.frames, run.dim), dtype="float32", name="features")
    softmax = run.model(x)
    prob = ViolentProbability(run.temperature, name="calibrated")(softmax)
    model = keras.Model(x, {"violent_probability": prob, "softmax": softmax}, name="vd_head")
    model(np.zeros((1, run.frames, run.dim), np.float32))  # Keras exports called models only
    return model


def full_model(run, backbone):
    """frames (T, S, S, 3) uint8 → {violent_probability (1,), softmax (1, 2)} for one clip."""
    keras, ViolentProbability, Float16Round, OneClip = _layers()
    s = backbone.input_size
    frames = keras.Input(batch_shape=(run.frames, s, s, 3), dtype="uint8", name="frames")
    feats = OneClip(name="one_clip")(Float16Round(name="float16_round")(backbone.model(frames)))
    softmax = run.model(feats)
    prob = ViolentProbability(run.temperature, name="calibrated")(softmax)
    model = keras.Model(frames, {"violent_probability": prob, "softmax": softmax}, name="vd_clip")
    model(np.zeros((run.frames, s, s, 3), np.uint8))
    return model


def keras_reference(run, backbone, inputs: np.ndarray) -> np.ndarray:
    """The violent probability vd itself gives: ``Run.violent_probability`` of the features
    (for frames: the backbone's features, rounded to float16, as ``vd predict`` does)."""
    if backbone is None:
        return run.violent_probability(inputs)
    feats = backbone(inputs, batch_frames=len(inputs)).astype(np.float16)
    return run.violent_probability(feats[None])


def probe_inputs(run, backbone, seed: int = 0) -> np.ndarray:
    """Random inputs for the self-check: feature rows around the store's scale, or one clip of
    smooth random frames."""
    rng = np.random.default_rng(seed)
    if backbone is None:
        return rng.normal(0.0, 1.0, (PROBE_ROWS, run.frames, run.dim)).astype(np.float32)
    s = backbone.input_size
    base = rng.integers(0, 256, (1, s // 8, s // 8, 3)).astype(np.float32)
    drift = rng.normal(0.0, 8.0, (run.frames, 1, 1, 3))
    frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2) + drift
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- runtimes


@contextlib.contextmanager
def _quiet():
    """tf2onnx and the TFLite converter log each rewrite (hundreds of lines) and its optimizer
    prints tracebacks for passes it skips; none of it is for the user."""
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run_onnx(path, inputs: np.ndarray) -> np.ndarray:
    """The violent probability an ONNX export gives (onnxruntime, CPU)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("onnxruntime is not installed (pip install 'vd[export]')") from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {name: inputs})))
    return np.asarray(out["violent_probability"], np.float32)


def run_tflite(path, inputs: np.ndarray, with_backbone: bool) -> np.ndarray:
    """The violent probability a TFLite export gives (the TFLite interpreter; one clip a call)."""
    from vd import runtime

    if with_backbone:
        return runtime.tflite_run(path, {"frames": inputs})["violent_probability"]
    return np.concatenate([runtime.tflite_run(path, {"features": row[None]})["violent_probability"]
                           for row in inputs])


def run_savedmodel(path, inputs: np.ndarray, with_backbone: bool) -> np.ndarray:
    """The violent probability a SavedModel export gives (reloaded through Keras' TFSMLayer)."""
    from vd import runtime

    keras = runtime.load_keras()
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
    return np.asarray(layer(inputs)["violent_probability"], np.float32)


def run_export(fmt: str, path, inputs: np.ndarray, with_backbone: bool) -> np.ndarray:
    """The violent probability the exported file at ``path`` gives on ``inputs``."""
    with _quiet():
        if fmt == "onnx":
            return run_onnx(path, inputs)
        if fmt == "tflite":
            return run_tflite(path, inputs, with_backbone)
        if fmt == "savedmodel":
            return run_savedmodel(path, inputs, with_backbone)
    raise ValueError(fmt)


# --------------------------------------------------------------------------- export


def _backbone_for(run, weights):
    """The backbone the run's features came from (as ``vd predict`` rebuilds it)."""
    from vd.extract.network import describe_weights
    from vd.extract.registry import get_spec
    from vd.score.predict import check_extractor, get_backbone, resolve_weights

    rec = run.extractor or {}
    try:
        spec = get_spec(None if rec.get("backbone") is None else str(rec["backbone"]))
    except UserError:
        raise UserError(f"the run was trained on features from backbone {rec.get('backbone')!r}, "
                        f"which this vd does not have") from None
    layer = str(rec.get("layer")) if rec.get("layer") in spec.layers else spec.default_layer
    w, seed = resolve_weights(rec.get("weights"), weights, spec.name)
    label, _ = describe_weights(w, seed)
    check_extractor(rec, {"backbone": spec.name, "layer": layer, "weights": label,
                          "frames": run.frames, "image_size": spec.input_size,
                          "preprocess": spec.preprocess}, f"the run {run.path}")
    return get_backbone(w, layer, seed, spec.name)


def _io(model) -> tuple[list, list]:
    def spec(name, t):
        return {"name": name, "shape": [None if d is None else int(d) for d in t.shape],
                "dtype": str(t.dtype)}

    ins = [spec(t.name.split(":")[0] if hasattr(t, "name") else "input", t) for t in model.inputs]
    outs = [spec(k, v) for k, v in sorted(model.output.items())]
    return ins, outs


def export_run(model, out, *, fmt: str | None = None, with_backbone: bool = False,
               weights: str | None = None, overwrite: bool = False, check: bool = True,
               runs_root="runs") -> ExportResult:
    """Export the run ``model`` (run folder or bundle; None = newest under ``runs_root``) to
    ``out``. See the module docstring for what each format holds."""
    from vd.model.bundle import describe, extractor_identity, write_bundle
    from vd.score.predict import resolve_model

    t0 = time.perf_counter()
    fmt = format_for(out, fmt)
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    run_dir = resolve_model(model, runs_root)
    if fmt == "bundle":
        if with_backbone:
            raise UserError("--with-backbone applies to onnx, tflite and savedmodel exports; a "
                            "bundle names its backbone and vd rebuilds it")
        manifest = write_bundle(run_dir, out)
        op = manifest["operating_point"]
        return ExportResult(format=fmt, path=str(out), source=str(run_dir), bytes=out.stat().st_size,
                            calibrated=op["temperature"] != 1.0, temperature=op["temperature"],
                            threshold=op["threshold"], extractor=manifest["extractor"],
                            seconds=time.perf_counter() - t0, notes=[describe(manifest)])

    from vd import runtime
    from vd.model.scoring import load_run

    runtime.load_keras()
    run = load_run(run_dir)
    backbone = _backbone_for(run, weights) if with_backbone else None
    graph = full_model(run, backbone) if with_backbone else head_model(run)
    ins, outs = _io(graph)
    if fmt == "tflite":  # one clip a call (module docstring)
        ins = [dict(i, shape=[1] + i["shape"][1:]) if not with_backbone else i for i in ins]
        outs = [dict(o, shape=[1] + o["shape"][1:]) for o in outs]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("." + out.name + ".tmp")
    _remove(tmp)
    try:
        _write(fmt, graph, tmp, run, with_backbone)
        if check:
            x = probe_inputs(run, backbone)
            ref = keras_reference(run, backbone, x)
            got = run_export(fmt, tmp, x, with_backbone)
            diff = float(np.max(np.abs(np.asarray(got, np.float64) - ref)))
            checked = {"runtime": {"onnx": "onnxruntime", "tflite": "tflite interpreter",
                                   "savedmodel": "tensorflow"}[fmt],
                       "max_abs_diff": diff, "inputs": int(len(x))}
        else:
            checked = None
        _remove(out)
        tmp.replace(out)
    finally:
        _remove(tmp)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.stat().st_size
    return ExportResult(format=fmt, path=str(out), source=str(run_dir), bytes=int(size),
                        with_backbone=with_backbone, inputs=ins, outputs=outs,
                        calibrated=run.calibration is not None and run.temperature != 1.0,
                        temperature=float(run.temperature), threshold=float(run.threshold),
                        extractor=extractor_identity(run.config), check=checked,
                        seconds=time.perf_counter() - t0)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _write(fmt: str, graph, tmp: Path, run, with_backbone: bool) -> None:
    from vd import runtime

    keras = runtime.load_keras()
    # Keras' export makes the first dimension dynamic unless told: the frames graph takes
    # exactly T frames, so its signature is given
    signature = ([keras.InputSpec(shape=tuple(graph.inputs[0].shape), dtype="uint8", name="frames")]
                 if with_backbone else None)
    with _quiet():
        if fmt == "onnx":
            try:
                graph.export(str(tmp), format="onnx", verbose=False, input_signature=signature)
            except ImportError as e:
                raise UserError(f"ONNX export needs tf2onnx and onnx (pip install 'vd[export]'): "
                                f"{e}") from None
        elif fmt == "savedmodel":
            graph.export(str(tmp), format="tf_saved_model", verbose=False,
                         input_signature=signature)
        elif fmt == "tflite":
            shape = tuple(graph.inputs[0].shape)
            if not with_backbone:
                shape = (1,) + shape[1:]
            with tempfile.TemporaryDirectory(prefix="vd-export-") as d:
                saved = Path(d) / "saved_model"
                graph.export(str(saved), format="tf_saved_model", verbose=False,
                             input_signature=[keras.InputSpec(shape=shape,
                                                              dtype=graph.inputs[0].dtype)])
                tmp.write_bytes(runtime.tflite_from_saved_model(saved))
        else:
            raise ValueError(fmt)
