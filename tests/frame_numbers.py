"""Frame numbers in the pixels: clips whose every frame says which frame it is (test helpers).

Every frame carries its own frame number (pytorchvideo's trick) as a grid of big black/white
cells that survive lossy codecs, resizing, colour-order swaps, grey conversion and 90-degree
rotations, so a test can read the number back out of any decoded frame -- after H.264, VP9,
MJPEG, rotation metadata, seeking, sampling -- and assert exactly which frame the code under
test delivered. Only tests use this (``from frame_numbers import read_frame_number``); the
clips are written with :class:`vd.synthetic.ClipWriter`, losslessly (FFV1) for ``.avi``/``.mkv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vd.synthetic import ClipWriter

# The whole frame is a GRID_ROWS x GRID_COLS grid of cells. Corner cells are guards that fix
# the orientation: top-left white, bottom-left and bottom-right black, top-right pure red
# (BGR (0, 0, 255): dark in grey, and it tells BGR from RGB). The other 20 cells carry 19 bits
# of frame number (LSB first, row-major) and one even-parity bit. Each cell is read from the
# mean of its central half, thresholded at mid-grey; at 160x120 a cell is 26x30 pixels.
GRID_ROWS, GRID_COLS = 4, 6
_CORNERS = ((0, 0), (0, GRID_COLS - 1), (GRID_ROWS - 1, 0), (GRID_ROWS - 1, GRID_COLS - 1))
_DATA_CELLS = [(r, c) for r in range(GRID_ROWS) for c in range(GRID_COLS) if (r, c) not in _CORNERS]
_PAYLOAD_BITS = len(_DATA_CELLS) - 1  # last data cell is the parity bit
MAX_FRAME_NUMBER = 2**_PAYLOAD_BITS - 1


def _cell_bounds(shape: tuple[int, int], r: int, c: int) -> tuple[int, int, int, int]:
    h, w = shape
    return (r * h // GRID_ROWS, (r + 1) * h // GRID_ROWS, c * w // GRID_COLS, (c + 1) * w // GRID_COLS)


def numbered_frame(number: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """The BGR uint8 frame (H, W, 3) that carries ``number`` (0..MAX_FRAME_NUMBER); size is (W, H)."""
    if not 0 <= number <= MAX_FRAME_NUMBER:
        raise ValueError(f"frame number {number} outside 0..{MAX_FRAME_NUMBER}")
    w, h = size
    if w < GRID_COLS * 4 or h < GRID_ROWS * 4:
        raise ValueError(f"frame size {size} too small for a {GRID_COLS}x{GRID_ROWS} code")
    frame = np.zeros((h, w, 3), np.uint8)
    bits = [(number >> i) & 1 for i in range(_PAYLOAD_BITS)]
    bits.append(sum(bits) & 1)  # even parity over all data cells
    for (r, c), bit in zip(_DATA_CELLS, bits):
        if bit:
            y0, y1, x0, x1 = _cell_bounds((h, w), r, c)
            frame[y0:y1, x0:x1] = 255
    y0, y1, x0, x1 = _cell_bounds((h, w), 0, 0)
    frame[y0:y1, x0:x1] = 255
    y0, y1, x0, x1 = _cell_bounds((h, w), 0, GRID_COLS - 1)
    frame[y0:y1, x0:x1] = (0, 0, 255)
    return frame


def _cell_means(img: np.ndarray) -> np.ndarray:
    """(GRID_ROWS, GRID_COLS, C) mean of the central half of each cell."""
    h, w = img.shape[:2]
    out = np.empty((GRID_ROWS, GRID_COLS, img.shape[2]), np.float64)
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            y0, y1, x0, x1 = _cell_bounds((h, w), r, c)
            dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
            out[r, c] = img[y0 + dy : y1 - dy, x0 + dx : x1 - dx].reshape(-1, img.shape[2]).mean(axis=0)
    return out


def _decode_grid(img: np.ndarray) -> int | None:
    means = _cell_means(img)
    grey = means.mean(axis=2)
    on = grey > 127.5
    if not on[0, 0] or on[0, GRID_COLS - 1] or on[GRID_ROWS - 1, 0] or on[GRID_ROWS - 1, GRID_COLS - 1]:
        return None
    bits = [int(on[r, c]) for r, c in _DATA_CELLS]
    if sum(bits) & 1:
        return None
    return sum(b << i for i, b in enumerate(bits[:_PAYLOAD_BITS]))


def read_frame_number(frame: np.ndarray) -> int:
    """The number written by :func:`numbered_frame` into ``frame``.

    Takes uint8 (H, W) grey or (H, W, 3|4) BGR/RGB(A) pixels of any size (the code scales with
    the frame); tolerates lossy compression and 90/180/270-degree rotation (orientation is
    found from the corner guards). Raises ``ValueError`` when no valid code is found.
    """
    img = np.asarray(frame)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[0] < GRID_ROWS * 2 or img.shape[1] < GRID_COLS * 2:
        raise ValueError(f"not a numbered frame: shape {np.shape(frame)}")
    img = img[:, :, :3]
    for k in range(4):
        n = _decode_grid(np.rot90(img, k) if k else img)
        if n is not None:
            return n
    raise ValueError("not a numbered frame: no valid frame-number code in any orientation")


def frame_rotation(frame: np.ndarray) -> int:
    """Degrees (0, 90, 180, 270) that ``np.rot90(frame, deg // 90)`` needs to make a numbered
    frame upright again (counter-clockwise); e.g. 90 for a frame shown rotated 90° clockwise."""
    img = np.asarray(frame)
    if img.ndim == 2:
        img = img[:, :, None]
    for k in range(4):
        if _decode_grid((np.rot90(img, k) if k else img)[:, :, :3]) is not None:
            return 90 * k
    raise ValueError("not a numbered frame")


def frame_channel_order(frame: np.ndarray) -> str:
    """``"bgr"`` or ``"rgb"`` for a colour numbered frame (from the red guard cell), else ``"grey"``."""
    img = np.asarray(frame)
    if img.ndim == 2 or img.shape[2] == 1:
        return "grey"
    for k in range(4):
        rot = np.rot90(img, k) if k else img
        if _decode_grid(rot[:, :, :3]) is not None:
            b, g, r = _cell_means(rot[:, :, :3])[0, GRID_COLS - 1]
            if max(b, r) - min(b, r) < 64:
                return "grey"
            return "bgr" if r > b else "rgb"
    raise ValueError("not a numbered frame")


def write_numbered_clip(
    path: str | os.PathLike,
    n_frames: int,
    fps: float = 25.0,
    size: tuple[int, int] = (160, 120),
    fourcc: str | None = None,
    start: int = 0,
) -> Path:
    """Write ``n_frames`` frames numbered ``start, start+1, ...`` (see :func:`read_frame_number`).

    ``size`` is (width, height). ``fourcc`` defaults by extension: ``.avi``/``.mkv`` -> FFV1
    (lossless), ``.mp4`` -> mp4v (lossy; the numbers still read back exactly). The file is
    written under a temporary name and renamed into place. Returns the path.
    """
    path = Path(path)
    if n_frames < 1:
        raise ValueError("n_frames must be >= 1")
    with ClipWriter(path, fps, size, fourcc) as w:
        for i in range(start, start + n_frames):
            w.write(numbered_frame(i, size))
    return path


def read_all(path):
    """Every frame of ``path`` read sequentially (BGR), the header frame count and fps."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return np.stack(frames), header, fps
