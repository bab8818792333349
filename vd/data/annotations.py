"""Annotated violent intervals of untrimmed recordings, in three formats read as they are.

- **CSV** (vd's own): rows ``video,start_s,end_s``, one per violent interval, in seconds; the
  path is relative to the recordings' folder; a header row and ``#`` comments are allowed; a
  row ``video,,`` names a recording with no violence (a recording named by no row is all calm
  anyway).
- **UCF-Crime** (``Temporal_Anomaly_Annotation*.txt``): whitespace-separated
  ``name class start1 end1 start2 end2`` in frames, ``-1`` where there is no event.
- **XD-Violence** (``annotations.txt``): ``name start1 end1 [start2 end2 …]`` in frames; the
  name usually has no file extension.

Frame numbers become seconds with the recording's frame rate when it is opened
(:func:`to_seconds`): an interval of frames ``a..b`` (inclusive) covers ``[a/fps, (b+1)/fps)``.
Names are matched to the recordings found on disk by relative path, then file name, then file
name without extension; a name that matches nothing or more than one recording is an error.
Every bad row is one line naming the file and line (a :class:`~vd.errors.UserError`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vd.errors import UserError

MAX_FILE_BYTES = 64 * 1024 * 1024   # a UCF-Crime or XD-Violence list is a few hundred KB
MAX_LINE_CHARS = 4096
MAX_INTERVALS = 1000                # per recording
FORMATS = ("auto", "csv", "ucf-crime", "xd-violence")


@dataclass(frozen=True)
class Interval:
    """One annotated violent interval: ``[start, end)`` in ``unit`` ("s" or "frame")."""

    start: float
    end: float
    unit: str = "s"


@dataclass(frozen=True)
class Annotations:
    """Intervals per recording name as written in the file, and the format it was read as."""

    path: Path
    format: str
    intervals: dict[str, tuple[Interval, ...]]


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"annotations file not found (or not a regular file): {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"{path}: annotations file larger than {MAX_FILE_BYTES // 2**20} MiB")
    raw = path.read_bytes()
    if b"\0" in raw:
        raise UserError(f"{path}: not a text file (NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text") from None


def _lines(path: Path, text: str):
    """(line number, stripped line) for every line that is not blank or a ``#`` comment."""
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE_CHARS:
            raise UserError(f"{path}:{n}: line longer than {MAX_LINE_CHARS} characters")
        s = line.strip()
        if s and not s.startswith("#"):
            yield n, s


