"""Small registered layers that replace the seed's ``Lambda`` and build the motion stream.

``.keras`` files containing ``Lambda`` layers refuse to load under ``safe_mode=True`` (they hold
Python bytecode) and break across Python versions; registered layers are plain config.
Written with ``keras.ops`` only, so they run on every Keras backend.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vd")
class SumOverTime(keras.layers.Layer):
    """(B, T, C) → (B, C): sum over the time axis (the seed's ``Lambda(tf.reduce_sum(x, 1))``)."""

    def call(self, x):
        return ops.sum(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="vd")
class MotionFeatures(keras.layers.Layer):
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
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.eps = float(eps)

    def call(self, x):
        x = ops.cast(x, "float32")
        a = x / (ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)) + 1e-6)
        diff = a[:, 1:, :] - a[:, :-1, :]
        diff = ops.concatenate([ops.zeros_like(a[:, :1, :]), diff], axis=1)
        frame_sq = ops.sum(ops.square(diff), axis=-1, keepdims=True)       # (B, T, 1)
        rms = ops.sqrt(ops.mean(frame_sq, axis=1, keepdims=True) + self.eps)  # (B, 1, 1)
        return ops.concatenate([a, diff / rms], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * input_shape[2])

    def get_config(self):
        config = super().get_config()
        config["eps"] = self.eps
        config.pop("dtype", None)
        return config
