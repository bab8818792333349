"""Small registered layers that replace the seed's ``Lambda`` and build the motion stream.

``.keras`` files containing ``Lambda`` layers refuse to load under ``safe_mode=True`` (they hold
Python bytecode) and break across Python versions; registered layers are plain config.
Written with ``keras.ops`` only, so they run on every Keras backend.
"""

from __future__ import annotations

from vd import runtime  # noqa: F401  (TF settings and the import filter, before Keras loads)
import keras
import numpy as np
from keras import ops


def unit_frames(x):
    """(B, T, D) → each frame's feature vector divided by its L2 norm, in float32."""
    x = ops.cast(x, "float32")
    return x / (ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)) + 1e-6)


class Float32Layer(keras.layers.Layer):
    """A layer computed in float32 whatever the global policy (a 4096-d sum of squares
    overflows float16), with an optional ``eps`` kept in its config. The config leaves the
    dtype out, so a saved model loads under any policy."""

    def __init__(self, eps: float | None = None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if eps is not None:
            self.eps = float(eps)

    def get_config(self):
        config = super().get_config()
        if hasattr(self, "eps"):
            config["eps"] = self.eps
        config.pop("dtype", None)
        return config


@keras.saving.register_keras_serializable(package="vd")
class SumOverTime(keras.layers.Layer):
    """(B, T, C) → (B, C): sum over the time axis (the seed's ``Lambda(tf.reduce_sum(x, 1))``)."""

    def call(self, x):
        return ops.sum(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="vd")
class MotionFeatures(Float32Layer):
    """(B, T, D) frame features → (B, T, 2D) appearance + motion, built inside the model.

    Appearance: each frame's feature vector divided by its L2 norm (unit length; VGG fc
    activations otherwise vary in scale with image content and brightness).
    Motion: the difference of consecutive normalised frames, ``a[t] - a[t-1]`` (zero at t=0 so
    the sequence keeps T steps). Differences of unit vectors are small when frames are alike
    and would be swamped by the appearance half, so they are rescaled per clip to unit RMS
    frame norm: ``m / sqrt(mean_t |m_t|^2 + eps)``. Both halves then have a mean frame norm of
    about 1. ``eps`` (default 1e-3, a difference norm of ~0.03) keeps a still clip's sensor
    noise from being blown up into "motion": below it the motion half shrinks towards zero.

    Computed in float32 whatever the global policy (a 4096-d sum of squares overflows float16).
    """

    def __init__(self, eps: float = 1e-3, **kwargs):
        super().__init__(eps=eps, **kwargs)

    def call(self, x):
        a = unit_frames(x)
        diff = a[:, 1:, :] - a[:, :-1, :]
        diff = ops.concatenate([ops.zeros_like(a[:, :1, :]), diff], axis=1)
        frame_sq = ops.sum(ops.square(diff), axis=-1, keepdims=True)       # (B, T, 1)
        rms = ops.sqrt(ops.mean(frame_sq, axis=1, keepdims=True) + self.eps)  # (B, 1, 1)
        return ops.concatenate([a, diff / rms], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * input_shape[2])



@keras.saving.register_keras_serializable(package="vd")
class MotionEnergy(Float32Layer):
    """(B, T, D) frame features → (B, T-1, 3) per-step motion magnitudes, KEPT (not rescaled).

    Each frame's features are first made unit length (``a_t = x_t / |x_t|``), then for
    t = 1..T-1 (float32, natural log of the norm plus ``eps``):

    - ``log(|a_t - a_{t-1}| + eps)``: how much the picture changed since the previous sampled
      frame (speed; for unit vectors ``|a - b| = sqrt(2 - 2 cos)``, a cosine distance);
    - ``log(|a_t - 2 a_{t-1} + a_{t-2}| + eps)``: change of that change (abrupt, erratic
      motion); the first step reuses the second's value;
    - ``log(|a_t - mean_s a_s| + eps)``: distance from the clip's mean picture (how far the
      scene wanders).

    Unlike :class:`MotionFeatures`, nothing is divided by a per-clip scale: how MUCH a clip
    moves is exactly what these carry. Three numbers per step, independent of D, so the
    classifier that reads them cannot memorise scenes. Logs make the magnitudes, which span
    decades between still and shaking clips, roughly Gaussian for the standardisation after.
    Needs T >= 3.
    """

    def __init__(self, eps: float = 1e-4, **kwargs):
        super().__init__(eps=eps, **kwargs)

    def call(self, x):
        a = unit_frames(x)

        def norm(v):
            return ops.sqrt(ops.sum(ops.square(v), axis=-1, keepdims=True) + 1e-12)

        d1 = a[:, 1:, :] - a[:, :-1, :]                        # (B, T-1, D)
        d2 = d1[:, 1:, :] - d1[:, :-1, :]                      # (B, T-2, D)
        speed = norm(d1)
        jerk = norm(d2)
        jerk = ops.concatenate([jerk[:, :1, :], jerk], axis=1)  # (B, T-1, 1)
        spread = norm(a[:, 1:, :] - ops.mean(a, axis=1, keepdims=True))
        out = ops.concatenate([speed, jerk, spread], axis=-1)
        return ops.log(out + self.eps)

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else t - 1, 3)



