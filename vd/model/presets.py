"""Every model/training preset of the seed as data (the seed's architecture comparison, design comparison, training configuration, appendices A/B).

A :class:`Preset` holds everything that differs between the seed's configurations: layer sizes,
dropouts, regulariser, loss, schedule, epochs, augmentation multiplier, monitoring. One builder
(:mod:`vd.model.builder`) turns any preset into a Keras model; nothing else in ``vd.model`` knows
layer sizes.

Values the seed does not state (DESIGN.md's table marks them ``*``) are chosen once, here, and
each is commented ``# *`` with the reason.

Shared structure (all presets): optional Dense compression → BatchNorm → Dropout; a stack of
BiLSTMs, each followed by BatchNorm; optional residual (output of BiLSTM 2 + output of BiLSTM 1,
exactly the seed's hybrid architecture; needs equal widths); optional attention pooling over time, otherwise the last
BiLSTM returns its final state; Dense layers each followed by BatchNorm → Dropout; Dense(2) softmax.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from vd.errors import UserError


@dataclass(frozen=True)
class Preset:
    """One named configuration. Tuples are per layer, in order from input to output."""

    name: str
    lstm_units: tuple[int, ...]
    lstm_dropout: tuple[float, ...]
    recurrent_dropout: tuple[float, ...]
    dense_units: tuple[int, ...]
    dense_dropout: tuple[float, ...]
    compress: int = 0                  # Dense width before the LSTMs (0 = none)
    compress_dropout: float = 0.0
    residual: bool = False             # Add BiLSTM-1 output to BiLSTM-2 output (the seed's hybrid architecture)
    attention: bool = False            # tanh score → softmax over time → weighted sum
    motion: bool = False               # feed [normalised features, temporal differences]
    l2: float = 0.0                    # L2 on Dense/LSTM kernels (0 = none)
    loss: str = "focal"                # "focal" | "crossentropy"
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    schedule: str = "warmup_cosine"    # "warmup_cosine" | "constant"
    lr: float = 1e-3
    warmup_epochs: int = 5
    clipnorm: float = 1.0
    epochs: int = 150
    batch_size: int = 64
    aug: int = 3                       # variants per clip trained on (original + augmented)
    per_class_monitor: bool = True     # apply the gap rules (halve lr / stop); metrics always kept
    bn_momentum: float = 0.0           # 0 = derived from steps per epoch (see bn_momentum_for)
    # Small-store head: instead of the LSTM stack, per-step motion magnitudes
    # (vd.model.layers.MotionEnergy, 3 numbers per step) standardised on the training rows,
    # pooled over time (mean/std/max) into the dense layers. lstm_units must be empty.
    energy: bool = False
    appearance_units: int = 0          # energy head: width of an appearance path beside it (0 = none)
    input_noise: float = 0.0           # energy head: Gaussian noise σ on the standardised appearance input
    input_dropout: float = 0.0         # energy head: dropout on the appearance input
    # Energy head on ``+pixels`` features: also read the backbone features' motion (true), or
    # only the thumbnails' (false: camera shift and brightness taken out, see PixelMotion).
    feature_motion: bool = True

    def __post_init__(self):
        n = len(self.lstm_units)
        if len(self.lstm_dropout) != n or len(self.recurrent_dropout) != n:
            raise UserError(f"preset {self.name}: lstm_units, lstm_dropout and recurrent_dropout "
                            f"need the same length ({n})")
        if len(self.dense_dropout) != len(self.dense_units):
            raise UserError(f"preset {self.name}: dense_units and dense_dropout need the same length")
        if self.residual and (n < 2 or self.lstm_units[0] != self.lstm_units[1]):
            raise UserError(f"preset {self.name}: residual needs two BiLSTMs of equal width")
        if self.loss not in ("focal", "crossentropy"):
            raise UserError(f"preset {self.name}: loss must be focal or crossentropy")
        if self.schedule not in ("warmup_cosine", "constant"):
            raise UserError(f"preset {self.name}: schedule must be warmup_cosine or constant")
        if self.energy and (n or self.residual or self.attention or self.motion or self.compress):
            raise UserError(f"preset {self.name}: energy=true replaces the LSTM stack; set "
                            f"lstm_units empty and residual/attention/motion/compress off")
        if not self.energy and n == 0:
            raise UserError(f"preset {self.name}: needs at least one LSTM layer (or energy=true)")
        if self.aug < 1 or self.epochs < 1 or self.batch_size < 1:
            raise UserError(f"preset {self.name}: aug, epochs and batch_size must be >= 1")

    @property
    def monitor_start_epoch(self) -> int:
        """Gap rules start after this many epochs (the warmup; 0 for a constant schedule)."""
        return self.warmup_epochs if self.schedule == "warmup_cosine" else 0

    def monitor_start_for(self, steps_per_epoch: int) -> int:
        """Gap rules start after the warmup AND after ``MONITOR_MIN_STEPS`` optimizer steps.

        The seed counts its rules in epochs, written for stores of thousands of clips. On a
        48-clip store (1 step per epoch) the stop rule ended the hybrid at epoch 8, after 8
        updates, at 50 % balanced accuracy; with the rules off the same run reached 100 % by
        epoch 40. A model is judged once it has had the steps to learn something.
        """
        by_steps = math.ceil(MONITOR_MIN_STEPS / max(1, steps_per_epoch))
        return max(self.monitor_start_epoch, by_steps)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# BatchNorm momentum: Keras' 0.99 needs hundreds of steps before the moving
# statistics are usable, and on a 160-clip store (3 steps/epoch) it kept the model collapsed on
# one class for 15 epochs (0.9 reached 1.0 by epoch 7). "Auto" picks the momentum m at which the
# initial statistics weigh at most BN_STALE_WEIGHT after one epoch: m ** steps = 0.05, clamped to
# [0.6, 0.99] (0.6 keeps ~2.5 batches in the average on tiny stores; 0.99 is Keras' default, reached
# from ~300 steps/epoch, i.e. ~19,000 training rows at batch 64).
MONITOR_MIN_STEPS = 50  # see Preset.monitor_start_for
BN_STALE_WEIGHT = 0.05
BN_MOMENTUM_RANGE = (0.6, 0.99)


def bn_momentum_for(preset: Preset, steps_per_epoch: int) -> float:
    """The BatchNorm momentum a run uses: the preset's value, or derived from steps per epoch."""
    if preset.bn_momentum:
        return float(preset.bn_momentum)
    lo, hi = BN_MOMENTUM_RANGE
    m = math.exp(math.log(BN_STALE_WEIGHT) / max(1, steps_per_epoch))
    return round(min(hi, max(lo, m)), 4)


