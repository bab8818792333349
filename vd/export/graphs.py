"""The graphs ``vd export`` writes, built with Keras around a loaded run (and a backbone).

- :func:`head_model`: features (N, T, D) float32 → ``violent_probability`` (N,) and ``softmax``
  (N, 2), as :class:`vd.model.loaded_run.Run` computes them;
- :func:`full_model`: one clip's uint8 frames (T, S, S, 3) → the same, for that clip, with the
  backbone and the float16 rounding of stored features inside;
- :func:`keras_reference` / :func:`probe_inputs`: what vd itself gives on probe inputs, for the
  self-check of a written file.
"""

from __future__ import annotations

import numpy as np

PROBE_ROWS = 4  # feature rows (head) the self-check compares


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


def io_specs(model) -> tuple[list, list]:
    def spec(name, t):
        return {"name": name, "shape": [None if d is None else int(d) for d in t.shape],
                "dtype": str(t.dtype)}

    ins = [spec(t.name.split(":")[0] if hasattr(t, "name") else "input", t) for t in model.inputs]
    outs = [spec(k, v) for k, v in sorted(model.output.items())]
    return ins, outs
