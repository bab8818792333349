"""A run's ``config.json`` and ``calibration.json`` as typed, checked values (:class:`RunConfig`).

Everything that reads a run asks this module, so the keys, their types and their sane ranges
are known in one place, and a damaged or hostile file is refused with one line naming the file
and the key (:class:`vd.errors.UserError`, exit 2) before any model is built:

- files are read only when they are regular files of at most :data:`MAX_JSON_BYTES` (a
  ``config.json`` pointing at ``/dev/zero`` or a FIFO is refused without reading it);
- ``frames`` and ``dim`` are integers within :data:`MAX_FRAMES` / :data:`MAX_DIM` (they size
  every array scoring allocates);
- the threshold is finite and strictly between 0 and 1; a temperature lies in
  :data:`TEMPERATURE_RANGE`, the range calibration searches when it fits one;
- the label map, when present, is vd's (label 1 = violent): a run that says otherwise is refused;
- the saved alarm setting (``alarm``: threshold, smoothing K of N, cooldown, chosen by ``vd
  evaluate RECORDINGS --annotations … --save-alarm``) is within the ranges the CLI accepts.

The named constants here are the only place the default threshold (:data:`DEFAULT_THRESHOLD`)
is written; the label map is :data:`vd.LABEL_NAMES` in the form config.json stores it.
Pure standard library: importing it never imports numpy or Keras.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from vd import LABEL_NAMES
from vd.errors import UserError

RUN_SCHEMA = 1  # what config.json and the model files of a run mean; bump on incompatible change
DEFAULT_THRESHOLD = 0.5  # violent when P(violent) ≥ this, until a run stores its own
LABEL_MAP = {str(k): v for k, v in sorted(LABEL_NAMES.items())}  # as config.json stores it
# The temperatures calibration searches (vd.model.calibrate); a file outside it was not
# written by vd's calibration and would push every score to 0 or 1.
TEMPERATURE_RANGE = (0.01, 100.0)
MAX_JSON_BYTES = 1 << 20      # config.json / calibration.json are a few kB
MAX_FRAMES = 1024             # sampled frames per clip (vd uses 20)
MAX_DIM = 1 << 16             # feature dimension (VGG16 fc2: 4096)
MAX_IMAGE_SIZE = 4096         # backbone input side, pixels

MAX_SMOOTH_N = 100           # windows the alarm rule looks back over
MAX_COOLDOWN_S = 3600.0
DEFAULT_SMOOTH = (2, 3)      # K of the last N windows hot starts an incident
DEFAULT_COOLDOWN_S = 4.0     # stream seconds without a hot window end one

EXTRACTOR_FIELDS = ("backbone", "layer", "weights", "frames", "image_size", "preprocess")


def read_json(path, what: str | None = None, limit: int = MAX_JSON_BYTES) -> dict:
    """The JSON object in the regular file ``path`` (at most ``limit`` bytes), or a one-line
    :class:`UserError` naming it. Devices, FIFOs and sockets are refused without being read
    (opened non-blocking, so a FIFO with no writer does not hang)."""
    path = Path(path)
    name = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UserError(f"{name}: no such file") from None
    except OSError as e:
        raise UserError(f"{name}: cannot open it ({e.strerror or type(e).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{name} is not a regular file; refused")
        if st.st_size > limit:
            raise UserError(f"{name} is {st.st_size} bytes; a run's JSON files are at most "
                            f"{limit} bytes; refused")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise UserError(f"{name}: cannot read it ({e.strerror or type(e).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UserError(f"{name} grew past {limit} bytes while being read; refused")
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{name} is damaged: {type(e).__name__}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{name} is not a JSON object")
    return obj


def _no_constant(token: str):
    """NaN/Infinity are not JSON; Python's parser accepts them: read them as a string, so the
    key's check names them."""
    return token


# --------------------------------------------------------------------------- value checks