PRESETS: dict[str, Preset] = {
    # Appendix A: the configuration that failed (54.68% TTA, 22.97% violent).
    "failed": Preset(
        name="failed",
        lstm_units=(128, 64), lstm_dropout=(0.5, 0.5), recurrent_dropout=(0.30, 0.30),
        dense_units=(128, 64), dense_dropout=(0.6, 0.5),
        l2=0.01, loss="crossentropy",
        schedule="constant",  # * the seed names no schedule for it: plain Adam at 1e-3
        epochs=100, aug=10, per_class_monitor=False,
    ),
    "ultimate": Preset(
        name="ultimate",
        lstm_units=(128, 128), lstm_dropout=(0.5, 0.5),
        recurrent_dropout=(0.2, 0.2),  # * unstated; the seed's "moderate" recurrent value
        dense_units=(256, 128), dense_dropout=(0.5, 0.5),
        loss="focal", focal_gamma=2.0,  # * γ unstated; 2 is the focal-loss paper's default
        focal_alpha=0.25,  # * α unstated; the paper's default, as in hybrid
        epochs=200, aug=2, per_class_monitor=False,
    ),
    "better": Preset(
        name="better",
        lstm_units=(64, 64, 64), lstm_dropout=(0.5, 0.5, 0.5),
        recurrent_dropout=(0.2, 0.2, 0.2),  # * unstated, as ultimate
        dense_units=(128, 64), dense_dropout=(0.5, 0.5),
        compress=512,  # seed: "feature compression (4096 → 512)"
        compress_dropout=0.5,  # * unstated; the preset's uniform 50%
        residual=True, attention=True,
        loss="focal", focal_gamma=2.0, focal_alpha=0.25,  # * as ultimate
        epochs=150,  # * unstated; the hybrid's length
        aug=2, per_class_monitor=False,
    ),
    "balanced": Preset(
        name="balanced",
        lstm_units=(128, 64, 32), lstm_dropout=(0.35, 0.35, 0.35),
        recurrent_dropout=(0.2, 0.2, 0.2),  # * unstated
        dense_units=(128, 64),
        dense_dropout=(0.4, 0.3),  # * second value unstated; "30-40%" → 0.3
        l2=0.005, loss="focal", focal_gamma=3.0,
        focal_alpha=0.25,  # * unstated; as hybrid
        schedule="constant",  # * the seed: "no advanced LR scheduling" → constant 1e-3
        epochs=150,  # * unstated; the hybrid's length
        aug=3, per_class_monitor=True,
    ),
    # The seed's hybrid architecture/training configuration, exactly; 2,948,803 parameters on (20, 4096).
    "hybrid": Preset(
        name="hybrid",
        lstm_units=(96, 96, 64), lstm_dropout=(0.35, 0.35, 0.30),
        recurrent_dropout=(0.20, 0.20, 0.15),
        dense_units=(128, 64), dense_dropout=(0.35, 0.25),
        compress=512, compress_dropout=0.25, residual=True, attention=True,
        l2=0.003, loss="focal", focal_gamma=3.0, focal_alpha=0.25,
        schedule="warmup_cosine", lr=1e-3, warmup_epochs=5, clipnorm=1.0,
        epochs=150, batch_size=64, aug=3, per_class_monitor=True,
    ),
}
PRESETS["hybrid-motion"] = dataclasses.replace(PRESETS["hybrid"], name="hybrid-motion", motion=True)

