"""The camera config file (``vd watch --config cameras.yaml``, ``vd serve --config``): cameras
with their own settings over global defaults, validated before any model loads, and the
difference between two versions of it (what a reload starts, stops and restarts).

The file (YAML)::

    defaults:              # every camera key but name/url; each camera may override them
      threshold: 0.7       # null or absent: the run's saved alarm, else its operating point
      smoothing: 2/3       # K of the last N windows at or above the threshold start an
                           # incident (null or absent: the run's saved alarm, else 2/3)
      cooldown: 4          # seconds (null or absent: the run's saved alarm, else 4)
      pre_roll: 5
      post_roll: 5
      retain_days: 30      # files of an incident older than this go (null: kept)
      retain_violent_days: 365   # ... of one reviewed as violent (null: max(retain_days, 365))
      max_clips_gb: 20     # one camera's files (null: no budget of its own)
    max_clips_gb: 100      # the whole clips folder
    cameras:
      - name: door                                       # [A-Za-z0-9][A-Za-z0-9_.-]*, ≤ 64, unique
        url: rtsp://vd:${DOOR_PASSWORD}@10.0.0.5/stream  # ${VAR}: from the environment
        threshold: 0.8
      - name: yard
        url: rtsp://10.0.0.6/stream
        enabled: false

What comes out of :func:`load`: a :class:`CamerasConfig` of frozen :class:`Camera` values with
every setting resolved (defaults applied, ``${VAR}`` substituted). Anything wrong raises
:class:`vd.errors.UserError` with one line naming the file, the key and the problem: an unknown
key, a value of the wrong type or out of range, a bad URL, a repeated camera name or key, an
unset environment variable, a file that is not YAML. A URL is never written into a message,
a log line or a ``repr`` (it may hold a password): :func:`redact_url` shows it.
"""

from __future__ import annotations

import os
import re
import reprlib
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from vd.errors import UserError
from vd.live.retention import Policy

MAX_BYTES = 1_000_000
MAX_CAMERAS = 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def redact_url(url: str) -> str:
    """``rtsp://user:secret@host/…`` → ``rtsp://user:***@host/…`` (what logs and answers show)."""
    return re.sub(r"(://[^/:@]*):[^/]*@", r"\1:***@", str(url))   # to the last @ of the host part


@dataclass(frozen=True)
class Camera:
    """One camera, every setting resolved. ``url`` holds any secret: it is left out of ``repr``;
    :attr:`shown_url` is safe to print."""

    name: str
    url: str = field(repr=False)
    enabled: bool = True
    threshold: float | None = None
    smoothing: tuple[int, int] | None = None   # None: the run's saved alarm (vd.live.session)
    cooldown: float | None = None
    pre_roll: float = 5.0
    post_roll: float = 5.0
    retain_days: float | None = None
    retain_violent_days: float | None = None
    max_clips_gb: float | None = None

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)

    def policy(self) -> Policy:
        return Policy(self.retain_days, self.retain_violent_days, self.max_clips_gb)


RETENTION_KEYS = ("retain_days", "retain_violent_days", "max_clips_gb")
CAMERA_KEYS = tuple(f.name for f in fields(Camera))
DEFAULT_KEYS = tuple(k for k in CAMERA_KEYS if k not in ("name", "url"))
TOP_KEYS = ("defaults", "cameras", "max_clips_gb")


@dataclass(frozen=True)
class CamerasConfig:
    """A loaded config file: its cameras (in file order) and the clips folder's budget."""

    path: str
    cameras: tuple[Camera, ...]
    max_clips_gb: float | None = None

    @property
    def enabled(self) -> tuple[Camera, ...]:
        return tuple(c for c in self.cameras if c.enabled)

    def retention(self) -> tuple[Policy, dict[str, Policy]]:
        """What :func:`vd.live.retention.sweep` takes: the folder's policy (its budget) and
        each camera's (days from the camera or the defaults, its own budget)."""
        return Policy(max_clips_gb=self.max_clips_gb), {c.name: c.policy() for c in self.cameras}


