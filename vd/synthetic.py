"""Synthetic video material for the demo and the tests.

What this is, plainly: clips of drawn shapes that move in two different *styles*. It checks
that the pipeline sees motion -- that decoding, frame sampling, features and the sequence
model carry a temporal signal end to end. It is NOT a violence dataset: nothing learnt from it
says anything about real violence, and accuracy on it is no measure of the model.

Two writers, both seeded and deterministic, both producing real encoded files that OpenCV
(and anything built on FFmpeg) decodes:

``make_synthetic_set(out_dir, ...)``
    Two classes of clips in the folder layouts vd's label rules read:
    ``Violence/`` (label 1) and ``NonViolence/`` (label 0), the Real Life Violence Situations
    layout; or with ``layout="splits"`` ``train|val/Fight|NonFight/``, the RWF-2000 layout.
    "violent" clips: figures crowd together and strike each other -- fast, erratic motion,
    abrupt direction changes every few frames, flashes where they touch, a shaking camera.
    "calm" clips: the same kinds of figures and backgrounds drifting/walking slowly and
    smoothly. Backgrounds (gradients, stripes, checks, noise, flat colours), frame sizes
    (160x120 .. 320x240) and lengths (30-90 frames) vary per clip and are drawn from the same
    distributions for both classes, so what separates them is motion, not appearance.

``write_long_clip(path, parts=...)``
    One continuous clip whose segments switch between the two motion styles at known
    seconds, for timeline/sliding-window tests.

``ClipWriter`` is the fail-loudly, write-then-rename ``cv2.VideoWriter`` both use (the tests'
frame-numbered clips in ``tests/frame_numbers.py`` use it too).

Only ``cv2`` and ``numpy`` are needed; ``cv2`` is imported when a function runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "CLASS_DIRS",
    "ClipWriter",
    "DIFFICULTIES",
    "Difficulty",
    "SPLIT_DIRS",
    "make_synthetic_set",
    "write_long_clip",
    "write_recording",
    "write_recordings",
    "KINDS",
    "NUISANCES",
    "write_camera_clips",
    "render_clip",
    "mean_abs_frame_diff",
]

# label -> folder name, per layout (the names vd's label rules map to 1 / 0)
CLASS_DIRS = {1: "Violence", 0: "NonViolence"}  # Real Life Violence Situations
SPLIT_DIRS = {1: "Fight", 0: "NonFight"}  # RWF-2000 (under train/ and val/)
_FILE_PREFIX = {("flat", 1): "V", ("flat", 0): "NV", ("splits", 1): "F", ("splits", 0): "NF"}

# Motion styles of a scene: people walking, fighting, and motion that is not violence -- the
# camera shaking, the whole picture's brightness jumping, the same people running, a crowd
# walking through, rain (or snow) streaking the whole picture, the camera panning away and back.
KINDS = ("calm", "violent", "shake", "flicker", "run", "crowd", "rain", "pan")
NUISANCES = ("shake", "flicker", "run", "crowd", "rain", "pan")
PAN_FRAMES = 75          # a pan goes out and back in this many frames (5 s at 15 fps)

SIZES = ((160, 120), (176, 144), (192, 144), (224, 168), (240, 180), (256, 192), (320, 180), (320, 240))
FRAME_RANGE = (30, 90)

def _cv2():
    import cv2  # noqa: PLC0415  (lazy: importing vd stays cheap)

    return cv2


def _default_fourcc(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".avi", ".mkv"):
        return "FFV1"  # lossless, written by OpenCV's bundled FFmpeg
    if ext == ".mp4":
        return "mp4v"  # MPEG-4 part 2: the one mp4 encoder every OpenCV wheel has
    raise ValueError(f"no default codec for {ext!r}; use .avi, .mkv or .mp4, or pass fourcc")


class ClipWriter:
    """cv2.VideoWriter that fails loudly and writes under a temporary name, renamed on close."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], fourcc: str | None):
        cv2 = _cv2()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        code = fourcc or _default_fourcc(self.path)
        # keep the extension on the temp name: OpenCV picks the container from it
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")
        self.size = (int(size[0]), int(size[1]))
        self.w = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*code), float(fps), self.size)
        if not self.w.isOpened():
            self.w.release()
            self.tmp.unlink(missing_ok=True)
            raise RuntimeError(f"OpenCV cannot write {code!r} to {self.path.suffix} (OpenCV {cv2.__version__})")
        self.count = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        assert frame_bgr.shape[:2] == (self.size[1], self.size[0]), frame_bgr.shape
        self.w.write(np.ascontiguousarray(frame_bgr))
        self.count += 1

    def close(self) -> Path:
        self.w.release()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.w.release()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --- motion scenes ------------------------------------------------------------------------

