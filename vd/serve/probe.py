"""What an uploaded file's container header says, read without decoding a frame.

A decoder allocates the frame size the file declares: a 752 KB H.264 clip that declares
16000×16000 costs gigabytes once decoded, and OpenCV's FFmpeg backend decodes a frame while
it opens some files. So the upload endpoint reads the size, frame rate and length from the
container itself first (:func:`read_header`, plain byte parsing) and refuses what is too large
before any decoder sees the file.

Known containers: ISO BMFF (MP4, MOV, M4V: ``moov`` → ``trak`` → ``tkhd``/``mdhd``/``stsd``
/``stts``), AVI (``avih``, ``strh``, ``strf``) and Matroska/WebM (EBML: ``Info``,
``Tracks``). Anything else is None: the server does not accept it as an upload. Where the
header has several claims of the size (a track header and a sample description), the
largest counts. A header that understates what the codec then decodes is caught right after
the file is opened (OpenCV's codec parameters, before a frame is converted), see
:mod:`vd.serve.scoring`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

MAX_HEADER_BYTES = 16 * 2 ** 20   # a moov (or Matroska header) larger than this is not read


@dataclass(frozen=True)
class Header:
    """``width``, ``height``: the largest frame size any part of the header declares;
    ``fps`` frames per second, ``frames`` and ``duration_s`` (0 when the header does not say)."""

    container: str
    width: int
    height: int
    fps: float = 0.0
    frames: int = 0
    duration_s: float = 0.0

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(path) -> Header | None:
    """The video header of ``path``, or None when it is not a container this module knows
    (or declares no video track)."""
    with open(Path(path), "rb") as fh:
        head = fh.read(16)
        try:
            if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                return _avi(fh)
            if head[:4] == b"\x1a\x45\xdf\xa3":
                return _matroska(fh)
            if head[4:8] in _BMFF_TOP:
                return _bmff(fh)
        except (struct.error, ValueError, IndexError, OverflowError):
            return None
    return None


# ------------------------------------------------------------------------------ ISO BMFF

_BMFF_TOP = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot", b"uuid"}


def _boxes(buf: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, payload end) of the boxes in ``buf[start:end]``."""
    end = len(buf) if end is None else end
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, i)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", buf, i + 8)[0], 16
        elif size == 0:
            size = end - i
        if size < head or i + size > end:
            return
        yield kind, i + head, i + size
        i += size


def _bmff(fh) -> Header | None:
    fh.seek(0, 2)
    total = fh.tell()
    pos = 0
    while pos + 8 <= total:  # top level: find moov (it may come after mdat)
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", fh.read(8))[0], 16
        elif size == 0:
            size = total - pos
        if size < head:
            return None
        if kind == b"moov":
            if size > MAX_HEADER_BYTES:
                return None
            return _moov(fh.read(size - head))
        pos += size
    return None


def _moov(buf: bytes) -> Header | None:
    best = None
    for kind, a, b in _boxes(buf):
        if kind == b"trak":
            t = _trak(buf, a, b)
            if t is not None and (best is None or t.pixels > best.pixels):
                best = t
    return best


def _trak(buf: bytes, a: int, b: int) -> Header | None:
    w = h = frames = 0
    timescale = duration = 0
    video = False
    stack = [(a, b)]
    while stack:
        s, e = stack.pop()
        for kind, p, q in _boxes(buf, s, e):
            if kind in (b"mdia", b"minf", b"stbl"):
                stack.append((p, q))
            elif kind == b"tkhd":
                off = p + (92 if buf[p] == 1 else 80)   # width, height: 16.16 fixed point
                tw, th = struct.unpack_from(">II", buf, off)
                w, h = max(w, tw >> 16), max(h, th >> 16)
            elif kind == b"hdlr":
                video = buf[p + 8:p + 12] == b"vide"
            elif kind == b"mdhd":
                if buf[p] == 1:
                    timescale, duration = struct.unpack_from(">IQ", buf, p + 20)
                else:
                    timescale, duration = struct.unpack_from(">II", buf, p + 12)
            elif kind == b"stsd":
                for _, sp, _ in _boxes(buf, p + 8, q):  # visual sample entries
                    sw, sh = struct.unpack_from(">HH", buf, sp + 24)
                    w, h = max(w, sw), max(h, sh)
            elif kind == b"stts":
                n = struct.unpack_from(">I", buf, p + 4)[0]
                frames = sum(struct.unpack_from(">I", buf, p + 8 + 8 * i)[0] for i in range(n))
    if not video:
        return None
    dur = duration / timescale if timescale else 0.0
    fps = frames / dur if dur > 0 and frames else 0.0
    return Header("mp4", w, h, fps, frames, dur)


# ------------------------------------------------------------------------------ AVI


