"""One builder for every preset: ``build_model(preset, frames, dim)`` → a Keras model.

For ``hybrid`` the graph is exactly seed §5.1 (layer for layer, 2,948,803 parameters on
(20, 4096)); other presets drop or resize its parts as their config says. Input: (B, T, D)
float features (T frames, D feature width, both read from the store). Output: (B, 2) float32
softmax, column 1 = violent.

The attention softmax is the layer named ``attention_weights`` so that :func:`attention_weights`
(and a later ``vd predict --explain``) can read per-frame weights.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from vd.model.layers import MotionFeatures, SumOverTime
from vd.model.presets import Preset

ATTENTION_LAYER = "attention_weights"


def build_model(preset: Preset, frames: int, dim: int, bn_momentum: float = 0.99) -> keras.Model:
    """The model for ``preset`` on (frames, dim) input, BatchNorm momentum ``bn_momentum``."""
    reg = keras.regularizers.L2(preset.l2) if preset.l2 else None

    def bn(name=None):
        return layers.BatchNormalization(momentum=bn_momentum, name=name)

    inputs = keras.Input(shape=(frames, dim), name="features")
    x = inputs
    if preset.motion:
        x = MotionFeatures(name="motion")(x)
    if preset.compress:
        x = layers.Dense(preset.compress, activation="relu", kernel_regularizer=reg,
                         name="compress")(x)
        x = bn()(x)
        x = layers.Dropout(preset.compress_dropout)(x)

    n = len(preset.lstm_units)
    residual = None
    for i, (units, drop, rdrop) in enumerate(zip(preset.lstm_units, preset.lstm_dropout,
                                                 preset.recurrent_dropout)):
        last = i == n - 1
        x = layers.Bidirectional(
            layers.LSTM(units, return_sequences=preset.attention or not last, dropout=drop,
                        recurrent_dropout=rdrop, kernel_regularizer=reg),
            name=f"bilstm_{i + 1}")(x)
        x = bn()(x)
        if preset.residual and i == 0:
            residual = x
        if preset.residual and i == 1:
            x = layers.Add(name="residual")([x, residual])

    if preset.attention:
        width = 2 * preset.lstm_units[-1]
        score = layers.Dense(1, activation="tanh", name="attention_score")(x)
        score = layers.Flatten()(score)
        weights = layers.Activation("softmax", name=ATTENTION_LAYER)(score)
        weights = layers.RepeatVector(width)(weights)
        weights = layers.Permute([2, 1])(weights)
        x = layers.Multiply()([x, weights])
        x = SumOverTime(name="attended")(x)

    for units, drop in zip(preset.dense_units, preset.dense_dropout):
        x = layers.Dense(units, activation="relu", kernel_regularizer=reg)(x)
        x = bn()(x)
        x = layers.Dropout(drop)(x)

    outputs = layers.Dense(2, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=preset.name.replace("-", "_"))


def attention_weights(model: keras.Model, features: np.ndarray, batch_size: int = 256):
    """Per-frame attention weights (N, T) float32 for ``features`` (N, T, D); None without attention.

    Each row sums to 1 (softmax over time).
    """
    try:
        layer = model.get_layer(ATTENTION_LAYER)
    except ValueError:
        return None
    probe = keras.Model(model.inputs, layer.output)
    out = probe.predict(np.asarray(features, np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(out, np.float32)