_PALETTE = np.array(
    [
        (40, 40, 200), (40, 160, 40), (200, 80, 30), (30, 180, 220), (180, 60, 160),
        (20, 20, 20), (230, 230, 230), (60, 120, 200), (150, 150, 40), (90, 60, 30),
    ],
    np.uint8,
)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A random static background (H, W, 3) uint8: gradient, stripes, checks, noise or flat."""
    kind = rng.integers(5)
    c1 = rng.integers(0, 256, 3).astype(np.float32)
    c2 = rng.integers(0, 256, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # linear gradient at a random angle
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        img = c1 + t[..., None] * (c2 - c1)
    elif kind == 1:  # stripes
        period = rng.uniform(8, 40)
        a = rng.uniform(0, math.pi)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period)
        img = c1 + t[..., None] * (c2 - c1)
    elif kind == 2:  # checks
        s = int(rng.integers(8, 32))
        t = (((xx // s) + (yy // s)) % 2).astype(np.float32)
        img = c1 + t[..., None] * (c2 - c1) * 0.6
    elif kind == 3:  # smooth noise texture (blurred coarse noise, upscaled)
        cv2 = _cv2()
        coarse = rng.random((max(h // 8, 2), max(w // 8, 2), 1)).astype(np.float32)
        t = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        t = np.clip(t, 0, 1)[..., None] if t.ndim == 2 else np.clip(t, 0, 1)
        img = c1 + t * (c2 - c1)
    else:  # flat colour with a floor line (a "room")
        img = np.broadcast_to(c1, (h, w, 3)).copy()
        img[int(h * rng.uniform(0.6, 0.8)) :] = c2
    return np.clip(img, 0, 255).astype(np.uint8)


class _Figure:
    """A body (filled circle) with two limbs (thick lines); moves calmly or violently."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, scale: float):
        self.w, self.h = w, h
        self.r = rng.uniform(0.06, 0.10) * scale
        self.limb = self.r * rng.uniform(1.4, 2.0)
        self.x = rng.uniform(0.15, 0.85) * w
        self.y = rng.uniform(0.3, 0.7) * h
        speed = rng.uniform(0.15, 0.45) * scale / 25.0  # px/frame, ~0.2-0.5 frame-widths per 10 s
        ang = rng.uniform(0, 2 * math.pi)
        self.vx, self.vy = speed * math.cos(ang), 0.3 * speed * math.sin(ang)
        self.phase = rng.uniform(0, 2 * math.pi)
        self.swing = rng.uniform(0.05, 0.12) * 2 * math.pi  # rad/frame (calm limb swing)
        self.a = [rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)]  # limb angles
        self.color = tuple(int(v) for v in _PALETTE[rng.integers(len(_PALETTE))])
        self.limb_color = tuple(int(v) for v in _PALETTE[rng.integers(len(_PALETTE))])
        self.jolt = 0  # frames until the next abrupt change (violent)
        self.tx, self.ty = self.x, self.y

    def step_calm(self, rng: np.random.Generator) -> None:
        self.x += self.vx
        self.y += self.vy
        if not self.r < self.x < self.w - self.r:
            self.vx = -self.vx
        if not self.h * 0.2 < self.y < self.h * 0.85:
            self.vy = -self.vy
        self.phase += self.swing
        self.a = [math.pi / 2 + 0.5 * math.sin(self.phase), math.pi / 2 - 0.5 * math.sin(self.phase)]

    def step_violent(self, rng: np.random.Generator, cx: float, cy: float) -> None:
        if self.jolt <= 0:  # abrupt new target near the centre of the fight, new limb angles
            spread = 2.2 * self.r
            self.tx = cx + rng.uniform(-spread, spread)
            self.ty = cy + rng.uniform(-spread, spread) * 0.6
            self.jolt = int(rng.integers(2, 5))
            self.a = [rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)]
        self.jolt -= 1
        self.x += 0.6 * (self.tx - self.x) + rng.normal(0, 0.25 * self.r)
        self.y += 0.6 * (self.ty - self.y) + rng.normal(0, 0.25 * self.r)
        self.x = min(max(self.x, self.r), self.w - self.r)
        self.y = min(max(self.y, self.r), self.h - self.r)
        self.a = [a + rng.normal(0, 0.9) for a in self.a]  # limbs lash about

    def tips(self) -> list[tuple[float, float]]:
        return [(self.x + self.limb * math.cos(a), self.y + self.limb * math.sin(a)) for a in self.a]

    def draw(self, img: np.ndarray, thick: int) -> None:
        cv2 = _cv2()
        for tx, ty in self.tips():
            cv2.line(img, (int(self.x), int(self.y)), (int(tx), int(ty)), self.limb_color, thick, cv2.LINE_AA)
        cv2.circle(img, (int(self.x), int(self.y)), int(self.r), self.color, -1, cv2.LINE_AA)