def _avi(fh) -> Header | None:
    fh.seek(12)
    buf = fh.read(MAX_HEADER_BYTES)
    w = h = frames = 0
    fps = 0.0
    us_per_frame = 0
    stream_video = False
    i = 0
    while i + 8 <= len(buf):
        kind, size = struct.unpack_from("<4sI", buf, i)
        if kind == b"LIST":
            sub = buf[i + 8:i + 12]
            if sub == b"movi":
                break
            i += 12  # descend into hdrl / strl
            continue
        p = i + 8
        if kind == b"avih":
            us_per_frame, = struct.unpack_from("<I", buf, p)
            total, = struct.unpack_from("<I", buf, p + 16)
            aw, ah = struct.unpack_from("<II", buf, p + 32)
            w, h, frames = max(w, aw), max(h, ah), max(frames, total)
        elif kind == b"strh":
            stream_video = buf[p:p + 4] == b"vids"
            if stream_video:
                scale, rate, _, length = struct.unpack_from("<IIII", buf, p + 20)
                if scale and rate:
                    fps = rate / scale
                frames = max(frames, length)
        elif kind == b"strf" and stream_video:
            bw, bh = struct.unpack_from("<ii", buf, p + 4)
            w, h = max(w, abs(bw)), max(h, abs(bh))
        i = p + size + (size & 1)
    if not (w and h):
        return None
    if not fps and us_per_frame:
        fps = 1e6 / us_per_frame
    return Header("avi", w, h, fps, frames, frames / fps if fps else 0.0)


# ------------------------------------------------------------------------------ Matroska

_SEGMENT, _INFO, _TRACKS, _CLUSTER = 0x18538067, 0x1549A966, 0x1654AE6B, 0x1F43B675
_TRACK_ENTRY, _TRACK_TYPE, _VIDEO, _DEFAULT_DURATION = 0xAE, 0x83, 0xE0, 0x23E383
_PIXEL_W, _PIXEL_H, _SCALE, _DURATION = 0xB0, 0xBA, 0x2AD7B1, 0x4489


def _vint(buf: bytes, i: int, keep_marker: bool) -> tuple[int, int]:
    first = buf[i]
    n = 9 - first.bit_length()
    if n > 8:
        raise ValueError("bad EBML number")
    v = first if keep_marker else first & (0xFF >> n)
    for k in range(1, n):
        v = (v << 8) | buf[i + k]
    if not keep_marker and v == (1 << (7 * n)) - 1:
        v = -1  # unknown size
    return v, i + n


def _elements(buf: bytes, a: int, b: int):
    i = a
    while i < b:
        ident, j = _vint(buf, i, True)
        size, k = _vint(buf, j, False)
        end = b if size < 0 else k + size
        yield ident, k, min(end, b)
        i = end


def _uint(buf: bytes, a: int, b: int) -> int:
    return int.from_bytes(buf[a:b], "big")


def _matroska(fh) -> Header | None:
    fh.seek(0)
    buf = fh.read(MAX_HEADER_BYTES)
    scale, duration, best = 1_000_000, 0.0, None
    for ident, a, b in _elements(buf, 0, len(buf)):
        if ident != _SEGMENT:
            continue
        for sid, p, q in _elements(buf, a, b):
            if sid == _CLUSTER:
                break
            if sid == _INFO:
                for iid, x, y in _elements(buf, p, q):
                    if iid == _SCALE:
                        scale = _uint(buf, x, y)
                    elif iid == _DURATION:
                        duration = struct.unpack(">f" if y - x == 4 else ">d", buf[x:y])[0]
            elif sid == _TRACKS:
                for tid, x, y in _elements(buf, p, q):
                    t = _mkv_track(buf, x, y) if tid == _TRACK_ENTRY else None
                    if t is not None and (best is None or t[0] * t[1] > best[0] * best[1]):
                        best = t
        break
    if best is None:
        return None
    seconds = duration * scale / 1e9 if math.isfinite(duration) and duration > 0 else 0.0
    fps = 1e9 / best[2] if best[2] else 0.0
    return Header("matroska", best[0], best[1], fps, int(round(seconds * fps)), seconds)


def _mkv_track(buf: bytes, a: int, b: int):
    kind, w, h, frame_ns = 0, 0, 0, 0
    for ident, x, y in _elements(buf, a, b):
        if ident == _TRACK_TYPE:
            kind = _uint(buf, x, y)
        elif ident == _DEFAULT_DURATION:
            frame_ns = _uint(buf, x, y)
        elif ident == _VIDEO:
            for vid, p, q in _elements(buf, x, y):
                if vid == _PIXEL_W:
                    w = _uint(buf, p, q)
                elif vid == _PIXEL_H:
                    h = _uint(buf, p, q)
    return (w, h, frame_ns) if kind == 1 and w and h else None