def _number(path: Path, n: int, text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"{path}:{n}: {what} must be a number, not {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise UserError(f"{path}:{n}: {what} must be a finite number ≥ 0, not {text!r}")
    return v


def _add(out: dict, path: Path, n: int, name: str, interval: Interval | None) -> None:
    if not name:
        raise UserError(f"{path}:{n}: the recording's name is empty")
    got = out.setdefault(name, [])
    if interval is None:
        return
    if interval.end <= interval.start:
        raise UserError(f"{path}:{n}: interval ends ({interval.end:g}) before it starts "
                        f"({interval.start:g})")
    if len(got) >= MAX_INTERVALS:
        raise UserError(f"{path}:{n}: more than {MAX_INTERVALS} intervals for {name}")
    got.append(interval)


def _parse_csv(path: Path, text: str) -> dict:
    out: dict[str, list] = {}
    rows = csv.reader(io.StringIO(text))
    for n, row in enumerate(rows, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 3:
            raise UserError(f"{path}:{n}: expected 'video,start_s,end_s', got {len(row)} fields")
        name, a, b = (x.strip() for x in row)
        if n == 1 and name.lower() in ("video", "path", "file", "name"):
            continue
        if not a and not b:
            _add(out, path, n, name, None)
            continue
        _add(out, path, n, name, Interval(_number(path, n, a, "start_s"), _number(path, n, b, "end_s")))
    return out


def _frame_pairs(path: Path, n: int, tokens: list[str]) -> list[Interval]:
    if len(tokens) % 2:
        raise UserError(f"{path}:{n}: start and end frames come in pairs, got {len(tokens)} numbers")
    out = []
    for a, b in zip(tokens[0::2], tokens[1::2]):
        if a.strip() == "-1" and b.strip() == "-1":
            continue
        fa, fb = _number(path, n, a, "start frame"), _number(path, n, b, "end frame")
        if fb < fa:
            raise UserError(f"{path}:{n}: end frame {b} before start frame {a}")
        out.append(Interval(fa, fb + 1, unit="frame"))
    return out


def _parse_frames(path: Path, text: str, with_class: bool) -> dict:
    out: dict[str, list] = {}
    for n, line in _lines(path, text):
        tokens = line.split()
        head = 2 if with_class else 1
        if len(tokens) < head:
            raise UserError(f"{path}:{n}: expected a name{' and a class' if with_class else ''}")
        name = tokens[0]
        _add(out, path, n, name, None)
        for iv in _frame_pairs(path, n, tokens[head:]):
            _add(out, path, n, name, iv)
    return out


def _sniff(path: Path, text: str) -> str:
    for _, line in _lines(path, text):
        if "," in line:
            return "csv"
        tokens = line.split()
        if len(tokens) >= 2 and not tokens[1].lstrip("-").isdigit():
            return "ucf-crime"
        return "xd-violence"
    return "csv"


def read_annotations(path, fmt: str = "auto") -> Annotations:
    """Read an annotations file (``fmt``: auto, csv, ucf-crime, xd-violence)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise UserError(f"annotations format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    text = _read_text(path)
    if fmt == "auto":
        fmt = _sniff(path, text)
    if fmt == "csv":
        parsed = _parse_csv(path, text)
    else:
        parsed = _parse_frames(path, text, with_class=(fmt == "ucf-crime"))
    return Annotations(path=path, format=fmt,
                       intervals={k: tuple(sorted(v, key=lambda i: i.start)) for k, v in parsed.items()})


class NameIndex:
    """Finds a recording on disk from the name a file gives it: the relative path, else the
    file name, else the file name without its extension."""

    def __init__(self, videos: list[str]):
        self.paths = set(videos)
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for v in videos:
            p = PurePosixPath(v)
            self.by_name.setdefault(p.name, []).append(v)
            self.by_stem.setdefault(p.stem, []).append(v)

    def find(self, name: str, where) -> str:
        """The one recording ``name`` means; a UserError naming ``where`` otherwise."""
        key = Path(name).as_posix()
        hits = [key] if key in self.paths else self.by_name.get(key) or self.by_stem.get(key) or []
        if not hits:
            raise UserError(f"{where}: {name!r} matches no recording under the folder evaluated")
        if len(hits) > 1:
            raise UserError(f"{where}: {name!r} matches {len(hits)} recordings "
                            f"({', '.join(hits[:3])}): use paths relative to the folder")
        return hits[0]


def match_recordings(ann: Annotations, videos: list[str]) -> dict[str, tuple[Interval, ...]]:
    """Intervals per recording found on disk (``videos``: posix paths relative to the root).

    Every recording gets an entry (no annotation: ``()``, all calm). A name in the file that
    matches no recording, or several, is an error naming it.
    """
    index = NameIndex(videos)
    out: dict[str, tuple[Interval, ...]] = {v: () for v in videos}
    seen: set[str] = set()
    for name, intervals in ann.intervals.items():
        video = index.find(name, ann.path)
        if video in seen:
            raise UserError(f"{ann.path}: {video} is annotated twice (as {name!r} too)")
        seen.add(video)
        out[video] = intervals
    return out


def to_seconds(intervals, fps: float) -> list[tuple[float, float]]:
    """``[(start_s, end_s)]`` for one recording; frame intervals need its frame rate."""
    out = []
    for iv in intervals:
        if iv.unit == "s":
            out.append((iv.start, iv.end))
        else:
            if not fps or fps <= 0:
                raise UserError("frame-numbered annotations need the recording's frame rate, "
                                "which it does not state")
            out.append((iv.start / fps, iv.end / fps))
    return out