class _Scene:
    """Background + figures; renders one frame per ``step(kind)`` with kind 'calm'/'violent'."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, difficulty: "Difficulty | None" = None,
                 strength: float = 1.0):
        self.rng, self.w, self.h = rng, w, h
        self.strength = float(strength)   # nuisances' strength (1 = the defaults below)
        self.bg = _background(rng, w, h)
        # a little margin so camera shake never shows an edge
        self.scale = float(min(w, h)) * 1.2
        self.figures = [_Figure(rng, w, h, self.scale) for _ in range(int(rng.integers(2, 4)))]
        self.thick = max(2, int(round(self.scale * 0.03)))
        self.cx, self.cy = w / 2, h / 2
        self.d = difficulty or Difficulty()
        # graded difficulty: its own random stream, so the default draws stay exactly as they were
        self.rng_d = np.random.default_rng(rng.integers(2**32)) if self.d.active else None
        if self.d.crowd:
            for _ in range(self.d.crowd):
                self.figures.append(_Figure(self.rng_d, w, h, self.scale))
        if self.d.walk_speed != 1.0:
            for f in self.figures:
                f.vx *= self.d.walk_speed
                f.vy *= self.d.walk_speed
                f.swing *= min(self.d.walk_speed, 3.0)

    def step(self, kind: str) -> np.ndarray:
        cv2 = _cv2()
        rng = self.rng
        frame = self.bg.copy()
        if kind == "violent":
            # the fight's centre wanders a little; figures jolt toward it and strike each other
            self.cx = min(max(self.cx + rng.normal(0, 0.02 * self.w), 0.3 * self.w), 0.7 * self.w)
            self.cy = min(max(self.cy + rng.normal(0, 0.02 * self.h), 0.35 * self.h), 0.65 * self.h)
            for f in self.figures:
                f.step_violent(rng, self.cx, self.cy)
        elif kind in ("calm", "shake", "flicker", "crowd", "rain", "pan"):
            for f in self.figures:
                f.step_calm(rng)
        elif kind == "run":
            for f in self.figures:   # the same walkers, three times as fast for this frame
                f.x += 2 * self.strength * f.vx
                f.y += 2 * self.strength * f.vy
                f.phase += 2 * self.strength * f.swing
                f.step_calm(rng)
        else:
            raise ValueError(f"unknown motion kind {kind!r} (use one of {', '.join(KINDS)})")
        for f in self.figures:
            f.draw(frame, self.thick)
        if kind == "crowd":
            for f in self._crowd():
                f.step_calm(self._nuisance_rng())
                f.draw(frame, self.thick)
        if kind == "violent":
            # flashes of contact: where a limb tip reaches another body
            for f in self.figures:
                for g in self.figures:
                    if f is g:
                        continue
                    for tx, ty in f.tips():
                        if (tx - g.x) ** 2 + (ty - g.y) ** 2 < (1.6 * g.r) ** 2:
                            rad = int(g.r * rng.uniform(0.6, 1.1))
                            cv2.circle(frame, (int(tx), int(ty)), rad, (255, 255, 255), -1, cv2.LINE_AA)
                            cv2.circle(frame, (int(tx), int(ty)), rad + 2, (0, 220, 255), 2, cv2.LINE_AA)
            # hand-held camera shake
            dx, dy = rng.normal(0, 0.015 * self.w), rng.normal(0, 0.015 * self.h)
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            frame = cv2.warpAffine(frame, m, (self.w, self.h), borderMode=cv2.BORDER_REFLECT)
        elif kind == "shake":
            frame = self._nuisance_shake(frame, 0.015 * self.strength)
        elif kind == "flicker":
            frame = self._nuisance_flicker(frame)
        elif kind == "rain":
            frame = self._nuisance_rain(frame)
        elif kind == "pan":
            frame = self._nuisance_pan(frame)
        elif self.d.calm_shake:
            # a hand-held camera over a calm scene: the violent class's shake, without a fight
            r = self.rng_d
            dx, dy = r.normal(0, self.d.calm_shake * self.w), r.normal(0, self.d.calm_shake * self.h)
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            frame = cv2.warpAffine(frame, m, (self.w, self.h), borderMode=cv2.BORDER_REFLECT)
        return frame

    def _nuisance_rng(self) -> np.random.Generator:
        # nuisances draw from their own stream, so calm and violent frames stay as they were
        if getattr(self, "_rng_n", None) is None:
            self._rng_n = np.random.default_rng(self.rng.integers(2**32))
        return self._rng_n

    def _nuisance_shake(self, frame: np.ndarray, sigma: float) -> np.ndarray:
        cv2 = _cv2()
        r = self._nuisance_rng()
        m = np.float32([[1, 0, r.normal(0, sigma * self.w)], [0, 1, r.normal(0, sigma * self.h)]])
        return cv2.warpAffine(frame, m, (self.w, self.h), borderMode=cv2.BORDER_REFLECT)

    def _nuisance_pan(self, frame: np.ndarray) -> np.ndarray:
        # a slow pan: the view slides sideways by up to 15 % of the width and back, along a
        # half sine over PAN_FRAMES frames (then again, for a longer stretch)
        cv2 = _cv2()
        k = getattr(self, "_pan_k", 0)
        self._pan_k = k + 1
        dx = 0.15 * self.strength * self.w * math.sin(math.pi * (k % PAN_FRAMES) / PAN_FRAMES)
        m = np.float32([[1, 0, -dx], [0, 1, 0]])
        return cv2.warpAffine(frame, m, (self.w, self.h), borderMode=cv2.BORDER_REFLECT)

    def _crowd(self) -> list:
        # eight more people, walking at their own pace; made once, on the nuisance stream
        if getattr(self, "_crowd_figures", None) is None:
            r = self._nuisance_rng()
            n = max(1, int(round(8 * self.strength)))
            self._crowd_figures = [_Figure(r, self.w, self.h, self.scale * 0.8) for _ in range(n)]
        return self._crowd_figures

    def _nuisance_rain(self, frame: np.ndarray) -> np.ndarray:
        # light streaks falling everywhere, new ones every frame, the picture a little darker
        cv2 = _cv2()
        r = self._nuisance_rng()
        n = max(1, int(self.strength * max(20, self.w * self.h / 120)))
        x = r.uniform(0, self.w, n)
        y = r.uniform(0, self.h, n)
        length = r.uniform(0.04, 0.10, n) * self.h
        lines = [np.int32([[a, b], [a + 0.25 * d, b + d]]) for a, b, d in zip(x, y, length)]
        frame = (frame.astype(np.float32) * 0.8).astype(np.uint8)
        cv2.polylines(frame, lines, False, (200, 200, 210), 1, cv2.LINE_AA)
        return frame

    def _nuisance_flicker(self, frame: np.ndarray) -> np.ndarray:
        # the whole picture's brightness jumps (lights switching, an IR cut-over, clouds)
        r = self._nuisance_rng()
        if r.random() < 0.25:
            self._gain = float(r.uniform(max(0.05, 1 - 0.55 * self.strength), 1 + 0.45 * self.strength))
        gain = getattr(self, "_gain", 1.0)
        return np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Difficulty:
    """Graded difficulty for held-out sets (all off by default: the original clips, bit for bit).

    - ``calm_shake``: camera shake on CALM clips, as a fraction of the frame size per frame
      (σ of the shift; violent clips shake with 0.015): a moving camera without a fight.
    - ``walk_speed``: calm figures walk (and swing their limbs, up to 3x) this many times faster.
    - ``crowd``: this many extra figures in every scene (both classes).
    - ``violent_share``: the share (0..1] of a violent clip's frames that are violent; the fight
      sits in the middle, calm walking before and after (partially violent clips).
    - ``fourcc``/``ext``: the codec and container clips are written with ('mp4v' .mp4 default;
      e.g. 'MJPG' .avi, 'FFV1' .avi).
    - ``sizes``: None keeps :data:`SIZES`; else (W, H) pairs to draw from.
    """

    calm_shake: float = 0.0
    walk_speed: float = 1.0
    crowd: int = 0
    violent_share: float = 1.0
    fourcc: str = "mp4v"
    ext: str = ".mp4"
    sizes: tuple | None = None

    def __post_init__(self):
        if not 0.0 < self.violent_share <= 1.0:
            raise ValueError("violent_share must be in (0, 1]")
        if self.calm_shake < 0 or self.walk_speed <= 0 or self.crowd < 0:
            raise ValueError("calm_shake >= 0, walk_speed > 0 and crowd >= 0 are required")

    @property
    def active(self) -> bool:
        """Whether anything that changes the rendered frames is set."""
        return bool(self.calm_shake or self.walk_speed != 1.0 or self.crowd or self.violent_share < 1.0)


# Named levels for held-out sets (bench/small_data.py): each adds one hardship to the plain set.
DIFFICULTIES = {
    "plain": Difficulty(),
    "shaky": Difficulty(calm_shake=0.015),                      # calm clips shake like fights
    "crowd": Difficulty(crowd=3, walk_speed=3.0),               # busy scenes, fast walkers
    "partial": Difficulty(violent_share=0.4),                    # 40 % of a violent clip fights
    "mjpg-hd": Difficulty(fourcc="MJPG", ext=".avi", sizes=((640, 360), (480, 360))),
}


def _kinds(kind: str, n: int, d: Difficulty) -> list[str]:
    """Per-frame motion style of one clip: a violent clip is violent in its middle share only."""
    if kind != "violent" or d.violent_share >= 1.0:
        return [kind] * n
    k = max(1, int(round(n * d.violent_share)))
    start = (n - k) // 2
    return ["calm"] * start + ["violent"] * k + ["calm"] * (n - start - k)


def render_clip(kind: str, n_frames: int, size: tuple[int, int], seed: int | Sequence[int] = 0) -> np.ndarray:
    """Frames (n_frames, H, W, 3) BGR uint8 of one scene in motion style ``kind`` ('calm'/'violent')."""
    rng = np.random.default_rng(seed)
    scene = _Scene(rng, int(size[0]), int(size[1]))
    return np.stack([scene.step(kind) for _ in range(n_frames)])


def mean_abs_frame_diff(frames: np.ndarray) -> float:
    """Mean absolute difference between consecutive frames (0..255), over all pixels and channels."""
    f = np.asarray(frames, dtype=np.int16)
    if len(f) < 2:
        return 0.0
    return float(np.abs(np.diff(f, axis=0)).mean())


def make_synthetic_set(
    out_dir: str | os.PathLike,
    n_per_class: int = 20,
    seed: int = 0,
    fps: float = 25.0,
    layout: str = "flat",
    val_fraction: float = 0.25,
    frames: tuple[int, int] = FRAME_RANGE,
    sizes: Sequence[tuple[int, int]] = SIZES,
    difficulty: Difficulty | str | None = None,
) -> list[Path]:
    """Write ``n_per_class`` violent-style and calm-style clips (.mp4, mp4v) under ``out_dir``.

    ``layout="flat"``: ``Violence/V_###.mp4`` (label 1) and ``NonViolence/NV_###.mp4`` (label 0).
    ``layout="splits"``: ``train|val/Fight/F_###.mp4`` and ``train|val/NonFight/NF_###.mp4``;
    ``round(n_per_class * val_fraction)`` clips per class (at least 1 when n_per_class >= 2) go
    to ``val``. Each clip's size is drawn from ``sizes`` ((W, H) pairs) and its length from
    ``frames`` (inclusive range). Clip ``i`` of a class depends only on (seed, label, i), so the
    same seed gives the same clips. Returns the written paths, sorted.

    ``difficulty``: a :class:`Difficulty` or a name in :data:`DIFFICULTIES` for graded held-out
    sets; None (default) writes exactly the clips earlier versions wrote.

    Not a violence dataset: the two classes differ in motion style only (see the module doc).
    """
    if isinstance(difficulty, str):
        if difficulty not in DIFFICULTIES:
            raise ValueError(f"unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}")
        difficulty = DIFFICULTIES[difficulty]
    d = difficulty or Difficulty()
    if d.sizes is not None:
        sizes = d.sizes
    if layout not in ("flat", "splits"):
        raise ValueError(f"layout must be 'flat' or 'splits', not {layout!r}")
    if n_per_class < 1:
        raise ValueError("n_per_class must be >= 1")
    out = Path(out_dir)
    n_val = 0
    if layout == "splits" and n_per_class >= 2:
        n_val = min(max(1, round(n_per_class * val_fraction)), n_per_class - 1)
    paths = []
    for label in (1, 0):
        kind = "violent" if label == 1 else "calm"
        prefix = _FILE_PREFIX[(layout, label)]
        for i in range(n_per_class):
            rng = np.random.default_rng([seed, label, i])
            w, h = sizes[int(rng.integers(len(sizes)))]
            n = int(rng.integers(frames[0], frames[1] + 1))
            if layout == "flat":
                folder = out / CLASS_DIRS[label]
            else:
                folder = out / ("val" if i >= n_per_class - n_val else "train") / SPLIT_DIRS[label]
            path = folder / f"{prefix}_{i:03d}{d.ext}"
            scene = _Scene(rng, w, h, d)
            with ClipWriter(path, fps, (w, h), d.fourcc) as wr:
                for k in _kinds(kind, n, d):
                    wr.write(scene.step(k))
            paths.append(path)
    return sorted(paths)


def write_long_clip(
    path: str | os.PathLike,
    parts: Sequence[tuple[str, float]] = (("calm", 4.0), ("violent", 4.0), ("calm", 4.0)),
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    fourcc: str | None = None,
    nuisance_strength: float = 1.0,
) -> list[tuple[str, float, float]]:
    """One continuous scene whose motion style switches at known times.

    ``parts``: (kind, seconds) with kind one of :data:`KINDS`; each part gets
    ``round(seconds * fps)`` frames. Returns ``[(kind, start_s, end_s), ...]`` where the times
    are frame boundaries divided by fps (frame ``k`` is shown from ``k / fps``), so
    ``start_s * fps`` is the first frame index of the part exactly.

    ``nuisance_strength`` grades every nuisance (1 = the defaults; 2 = twice as strong): shake
    σ (1.5 % of the frame per frame at 1), the running speed-up, the crowd's size (8), the
    rain's density, the pan's reach (15 % of the width) and the flicker's gain range
    (0.45–1.45). Frames outside the nuisances do not change with it.
    """
    if not nuisance_strength > 0:
        raise ValueError(f"nuisance_strength must be > 0, not {nuisance_strength}")
    path = Path(path)
    rng = np.random.default_rng([seed, 7])
    scene = _Scene(rng, int(size[0]), int(size[1]), strength=nuisance_strength)
    segments = []
    k = 0
    with ClipWriter(path, fps, size, fourcc) as wr:
        for kind, seconds in parts:
            if kind not in KINDS:
                raise ValueError(f"unknown motion kind {kind!r} (use one of {', '.join(KINDS)})")
            n = int(round(seconds * fps))
            start = k
            for _ in range(n):
                wr.write(scene.step(kind))
                k += 1
            segments.append((kind, start / fps, k / fps))
    return segments


def write_recording(
    path: str | os.PathLike,
    duration_s: float,
    events: Sequence[tuple[str, float, float]] = (),
    fps: float = 15.0,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    fourcc: str | None = None,
    nuisance_strength: float = 1.0,
) -> list[tuple[float, float]]:
    """An untrimmed recording of one fixed camera: people walk throughout; ``events``
    (``(kind, start_s, seconds)``, kind 'violent' or a nuisance of :data:`NUISANCES`) replace
    the walking at those times. Returns the violent intervals ``[(start_s, end_s)]`` as
    written (frame boundaries / fps): the recording's annotations. ``nuisance_strength``:
    see :func:`write_long_clip`.
    """
    parts, t = [], 0.0
    for kind, start, seconds in sorted(events, key=lambda e: e[1]):
        if start < t - 1e-9 or start + seconds > duration_s + 1e-9:
            raise ValueError("events must not overlap and must lie inside the recording")
        if start > t:
            parts.append(("calm", start - t))
        parts.append((kind, seconds))
        t = start + seconds
    if duration_s > t:
        parts.append(("calm", duration_s - t))
    segments = write_long_clip(path, parts, fps=fps, size=size, seed=seed, fourcc=fourcc,
                               nuisance_strength=nuisance_strength)
    return [(a, b) for kind, a, b in segments if kind == "violent"]


def write_recordings(
    out_dir: str | os.PathLike,
    count: int = 2,
    duration_s: float = 60.0,
    fights: int = 1,
    fight_s: float = 6.0,
    nuisances: Sequence[str] = (),
    nuisance_s: float = 5.0,
    fps: float = 15.0,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    nuisance_strength: float = 1.0,
) -> Path:
    """``count`` recordings ``rec_###.mp4`` of one camera (the same scene, ``seed``), each with
    ``fights`` fights and one of each ``nuisances`` at seeded, non-overlapping times, and
    ``annotations.csv`` (``video,start_s,end_s``) beside them, and ``nuisances.csv``
    (``video,kind,start_s,end_s``: where motion that is not violence was put). Returns the
    annotations' path. ``nuisance_strength`` grades the nuisances (see :func:`write_long_clip`);
    the times and everything else stay the same, so recordings of one seed at two strengths
    differ only inside the nuisances.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, nuisance_rows = ["video,start_s,end_s"], ["video,kind,start_s,end_s"]
    for i in range(count):
        rng = np.random.default_rng([seed, 11, i])
        kinds = ["violent"] * fights + list(nuisances)
        lengths = [fight_s if k == "violent" else nuisance_s for k in kinds]
        slots = int(duration_s // (max(lengths, default=1.0) + 4.0))
        if len(kinds) > slots:
            raise ValueError(f"{len(kinds)} events do not fit in {duration_s:g} s")
        order = rng.permutation(slots)[: len(kinds)]
        slot_s = duration_s / slots
        events = [(k, float(o * slot_s + rng.uniform(1.0, max(1.0, slot_s - n - 1.0))), n)
                  for k, o, n in zip(kinds, order, lengths)]
        name = f"rec_{i:03d}.mp4"
        for a, b in write_recording(out / name, duration_s, events, fps=fps, size=size, seed=seed,
                                    nuisance_strength=nuisance_strength):
            rows.append(f"{name},{a:.3f},{b:.3f}")
        if fights == 0:
            rows.append(f"{name},,")
        nuisance_rows += [f"{name},{k},{round(a * fps) / fps:.3f},{round((a + n) * fps) / fps:.3f}"
                          for k, a, n in events if k != "violent"]
    (out / "nuisances.csv").write_text("\n".join(nuisance_rows) + "\n")
    csv_path = out / "annotations.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    return csv_path


def write_camera_clips(
    out_dir: str | os.PathLike,
    parts: Sequence[tuple[str, float]],
    skip: Sequence[tuple[str, float]] = (),
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    fourcc: str | None = None,
) -> list[Path]:
    """Labelled clips from the camera :func:`write_long_clip` films with the same seed and size.

    The scene (background, figures, colours) is rendered exactly as ``write_long_clip(seed=,
    size=)`` renders it; the ``skip`` parts are rendered and thrown away first (give the long
    clip's own ``parts`` so the clips come from LATER footage, none of its frames), then each
    of ``parts`` is written as its own clip, ``Violence/CV_###.mp4`` or
    ``NonViolence/CN_###.mp4`` (the flat layout's label folders), ``round(seconds * fps)``
    frames each. What a user of a fixed camera can collect: footage of that camera at other
    times, calm and staged incidents. Returns the written paths, sorted.
    """
    out = Path(out_dir)
    rng = np.random.default_rng([seed, 7])
    scene = _Scene(rng, int(size[0]), int(size[1]))
    for kind, seconds in skip:
        for _ in range(int(round(seconds * fps))):
            scene.step(kind)
    paths = []
    for i, (kind, seconds) in enumerate(parts):
        if kind not in ("calm", "violent"):
            raise ValueError(f"unknown motion kind {kind!r} (use 'calm' or 'violent')")
        label = 1 if kind == "violent" else 0
        path = out / CLASS_DIRS[label] / f"{'CV' if label else 'CN'}_{i:03d}.mp4"
        with ClipWriter(path, fps, size, fourcc) as wr:
            for _ in range(int(round(seconds * fps))):
                wr.write(scene.step(kind))
        paths.append(path)
    return sorted(paths)