@keras.saving.register_keras_serializable(package="vd")
class Columns(keras.layers.Layer):
    """(B, T, D) → (B, T, stop - start): a slice of the feature columns (the backbone's part of
    a ``+pixels`` row, without the thumbnail)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="vd")
class PixelMotion(Float32Layer):
    """(B, T, D) rows ending in ``side``² thumbnail pixels → (B, T-1, 3) per-step pixel motion.

    Each frame's grey thumbnail (the last ``side``² columns, see ``vd.extract.registry``) is
    first standardised on its own (minus its mean, over its standard deviation + 1 grey
    level): a picture that only got brighter or darker (lights, an IR switch, clouds) is the
    same picture after. Then, for t = 1..T-1, over the thumbnail's centre (``shift`` pixels in
    from each edge), the mean squared difference to the previous frame shifted by every whole
    (dy, dx) in ±``shift`` pixels:

    - ``log(e(0, 0) + eps)``: how much the picture changed, brightness taken out;
    - ``log(min e + eps)``: how much it changed once the best whole-picture shift is taken out
      (a camera that shakes or pans moves everything by the same shift; people do not);
    - ``log(top-10 % mean / mean)`` of the squared differences at that best shift: how
      concentrated in one place the change is (a fight) rather than spread over the picture
      (noise, rain, a residual sub-pixel shake).

    The best shift itself is left out on purpose: how much the camera moved is not evidence
    of violence, and a model given it learns whatever the training footage says about shaky
    cameras. Float32, ``keras.ops`` only, no weights.
    """

    def __init__(self, side: int = 32, shift: int = 2, eps: float = 1e-3, **kwargs):
        super().__init__(eps=eps, **kwargs)
        self.side, self.shift = int(side), int(shift)

    def call(self, x):
        s, r = self.side, self.shift
        x = ops.cast(x[..., -s * s:], "float32")
        t = ops.shape(x)[1]
        g = ops.reshape(x, (-1, t, s, s))
        mean = ops.mean(g, axis=(2, 3), keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(g - mean), axis=(2, 3), keepdims=True))
        z = (g - mean) / (std + 1.0)
        prev, cur = z[:, :-1], z[:, 1:]
        centre = cur[:, :, r:s - r, r:s - r]
        squares = []
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                moved = prev[:, :, r + dy:s - r + dy, r + dx:s - r + dx]
                squares.append(ops.square(centre - moved))
        errors = ops.stack([ops.mean(q, axis=(2, 3)) for q in squares], axis=-1)  # (B, T-1, K)
        still = errors[..., len(squares) // 2]
        best = ops.min(errors, axis=-1)
        # the shift(s) at the minimum, ties shared (no argmin: its TensorFlow kernel uses a
        # Bitcast that ONNX exports cannot hold)
        pick = ops.cast(ops.equal(errors, best[..., None]), "float32")          # (B, T-1, K)
        pick = pick / ops.sum(pick, axis=-1, keepdims=True)
        at_best = sum(q * pick[..., k, None, None] for k, q in enumerate(squares))
        n = (s - 2 * r) ** 2
        flat = ops.reshape(at_best, (-1, t - 1, n))
        top = ops.mean(ops.top_k(flat, max(1, n // 10), sorted=False)[0], axis=-1)
        spread = ops.log((top + self.eps) / (ops.mean(flat, axis=-1) + self.eps))
        return ops.stack([ops.log(still + self.eps), ops.log(best + self.eps), spread], axis=-1)

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else t - 1, 3)

    def get_config(self):
        return {**super().get_config(), "side": self.side, "shift": self.shift}


@keras.saving.register_keras_serializable(package="vd")
class UnitFrames(Float32Layer):
    """(B, T, D) → (B, T, D): each frame's feature vector divided by its L2 norm (float32)."""

    def call(self, x):
        return unit_frames(x)


@keras.saving.register_keras_serializable(package="vd")
class TimeStats(keras.layers.Layer):
    """(B, T, C) → (B, 3C): mean, standard deviation and maximum over time, per channel."""

    def call(self, x):
        mean = ops.mean(x, axis=1)
        std = ops.sqrt(ops.mean(ops.square(x - mean[:, None, :]), axis=1) + 1e-6)
        return ops.concatenate([mean, std, ops.max(x, axis=1)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3 * input_shape[2])


@keras.saving.register_keras_serializable(package="vd")
class Standardize(Float32Layer):
    """(..., C) → (x - mean) / sqrt(variance + eps), per channel; statistics fitted by ``adapt``.

    Like ``keras.layers.Normalization(axis=-1)``, but the statistics are plain non-trainable
    weights read in ``call``, so the layer saves in model.keras AND traces into ONNX/TFLite/
    SavedModel graphs as constants (Normalization's adapted tensors become missing graph inputs
    in tf2onnx). Until adapted it is the identity (mean 0, variance 1). Float32.
    """

    def __init__(self, eps: float = 1e-6, **kwargs):
        super().__init__(eps=eps, **kwargs)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.mean = self.add_weight(name="mean", shape=(c,), initializer="zeros", trainable=False)
        self.variance = self.add_weight(name="variance", shape=(c,), initializer="ones",
                                        trainable=False)

    def adapt(self, x) -> None:
        """Set mean and variance per channel from ``x`` (..., C) (numpy; float64 sums)."""
        x = np.asarray(x, np.float64).reshape(-1, int(np.shape(x)[-1]))
        if not self.built:
            self.build(x.shape)
        self.mean.assign(x.mean(axis=0).astype(np.float32))
        self.variance.assign(x.var(axis=0).astype(np.float32))

    def call(self, x):
        x = ops.cast(x, "float32")
        return (x - self.mean) / ops.sqrt(self.variance + self.eps)

    def compute_output_shape(self, input_shape):
        return input_shape