def _number(where: str, key: str, value, lo: float, hi: float, *, lo_open=False, hi_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: {key} must be a number, not {_show(value)}")
    x = float(value)
    low_ok = x > lo if lo_open else x >= lo
    high_ok = x < hi if hi_open else x <= hi
    if not (math.isfinite(x) and low_ok and high_ok):
        raise UserError(f"{where}: {key} must lie in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                        f"{')' if hi_open else ']'}, not {x:g}")
    return x


def _integer(where: str, key: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{where}: {key} must be an integer, not {_show(value)}")
    if not lo <= value <= hi:
        raise UserError(f"{where}: {key} must lie in [{lo}, {hi}], not {value}")
    return int(value)


def _text(where: str, key: str, value, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise UserError(f"{where}: {key} must be a short string, not {_show(value)}")
    return value


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_threshold(value, where: str = "the threshold", key: str = "threshold") -> float:
    """A decision threshold: finite, strictly between 0 and 1."""
    return _number(where, key, value, 0.0, 1.0, lo_open=True, hi_open=True)


def check_temperature(value, where: str, key: str = "temperature") -> float:
    """A calibration temperature within :data:`TEMPERATURE_RANGE` (1.0 = uncalibrated)."""
    return _number(where, key, value, *TEMPERATURE_RANGE)


# --------------------------------------------------------------------------- the typed config


@dataclass(frozen=True)
class AlarmConfig:
    """The alarm setting saved in a run: a window is hot at ``threshold``; K of the last N
    hot windows start an incident; ``cooldown`` seconds without one end it. ``source`` says
    what chose it (the evaluation and its targets)."""

    threshold: float
    k: int = DEFAULT_SMOOTH[0]
    n: int = DEFAULT_SMOOTH[1]
    cooldown: float = DEFAULT_COOLDOWN_S
    source: str | None = None
    temperature: float | None = None     # the calibration the threshold was chosen under

    @property
    def smooth(self) -> str:
        return f"{self.k}/{self.n}"

    @classmethod
    def from_dict(cls, d, where: str) -> "AlarmConfig":
        if not isinstance(d, dict):
            raise UserError(f"{where}: alarm must be an object, not {_show(d)}")
        key = lambda k: f"alarm.{k}"  # noqa: E731
        n = _integer(where, key("n"), d.get("n", DEFAULT_SMOOTH[1]), 1, MAX_SMOOTH_N)
        temp = d.get("temperature")
        return cls(threshold=check_threshold(d.get("threshold"), where, key("threshold")),
                   k=_integer(where, key("k"), d.get("k", DEFAULT_SMOOTH[0]), 1, n), n=n,
                   cooldown=_number(where, key("cooldown"), d.get("cooldown", DEFAULT_COOLDOWN_S),
                                    0.0, MAX_COOLDOWN_S),
                   source=_text(where, key("source"), d.get("source")),
                   temperature=None if temp is None else check_temperature(temp, where, key("temperature")))

    def to_dict(self) -> dict:
        out = {"threshold": self.threshold, "k": self.k, "n": self.n, "cooldown": self.cooldown}
        if self.source is not None:
            out["source"] = self.source
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return out


@dataclass(frozen=True)
class Extractor:
    """The features a run's model learnt from: what ``vd predict`` must compute again.

    ``weights`` is a label (``imagenet``, ``random(seed=N)``, ``sha256:…``); ``dim`` is the
    feature dimension D. Fields a run does not record are None.
    """

    backbone: str | None = None
    layer: str | None = None
    weights: str | None = None
    frames: int | None = None
    image_size: int | None = None
    preprocess: str | None = None
    dim: int | None = None

    def recorded(self) -> dict:
        """The run's extractor attributes, keyed as stores record them (``EXTRACTOR_KEYS``)."""
        return {k: getattr(self, k) for k in EXTRACTOR_FIELDS}


@dataclass(frozen=True)
class RunConfig:
    """``config.json`` checked. ``raw`` is the whole object as read (training's own keys:
    ``config``, ``overrides_raw``, ``split`` …); the typed fields are what scoring uses."""

    frames: int
    dim: int
    threshold: float = DEFAULT_THRESHOLD
    threshold_source: str | None = None       # None: the default; else what chose it
    threshold_temperature: float | None = None
    label_map: dict = field(default_factory=lambda: dict(LABEL_MAP))
    extractor: Extractor = Extractor()
    store: str | None = None                  # the feature store the run was trained on
    alarm: AlarmConfig | None = None          # the saved alarm setting, if any
    schema: int = RUN_SCHEMA
    vd_version: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json") -> "RunConfig":
        """Check ``d`` (config.json's object); one-line :class:`UserError` naming ``where`` and
        the key otherwise."""
        if not isinstance(d, dict):
            raise UserError(f"{where} is not a JSON object")
        schema = _integer(where, "vd_run_schema", d.get("vd_run_schema", 1), 1, 10**6)
        if schema > RUN_SCHEMA:
            raise UserError(f"{where} was written by a newer vd ({d.get('vd_version', '?')}, run "
                            f"schema {schema}); this vd reads run schema {RUN_SCHEMA}")
        for key in ("frames", "dim"):
            if key not in d:
                raise UserError(f"{where}: {key} is missing; not a vd run configuration")
        frames = _integer(where, "frames", d["frames"], 1, MAX_FRAMES)
        dim = _integer(where, "dim", d["dim"], 1, MAX_DIM)
        threshold = check_threshold(d.get("threshold", DEFAULT_THRESHOLD), where)
        t_temp = d.get("threshold_temperature")
        if t_temp is not None:
            t_temp = check_temperature(t_temp, where, "threshold_temperature")
        return cls(frames=frames, dim=dim, threshold=threshold,
                   threshold_source=_text(where, "threshold_source", d.get("threshold_source")),
                   threshold_temperature=t_temp, label_map=_label_map(d.get("label_map"), where),
                   extractor=_extractor(d.get("extractor"), frames, dim, where),
                   store=_text(where, "store", d.get("store")),
                   alarm=None if d.get("alarm") is None else AlarmConfig.from_dict(d["alarm"], where),
                   schema=schema,
                   vd_version=_text(where, "vd_version", d.get("vd_version")), raw=dict(d))

    def to_dict(self) -> dict:
        """What config.json holds: ``raw`` with the typed fields written back."""
        out = dict(self.raw)
        out.update(frames=self.frames, dim=self.dim, threshold=self.threshold,
                   label_map=dict(self.label_map), vd_run_schema=self.schema)
        for key in ("threshold_source", "threshold_temperature", "store", "vd_version"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.alarm is not None:
            out["alarm"] = self.alarm.to_dict()
        return out


def _label_map(value, where: str) -> dict:
    if value is None:
        return dict(LABEL_MAP)
    if not isinstance(value, dict) or {str(k): v for k, v in value.items()} != LABEL_MAP:
        raise UserError(f"{where}: label_map must be {json.dumps(LABEL_MAP)} (label 1 is violent "
                        f"in vd), not {_show(value)}")
    return dict(LABEL_MAP)


def _extractor(value, frames: int, dim: int, where: str) -> Extractor:
    if value is None:
        return Extractor(dim=dim)
    if not isinstance(value, dict):
        raise UserError(f"{where}: extractor must be an object, not {_show(value)}")
    key = "extractor.{}".format
    rec_frames, size = value.get("frames"), value.get("image_size")
    if rec_frames is not None:
        rec_frames = _integer(where, key("frames"), rec_frames, 1, MAX_FRAMES)
    if size is not None:
        size = _integer(where, key("image_size"), size, 1, MAX_IMAGE_SIZE)
    feature_dim = value.get("feature_dim", dim)
    feature_dim = _integer(where, key("feature_dim"), feature_dim, 1, MAX_DIM)
    if feature_dim != dim:
        raise UserError(f"{where}: extractor.feature_dim {feature_dim} differs from dim {dim}")
    weights = value.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise UserError(f"{where}: {key('weights')} must be a string, not {_show(weights)}")
    return Extractor(backbone=_text(where, key("backbone"), value.get("backbone")),
                     layer=_text(where, key("layer"), value.get("layer")), weights=weights,
                     frames=rec_frames, image_size=size,
                     preprocess=_text(where, key("preprocess"), value.get("preprocess")), dim=dim)


def check_calibration(d: dict, where: str = "calibration.json") -> dict:
    """calibration.json checked: its ``temperature`` is a number in :data:`TEMPERATURE_RANGE`."""
    if "temperature" not in d:
        raise UserError(f"{where}: temperature is missing")
    out = dict(d)
    out["temperature"] = check_temperature(d["temperature"], where)
    return out