@dataclass(frozen=True)
class ConfigDiff:
    """Old config → new: cameras to start, to stop, to restart (a setting the engine uses
    changed), and whether only retention settings changed somewhere (no restart needed)."""

    added: tuple[Camera, ...] = ()
    removed: tuple[Camera, ...] = ()
    changed: tuple[tuple[Camera, Camera], ...] = ()
    retention_changed: bool = False

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.retention_changed)


class _Bad(Exception):
    """A value is wrong: the message says how (never the value of a URL)."""


# ------------------------------------------------------------------ values


def _number(v, lo: float, hi: float, *, nullable: bool, lo_open: bool = False):
    if v is None and nullable:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise _Bad(f"must be a number{' or null' if nullable else ''}, not {_show(v)}")
    if v < lo or v > hi or (lo_open and v == lo):
        raise _Bad(f"must be {'above' if lo_open else 'at least'} {lo:g} and at most {hi:g}, not {v:g}")
    return float(v)


def _smoothing(v) -> tuple[int, int] | None:
    if v is None:
        return None
    text = "/".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)
    m = re.fullmatch(r"\s*(\d{1,3})\s*/\s*(\d{1,3})\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= 100:
        raise _Bad(f"must be K/N with 1 ≤ K ≤ N ≤ 100 (e.g. 2/3), not {_show(v)}")
    return int(m.group(1)), int(m.group(2))


def _bool(v) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"must be true or false, not {_show(v)}")
    return v


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 30, 30, 2, 4, 4


def _show(v) -> str:
    """A short, bounded rendering of a wrong value (a YAML alias bomb must not expand here)."""
    return _REPR.repr(v)


CHECKS = {
    "enabled": _bool,
    "threshold": lambda v: _number(v, 0.0, 1.0, nullable=True),
    "smoothing": _smoothing,
    "cooldown": lambda v: _number(v, 0.0, 3600.0, nullable=True),
    "pre_roll": lambda v: _number(v, 0.0, 60.0, nullable=False),
    "post_roll": lambda v: _number(v, 0.0, 60.0, nullable=False),
    "retain_days": lambda v: _number(v, 0.0, 36500.0, nullable=True, lo_open=True),
    "retain_violent_days": lambda v: _number(v, 0.0, 36500.0, nullable=True, lo_open=True),
    "max_clips_gb": lambda v: _number(v, 0.0, 1e6, nullable=True, lo_open=True),
}


def expand_env(text: str, environ) -> str:
    """``${VAR}`` → its value from ``environ``; an unset one is an error naming it."""
    def sub(m):
        if m.group(1) not in environ:
            raise _Bad(f"environment variable {m.group(1)} is not set")
        return environ[m.group(1)]

    return ENV.sub(sub, text)


def _url(v, environ) -> str:
    from vd.extract.frames import LIVE_SCHEMES, DecodeError, parse_target

    if not isinstance(v, (str, int)) or isinstance(v, bool) or str(v).strip() == "":
        raise _Bad("must be a stream URL, a device index or a video file path")
    text = expand_env(str(v).strip(), environ)
    if len(text) > 4096 or any(ord(c) < 32 or c.isspace() for c in text):
        raise _Bad("has spaces or control characters, or is longer than 4096 characters")
    try:
        kind, _ = parse_target(text)
    except DecodeError:
        raise _Bad(f"scheme is not one of {', '.join(LIVE_SCHEMES)}") from None
    if kind == "url":
        try:
            parts = urllib.parse.urlsplit(text)
            parts.port  # noqa: B018 — raises ValueError on a bad port
        except ValueError:
            raise _Bad("is not a valid URL (its port or host cannot be read)") from None
        if not parts.hostname:
            raise _Bad("has no host")
    return text


# ------------------------------------------------------------------ the file


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (YAML would keep the last)."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read(path: Path):
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"{path}: larger than {MAX_BYTES // 1000} kB: not a camera config")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read it ({type(e).__name__})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 — a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        what = " ".join(str(getattr(e, "problem", None) or e).split())
        raise UserError(f"{path}{where}: not valid YAML: {what}") from None


