"""The motion gate: does a window need the backbone at all?

An empty corridor at night costs the backbone as much as a crowded bar. The gate measures, on
each frame the window sampler retrieves anyway (the frames that would go to the backbone: no
extra decoding), how much of the analysed picture changed since the previous such frame; a
window none of whose frames changed is **still**: it is reported with score 0 and
``still: true`` and its frames never reach the backbone. Any motion inside the window → it is
scored as before.

The measure (:class:`MotionMeter`, per source): the frame (already cropped to the camera's zones
and with its masks blanked, :mod:`vd.live.zones`) is shrunk to :attr:`MotionConfig.width` pixels
wide (area average: sensor noise and compression blocks average out) and made gray. Its
brightness and contrast are matched to the previous frame's (a global gain and offset: equal mean
and spread), so a change of the whole picture's brightness (lights switched, clouds, an
auto-exposure step) is not motion; pixels clipped black or white in either frame are not
compared (their detail is gone). A jump that saturates part of the picture is not a gain and an
offset any more (pixels partly clipped inside one shrunk pixel): such a window may count as
moving -- it is scored, which costs backbone work and misses nothing. The measure is the share of analysed pixels whose gray level
then differs by more than :attr:`MotionConfig.pixel_delta`. Masked pixels (the ``keep`` mask)
count neither way.

The decision (:func:`window_still`): a window is still when every one of its sampled frames was
measured and changed less than :attr:`MotionConfig.min_area` of the picture; a frame without a
predecessor (the first of a connection) counts as motion.

What it may miss, by construction: motion smaller than ``min_area`` of the analysed picture
(a fight far away in a wide picture: use a zone, which also raises the resolution), motion of
less than ``pixel_delta`` gray levels after the shrink (a dark figure on a dark background at
night), motion only in masked areas (by design), and a window in which nothing moves at all
(someone lying still) -- scored 0 like calm footage would be. The sampled frames are
``window / 20`` apart (0.1 s for a 2 s window): motion that leaves the picture exactly as it was
at each sampled instant is not seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vd.errors import UserError

MODES = ("auto", "off")
CLIP_LOW, CLIP_HIGH = 4, 251   # gray levels at or beyond these are taken as clipped
MAX_GAIN = 4.0                 # the largest brightness change between two frames taken as lighting


@dataclass(frozen=True)
class MotionConfig:
    """``mode``: ``auto`` (gate still windows) or ``off`` (score every window). ``min_area``:
    the share of the analysed picture (0-1) that must change between two sampled frames for a
    window to count as moving (the sensitivity: smaller = more sensitive). ``pixel_delta``: gray
    levels (0-255) a pixel of the shrunk picture must change by. ``width``: pixels the picture is
    shrunk to (its height keeps the aspect)."""

    mode: str = "auto"
    min_area: float = 0.002
    pixel_delta: float = 12.0
    width: int = 80

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"motion gate mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 0.0 < float(self.min_area) < 1.0:
            raise UserError(f"motion min_area {self.min_area!r}: a share of the picture between 0 and 1")
        if not 1.0 <= float(self.pixel_delta) <= 128.0:
            raise UserError(f"motion pixel_delta {self.pixel_delta!r}: gray levels between 1 and 128")
        if not 16 <= int(self.width) <= 640:
            raise UserError(f"motion width {self.width!r}: between 16 and 640 pixels")

    @property
    def on(self) -> bool:
        return self.mode == "auto"


class MotionMeter:
    """Per source: :meth:`measure` each retrieved frame in order; :meth:`reset` after a
    reconnect (the next frame has no predecessor)."""

    def __init__(self, cfg: MotionConfig = MotionConfig()):
        self.cfg = cfg
        self._prev = None             # (small gray uint8, valid bool or None, frame (H, W))
        self._keep_cache = None       # (id of the full-size keep mask, shape, small valid mask)

    def reset(self) -> None:
        self._prev = None

    def small(self, frame: np.ndarray, keep: np.ndarray | None = None):
        """``frame`` (H, W, 3 BGR/RGB or H, W gray, uint8) → (uint8 gray (h, width), bool valid
        mask or None): the picture the measure compares."""
        h, w = frame.shape[:2]
        sw = min(int(self.cfg.width), w)
        sh = max(1, int(round(h * sw / w)))
        g = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)
        if g.ndim == 3:
            g = cv2.cvtColor(g, cv2.COLOR_BGRA2GRAY if g.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        return g, self._valid(keep, (sh, sw))

    def _valid(self, keep, shape):
        if keep is None:
            return None
        c = self._keep_cache
        if c is None or c[0] is not keep or c[1] != shape:
            # a small pixel is analysed when most of what it averages is
            small = cv2.resize(keep, (shape[1], shape[0]), interpolation=cv2.INTER_AREA) >= 128
            c = self._keep_cache = (keep, shape, small)
        return c[2]

    def measure(self, frame: np.ndarray, keep: np.ndarray | None = None) -> float | None:
        """The share (0-1) of the analysed picture that changed since the previous measured
        frame; None for the first frame (or one whose size changed)."""
        g, valid = self.small(frame, keep)
        prev, self._prev = self._prev, (g, valid, frame.shape[:2])
        if prev is None or prev[2] != frame.shape[:2]:
            return None
        return changed_share(prev[0], g, valid, self.cfg.pixel_delta)


class SourceGate:
    """One source's gate: :meth:`frame` for each retrieved frame (its index and the picture the
    backbone would see), :meth:`still` for a window's sampled frame indices. Values are kept
    until :meth:`forget_before` (the oldest frame an open window still needs): bounded by the
    open windows, like the features."""

    def __init__(self, cfg: MotionConfig = MotionConfig()):
        self.cfg = cfg
        self.meter = MotionMeter(cfg)
        self.values: dict = {}

    def frame(self, index: int, picture: np.ndarray, keep: np.ndarray | None = None) -> float | None:
        v = self.values[int(index)] = self.meter.measure(picture, keep)
        return v

    def still(self, indices) -> bool:
        return window_still([self.values.get(int(i)) for i in indices], self.cfg)

    def forget_before(self, index: int) -> None:
        for k in [k for k in self.values if k < index]:
            del self.values[k]

    def reset(self) -> None:
        """A new connection: its frames are numbered anew and have no predecessor."""
        self.meter.reset()
        self.values.clear()


def changed_share(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None, delta: float) -> float:
    """Share of ``valid`` pixels of gray uint8 ``b`` that differ from ``a`` by more than
    ``delta`` gray levels once ``b``'s brightness and contrast are matched to ``a``'s (a global
    gain and offset: equal mean and spread over the pixels clipped in neither frame)."""
    if valid is not None:
        n = int(np.count_nonzero(valid))
        if n == 0:
            return 0.0
        av, bv = a[valid].astype(np.float32), b[valid].astype(np.float32)
    else:
        av, bv = a.ravel().astype(np.float32), b.ravel().astype(np.float32)
        n = av.size
    # a pixel clipped in either frame (at an end of the gray scale) lost its detail there: a
    # brightness jump that saturates a bright wall is not motion
    ok = (av > CLIP_LOW) & (av < CLIP_HIGH) & (bv > CLIP_LOW) & (bv < CLIP_HIGH)
    if np.count_nonzero(ok) < max(16, n // 10):
        return 0.0 if np.array_equal(av, bv) else 1.0   # all but black/white: nothing to fit
    am, bm = av[ok], bv[ok]
    sa, sb = float(am.std()), float(bm.std())
    gain = min(MAX_GAIN, max(1.0 / MAX_GAIN, sb / sa)) if sa > 1.0 and sb > 1.0 else 1.0
    mapped = (bm - float(bm.mean())) / gain + float(am.mean())   # b in a's brightness
    return float(np.count_nonzero(np.abs(mapped - am) > delta)) / n


def window_still(values, cfg: MotionConfig) -> bool:
    """Whether a window whose sampled frames measured ``values`` (:meth:`MotionMeter.measure`,
    None = not measured / no predecessor) is still: the gate on and every value below
    ``min_area``."""
    if not cfg.on:
        return False
    vals = list(values)
    return bool(vals) and all(v is not None and v < cfg.min_area for v in vals)
