"""One builder for every preset: ``build_model(preset, frames, dim)`` → a Keras model.

For ``hybrid`` the graph is exactly the seed's hybrid architecture (layer for layer, 2,948,803 parameters on
(20, 4096)); other presets drop or resize its parts as their config says. Input: (B, T, D)
float features (T frames, D feature width, both read from the store). Output: (B, 2) float32
softmax, column 1 = violent.

The attention softmax is the layer named ``attention_weights`` so that :func:`attention_weights`
(and a later ``vd predict --explain``) can read per-frame weights.
"""

from __future__ import annotations

from vd import runtime  # noqa: F401  (TF settings and the import filter, before Keras loads)
import keras
import numpy as np
from keras import layers

from vd.model.layers import (Columns, MotionEnergy, MotionFeatures, PixelMotion, Standardize,
                             SumOverTime, TimeStats, UnitFrames)
from vd.errors import UserError
from vd.model.presets import Preset

ATTENTION_LAYER = "attention_weights"


def build_model(preset: Preset, frames: int, dim: int, bn_momentum: float = 0.99,
                pixels: int = 0) -> keras.Model:
    """The model for ``preset`` on (frames, dim) input, BatchNorm momentum ``bn_momentum``.

    ``pixels``: side of the grey thumbnail that ends each row (a ``+pixels`` backbone's
    features, ``pixels``² columns; 0 = none). The preset's graph then reads the backbone's
    columns only, and the thumbnails' motion (:class:`PixelMotion`, standardised, pooled over
    time) joins the last dense layers (the energy head: its motion channels)."""
    reg = keras.regularizers.L2(preset.l2) if preset.l2 else None

    def bn(name=None):
        return layers.BatchNormalization(momentum=bn_momentum, name=name)

    inputs = keras.Input(shape=(frames, dim), name="features")
    pixel_motion, x = None, inputs
    if pixels:
        if dim <= pixels * pixels:
            raise UserError(f"the store says its rows end in {pixels}x{pixels} thumbnails, but "
                            f"they have only {dim} columns")
        x = Columns(0, dim - pixels * pixels, name="backbone_features")(inputs)
        pixel_motion = PixelMotion(side=pixels, name="pixel_motion")(inputs)
    elif not preset.feature_motion:
        raise UserError("feature_motion=false needs features with pixel thumbnails "
                        "(vd extract --backbone NAME+pixels)")
    if preset.energy:
        return _energy_model(preset, inputs, x, pixel_motion, reg)
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

    if pixel_motion is not None:
        m = Standardize(name=f"{STANDARDIZE_PREFIX}_pixel_motion")(pixel_motion)
        x = layers.Concatenate(name="with_pixel_motion")([x, TimeStats(name="pixel_motion_stats")(m)])
    for units, drop in zip(preset.dense_units, preset.dense_dropout):
        x = layers.Dense(units, activation="relu", kernel_regularizer=reg)(x)
        x = bn()(x)
        x = layers.Dropout(drop)(x)

    outputs = layers.Dense(2, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=preset.name.replace("-", "_"))


STANDARDIZE_PREFIX = "standardize"


def _energy_model(preset: Preset, inputs, feats, pixel_motion, reg) -> keras.Model:
    """The small-store head: motion magnitudes, standardised, pooled, a few units.

    features (B, T, D) → MotionEnergy (B, T-1, 3) [+ PixelMotion (B, T-1, 3) on ``+pixels``
    rows; PixelMotion alone with ``feature_motion`` off] → Standardize ``standardize_motion`` →
    TimeStats (B, 9 or 18) [→ concat with an optional appearance path: unit-length frames →
    Standardize ``standardize_appearance`` → GaussianNoise → Dropout → Dense(appearance_units)
    → mean over time] → Dense layers with Dropout → Dense(2) softmax.

    The Standardize layers are not adapted when built; :func:`adapt_standardizers`
    fits them on the training rows before fitting, and their mean/variance are weights saved
    in model.keras, so predict/evaluate/watch/export apply the same standardisation.
    """
    channels = [MotionEnergy(name="motion_energy")(feats)] if preset.feature_motion else []
    if pixel_motion is not None:
        channels.append(pixel_motion)
    m = channels[0] if len(channels) == 1 else layers.Concatenate(name="motion_channels")(channels)
    m = Standardize(name=f"{STANDARDIZE_PREFIX}_motion")(m)
    parts = [TimeStats(name="motion_stats")(m)]
    if preset.appearance_units:
        a = UnitFrames(name="unit_frames")(feats)
        a = Standardize(name=f"{STANDARDIZE_PREFIX}_appearance")(a)
        if preset.input_noise:
            a = layers.GaussianNoise(preset.input_noise, name="input_noise")(a)
        if preset.input_dropout:
            a = layers.Dropout(preset.input_dropout, name="input_dropout")(a)
        a = layers.Dense(preset.appearance_units, activation="relu", kernel_regularizer=reg,
                         name="appearance")(a)
        parts.append(layers.GlobalAveragePooling1D(name="appearance_pool")(a))
    x = parts[0] if len(parts) == 1 else layers.Concatenate(name="streams")(parts)
    for units, drop in zip(preset.dense_units, preset.dense_dropout):
        x = layers.Dense(units, activation="relu", kernel_regularizer=reg)(x)
        if drop:
            x = layers.Dropout(drop)(x)
    outputs = layers.Dense(2, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=preset.name.replace("-", "_"))


def adapt_standardizers(model: keras.Model, batches) -> list[str]:
    """Fit every ``standardize*`` layer (:class:`~vd.model.layers.Standardize`) of ``model`` on
    the training batches.

    ``batches``: a sequence of (x, y) batches (the training PyDataset), x (B, T, D) float32.
    Each layer's input is computed by the model's own layers before it (deterministic ones:
    MotionEnergy, UnitFrames), so the statistics are those of the training split only.
    Returns the names of the layers adapted (empty for models without any).
    """
    names = [l.name for l in model.layers if l.name.startswith(STANDARDIZE_PREFIX)]
    for name in names:
        layer = model.get_layer(name)
        probe = keras.Model(model.inputs, layer.input)
        outs = [np.asarray(probe([np.asarray(batches[i][0], np.float32)], training=False))
                for i in range(len(batches))]
        x = np.concatenate(outs).astype(np.float32)
        layer.adapt(x)
    return names


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