def _settings(raw: dict, allowed: tuple, where: str, environ) -> dict:
    out = {}
    for key, value in raw.items():
        if key not in allowed:
            raise _Bad(f"{where}{key}: unknown key (known: {', '.join(allowed)})")
        try:
            if key == "name":
                if not isinstance(value, str) or not NAME.match(value):
                    raise _Bad(f"must be 1–64 letters, digits, '_', '-' or '.', starting with a "
                               f"letter or digit, not {_show(value)}")
                out[key] = value
            elif key == "url":
                out[key] = _url(value, environ)
            else:
                out[key] = CHECKS[key](value)
        except _Bad as e:
            raise _Bad(f"{where}{key}: {e}") from None
    return out


def _cameras(raw, defaults: dict, environ) -> tuple[Camera, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Bad("cameras: must be a list of cameras (each with name and url)")
    if len(raw) > MAX_CAMERAS:
        raise _Bad(f"cameras: at most {MAX_CAMERAS}")
    out, names = [], set()
    for i, item in enumerate(raw):
        label = f"cameras[{i}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name'][:64]})"
        if not isinstance(item, dict):
            raise _Bad(f"{label}: must be a mapping with name and url")
        got = _settings(item, CAMERA_KEYS, f"{label}.", environ)
        for need in ("name", "url"):
            if need not in got:
                raise _Bad(f"{label}: {need} is missing")
        if got["name"] in names:
            raise _Bad(f"{label}.name: camera {got['name']!r} is named twice")
        names.add(got["name"])
        out.append(Camera(**{**defaults, **got}))
    return tuple(out)


def load(path, environ=None) -> CamerasConfig:
    """Read and check ``path``; ``environ`` (default ``os.environ``) fills ``${VAR}``.
    Raises :class:`UserError` (one line) on anything wrong."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    raw = _read(path)
    try:
        if not isinstance(raw, dict):
            raise _Bad("must be a mapping with 'cameras' (and 'defaults', 'max_clips_gb')")
        for key in raw:
            if key not in TOP_KEYS:
                raise _Bad(f"{key}: unknown key (known: {', '.join(TOP_KEYS)})")
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise _Bad("defaults: must be a mapping")
        base = _settings(defaults, DEFAULT_KEYS, "defaults.", environ)
        cams = _cameras(raw.get("cameras"), base, environ)
        budget = CHECKS["max_clips_gb"](raw.get("max_clips_gb"))
    except _Bad as e:
        raise UserError(f"{path}: {e}") from None
    return CamerasConfig(str(path), cams, budget)


_RESTART_KEYS = tuple(k for k in CAMERA_KEYS if k not in RETENTION_KEYS + ("name", "enabled"))


def diff(old: CamerasConfig | None, new: CamerasConfig) -> ConfigDiff:
    """What a reload does: enabled cameras in ``new`` only → ``added``; in ``old`` only (or
    disabled now) → ``removed``; in both with a different URL or engine setting → ``changed``
    (old, new), to be restarted. Retention-only differences set ``retention_changed``."""
    before = {c.name: c for c in (old.enabled if old is not None else ())}
    after = {c.name: c for c in new.enabled}
    added = tuple(c for n, c in after.items() if n not in before)
    removed = tuple(c for n, c in before.items() if n not in after)
    changed, retention = [], old is not None and old.max_clips_gb != new.max_clips_gb
    for n in before.keys() & after.keys():
        a, b = before[n], after[n]
        if any(getattr(a, k) != getattr(b, k) for k in _RESTART_KEYS):
            changed.append((a, b))
        if a.policy() != b.policy():
            retention = True
    order = {n: i for i, n in enumerate(after)}
    changed.sort(key=lambda ab: order[ab[1].name])
    return ConfigDiff(added, removed, tuple(changed), bool(retention))