# Issue 17: for stores of a few dozen to a few hundred clips. The hybrid's 2.9 M parameters
# memorise scenes there (0.96-0.98 training accuracy on 48 clips, ~0.55 held out); this head sees
# only how much each step of the clip moves (3 log-magnitudes per step, standardised on the
# training rows, pooled to 9 numbers) through 8 units: ~100 parameters, nothing to memorise
# a scene with. Values chosen on validation clips of another seed (bench/small_data.py).
PRESETS["motion-small"] = Preset(
    name="motion-small",
    lstm_units=(), lstm_dropout=(), recurrent_dropout=(),
    dense_units=(8,), dense_dropout=(0.1,),
    energy=True, l2=1e-3, loss="crossentropy",
    schedule="warmup_cosine", lr=1e-2, warmup_epochs=5, clipnorm=1.0,
    epochs=150, batch_size=16, aug=3, per_class_monitor=False,
)

DEFAULT_PRESET = "hybrid"
# --preset auto: below this many training clips (after the validation split) the small-store
# preset; from it on, the default. Issue 17 measured the hybrid memorising at 48-60 clips.
SMALL_STORE_CLIPS = 300
SMALL_STORE_PRESET = "motion-small"
AUTO_PRESET = "auto"  # vd train --preset auto (vd.model.train.choose_preset)


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (one-line UserError listing the choices otherwise)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def _parse(field: dataclasses.Field, text: str, preset: str):
    kind = str(field.type)
    try:
        if kind.startswith("tuple"):
            item = float if "float" in kind else int
            return tuple(item(x) for x in text.replace(" ", "").split(",") if x != "")
        if kind == "bool":
            low = text.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return low in ("1", "true", "yes")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        return text
    except ValueError:
        raise UserError(f"--set {field.name}={text}: not a valid {kind} for preset {preset}") from None


# Other names a user may type for a preset key (``--set augment=2`` = ``--set aug=2``; the
# extractor's option is ``--augment``).
KEY_ALIASES = {"augment": "aug"}


def canonical_key(key: str) -> str:
    """The preset field a user's key means (resolves :data:`KEY_ALIASES`)."""
    key = key.strip()
    return KEY_ALIASES.get(key, key)


def apply_overrides(preset: Preset, overrides: list[str] | dict) -> tuple[Preset, dict]:
    """``preset`` with ``key=value`` overrides applied; returns (new preset, parsed overrides).

    Tuples are comma-separated (``lstm_units=64,64,32``). Keys may be aliases
    (:data:`KEY_ALIASES`); parsed overrides use the field names. An unknown key is a UserError.
    """
    if isinstance(overrides, dict):
        items = [(k, str(v)) for k, v in overrides.items()]
    else:
        items = []
        for item in overrides:
            if "=" not in item:
                raise UserError(f"--set expects key=value, got {item!r}")
            k, v = item.split("=", 1)
            items.append((k.strip(), v.strip()))
    items = [(canonical_key(k), v) for k, v in items]
    fields = {f.name: f for f in dataclasses.fields(Preset) if f.name != "name"}
    parsed = {}
    for k, v in items:
        if k not in fields:
            raise UserError(f"--set {k}: unknown key; known keys: {', '.join(sorted(fields))}")
        parsed[k] = _parse(fields[k], v, preset.name)
    return dataclasses.replace(preset, **parsed), parsed
