"""Writing an export graph to a file, and running the written file (onnxruntime, the TFLite
interpreter, TensorFlow) to check it against Keras.

The converters are noisy (tf2onnx and the TFLite converter log every rewrite); :func:`quiet`
keeps that off the user's terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from vd.errors import UserError


@contextlib.contextmanager
def quiet():
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
    with quiet():
        if fmt == "onnx":
            return run_onnx(path, inputs)
        if fmt == "tflite":
            return run_tflite(path, inputs, with_backbone)
        if fmt == "savedmodel":
            return run_savedmodel(path, inputs, with_backbone)
    raise ValueError(fmt)


def write_graph(fmt: str, graph, tmp: Path, run, with_backbone: bool) -> None:
    from vd import runtime

    keras = runtime.load_keras()
    # The frames graph takes exactly T frames; the head takes any number of clips, except in
    # TFLite (one clip a call: its LSTMs lower to builtin ops only with every shape static)
    shape = tuple(graph.inputs[0].shape)
    if not with_backbone:
        shape = (None if fmt != "tflite" else 1,) + shape[1:]
    name, dtype = ("frames", "uint8") if with_backbone else ("features", graph.inputs[0].dtype)
    with quiet():
        if fmt == "onnx":
            signature = ([keras.InputSpec(shape=shape, dtype=dtype, name=name)]
                         if with_backbone else None)
            try:
                graph.export(str(tmp), format="onnx", verbose=False, input_signature=signature)
            except ImportError as e:
                raise UserError(f"ONNX export needs tf2onnx and onnx (pip install 'vd[export]'): "
                                f"{e}") from None
        elif fmt == "savedmodel":
            runtime.save_inference_savedmodel(graph, tmp, shape, dtype, name)
        elif fmt == "tflite":
            with tempfile.TemporaryDirectory(prefix="vd-export-") as d:
                saved = Path(d) / "saved_model"
                runtime.save_inference_savedmodel(graph, saved, shape, dtype, name)
                tmp.write_bytes(runtime.tflite_from_saved_model(saved))
        else:
            raise ValueError(fmt)
