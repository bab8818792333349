"""Zones and masks of a camera: which part of the picture the backbone sees.

A camera may name **masks** (areas never analysed: a TV on the wall, a window onto the street)
and **zones** (the part that matters: a bar, a gate). Both are polygons in the picture's
coordinates, written ``"x,y x,y x,y ..."`` (at least 3 points, at most :data:`MAX_POINTS`):

- fractions of the width and height when every number is between 0 and 1
  (``"0.1,0.2 0.5,0.2 0.5,0.6"``), so the same polygon fits any resolution of the camera;
- pixels of the decoded frame (after rotation) otherwise (``"120,40 600,40 600,400"``); a pixel
  point outside the frame is refused when the first frame of that size arrives.

What is done to a frame before the backbone (:meth:`Layout.apply`):

1. With zones, the picture is cropped to the bounding box of their union, so that the backbone's
   square input (the crop resized, as the whole frame is today) sees a far part of the scene at a
   higher resolution; inside that box, pixels outside every zone are blanked.
2. Masked pixels are blanked (set to 0), whether or not a zone covers them: a mask wins.

The work per frame size is done once (:meth:`Regions.for_size`: the crop and a uint8 mask of
the crop, 255 = analysed); per frame it is one slice and, when anything is blanked, one
``cv2.bitwise_and`` over the crop into a new array (the decoder's buffer is never written).
Incident clips and snapshots keep the whole picture: zones and masks only change what is scored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from vd.errors import UserError

MAX_POINTS = 256          # points in one polygon
MAX_POLYGONS = 32         # masks + zones of one camera
MAX_PIXEL = 16384         # a pixel coordinate larger than any frame vd decodes is a typo
MAX_SIZES = 4             # frame sizes whose layout is kept (a camera's resolution may change)
_SHIFT = 4                # fillPoly's fixed-point bits: sub-pixel polygon edges
_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True)
class Polygon:
    """``points`` as given; ``fractions`` True when they are fractions of width/height."""

    points: tuple
    fractions: bool
    text: str = ""

    def pixels(self, width: int, height: int) -> np.ndarray:
        """The points in pixels of a ``width`` x ``height`` frame: float64 (N, 2)."""
        p = np.asarray(self.points, np.float64)
        if self.fractions:
            return p * np.array([width, height], np.float64)
        if (p[:, 0] > width).any() or (p[:, 1] > height).any():
            raise UserError(f"polygon {self.text!r} has points outside the {width}x{height} frame "
                            f"(pixel coordinates; write fractions 0-1 to fit any resolution)")
        return p


def parse_polygon(spec) -> Polygon:
    """``"x,y x,y x,y ..."`` (or a sequence of (x, y) pairs, as a config file gives it) → a
    :class:`Polygon`; a one-line :class:`UserError` for anything else."""
    text = spec if isinstance(spec, str) else " ".join(f"{a},{b}" for a, b in _pairs(spec))
    shown = text if len(text) <= 60 else text[:57] + "..."
    tokens = text.replace(";", " ").split()
    if len(tokens) < 3:
        raise UserError(f"polygon {shown!r}: needs at least 3 points written x,y separated by spaces")
    if len(tokens) > MAX_POINTS:
        raise UserError(f"polygon {shown!r}: {len(tokens)} points, at most {MAX_POINTS}")
    pts = []
    for tok in tokens:
        xy = tok.split(",")
        if len(xy) != 2 or not all(_NUMBER.match(v) for v in xy):
            raise UserError(f"polygon {shown!r}: {tok[:30]!r} is not a point x,y of two numbers >= 0")
        x, y = float(xy[0]), float(xy[1])
        if not (math.isfinite(x) and math.isfinite(y)) or max(x, y) > MAX_PIXEL:
            raise UserError(f"polygon {shown!r}: {tok[:30]!r} is out of range (at most {MAX_PIXEL})")
        pts.append((x, y))
    fractions = all(x <= 1.0 and y <= 1.0 for x, y in pts)
    if abs(_area(pts)) < (1e-6 if fractions else 1.0):
        raise UserError(f"polygon {shown!r}: encloses no area (points on one line or repeated)")
    return Polygon(tuple(pts), fractions, text)


def _pairs(seq):
    try:
        pairs = [tuple(p) for p in seq]
    except TypeError:
        raise UserError(f"polygon {str(seq)[:60]!r}: expected \"x,y x,y x,y\" or a list of [x, y]") from None
    if not all(len(p) == 2 for p in pairs):
        raise UserError(f"polygon {str(seq)[:60]!r}: every point is [x, y]")
    return pairs


def _area(pts) -> float:
    p = np.asarray(pts, np.float64)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@dataclass
class Layout:
    """What :class:`Regions` does to frames of one size: ``crop`` (x0, y0, x1, y1) and
    ``keep`` (uint8 (y1 - y0, x1 - x0), 255 = analysed; None when nothing in the crop is
    blanked); ``analysed`` is the share of the crop that is analysed."""

    width: int
    height: int
    crop: tuple
    keep: np.ndarray | None
    analysed: float

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """A decoded frame (H, W[, C], this layout's size) → the picture the backbone sees: the
        crop, masked pixels 0. A view of ``frame`` when nothing is blanked, else a new array."""
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is not this layout's "
                             f"{self.width}x{self.height}")
        x0, y0, x1, y1 = self.crop
        sub = frame[y0:y1, x0:x1]
        if self.keep is None:
            return sub
        return cv2.bitwise_and(sub, sub, mask=self.keep)


@dataclass
class Regions:
    """A camera's masks and zones (:func:`parse_polygon` each); :meth:`for_size` → the
    :class:`Layout` for a frame size (computed once per size)."""

    masks: tuple = ()
    zones: tuple = ()
    _layouts: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, masks=(), zones=()) -> "Regions":
        """Polygons as strings (or point lists) → Regions; one-line UserError on bad input."""
        masks = [masks] if isinstance(masks, str) else list(masks or ())
        zones = [zones] if isinstance(zones, str) else list(zones or ())
        if len(masks) + len(zones) > MAX_POLYGONS:
            raise UserError(f"{len(masks) + len(zones)} masks and zones; at most {MAX_POLYGONS} a camera")
        return cls(tuple(parse_polygon(m) for m in masks), tuple(parse_polygon(z) for z in zones))

    @property
    def active(self) -> bool:
        return bool(self.masks or self.zones)

    def outline(self) -> dict | None:
        """The polygons as fractions of the picture (``{"masks": [[[x, y], ...], ...],
        "zones": [...]}``), what the dashboard draws over a snapshot (which may be smaller
        than the decoded frame); pixel polygons are divided by the size of the last frame
        laid out, and left out before one was. None without masks and zones."""
        if not self.active:
            return None
        sizes = list(self._layouts)   # one C-level copy: the reader thread may add a size
        size = sizes[-1] if sizes else None

        def frac(poly):
            if poly.fractions:
                return [[round(x, 5), round(y, 5)] for x, y in poly.points]
            if size is None:
                return None
            return [[round(x / size[0], 5), round(y / size[1], 5)] for x, y in poly.points]

        return {k: [q for q in map(frac, polys) if q is not None]
                for k, polys in (("masks", self.masks), ("zones", self.zones))}

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """:meth:`Layout.apply` with the layout of ``frame``'s size."""
        return self.for_size(frame.shape[1], frame.shape[0]).apply(frame)

    def for_size(self, width: int, height: int) -> Layout:
        key = (int(width), int(height))
        lay = self._layouts.get(key)
        if lay is None:
            if len(self._layouts) >= MAX_SIZES:
                self._layouts.clear()
            lay = self._layouts[key] = self._layout(*key)
        return lay

    def _layout(self, w: int, h: int) -> Layout:
        if w < 1 or h < 1:
            raise ValueError(f"no layout for a {w}x{h} frame")
        keep = np.full((h, w), 255, np.uint8)
        x0, y0, x1, y1 = 0, 0, w, h
        if self.zones:
            zpts = [z.pixels(w, h) for z in self.zones]
            allp = np.concatenate(zpts)
            x0, y0 = (max(0, int(math.floor(v))) for v in allp.min(axis=0))
            x1, y1 = min(w, int(math.ceil(allp[:, 0].max()))), min(h, int(math.ceil(allp[:, 1].max())))
            if x1 - x0 < 2 or y1 - y0 < 2:
                raise UserError(f"the zones leave less than 2x2 pixels of the {w}x{h} frame")
            keep[:] = 0
            cv2.fillPoly(keep, [_fixed(p) for p in zpts], 255, cv2.LINE_8, _SHIFT)
        if self.masks:
            cv2.fillPoly(keep, [_fixed(m.pixels(w, h)) for m in self.masks], 0, cv2.LINE_8, _SHIFT)
        sub = np.ascontiguousarray(keep[y0:y1, x0:x1])
        analysed = float(np.count_nonzero(sub)) / sub.size
        if analysed == 0.0:
            raise UserError(f"the masks cover everything the zones leave of the {w}x{h} frame")
        return Layout(w, h, (x0, y0, x1, y1), None if analysed == 1.0 else sub, analysed)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel points → fillPoly's fixed-point int32 (pixel centres at integer coordinates:
    a fraction polygon 0..1 covers the frame's every pixel)."""
    return np.round((points - 0.5) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
