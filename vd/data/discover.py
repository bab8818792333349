"""Finding videos under a folder and reading their labels and splits from the folder names.

Label rules (case-insensitive, the nearest folder wins): ``Fight``/``Violence``/``violent`` → 1,
``NonFight``/``NonViolence``/``non_violent``/``nonviolent`` → 0, anything else → -1 (unknown).
A ``train``/``val``/``test`` folder sets the split. So RWF-2000 (``train/Fight/x.avi``) and Real
Life Violence Situations (``Violence/V_1.mp4``) work unchanged. ``--labels file.csv``
(``path,label`` rows, path relative to the input root) overrides folder labels.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vd.errors import UserError

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv",
    ".h264", ".264", ".ts", ".3gp",
})
_VIOLENT = {"fight", "fights", "violence", "violent"}
_NONVIOLENT = {"nonfight", "nonfights", "nonviolence", "nonviolent", "noviolence", "noviolent"}
_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
           "validation": "val", "test": "test", "testing": "test"}
_LABEL_WORDS = {"1": 1, "0": 0, "-1": -1, "violent": 1, "violence": 1, "fight": 1,
                "nonviolent": 0, "nonviolence": 0, "nonfight": 0, "unknown": -1, "": -1}


@dataclass(frozen=True)
class Clip:
    """A video file to process. ``video`` is its path relative to the input root (posix, unique)."""

    path: Path
    video: str
    label: int
    split: str


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def label_from_parts(parts) -> int:
    """Label from folder names, nearest first: 1 violent, 0 non-violent, -1 unknown."""
    for part in reversed(list(parts)):
        n = _norm(part)
        if n in _VIOLENT:
            return 1
        if n in _NONVIOLENT:
            return 0
    return -1


def split_from_parts(parts) -> str:
    """``train``/``val``/``test`` from the nearest folder that names one, else ``""``."""
    for part in reversed(list(parts)):
        s = _SPLITS.get(part.lower())
        if s:
            return s
    return ""


def parse_label(text: str) -> int:
    key = _norm(text) if not text.strip().lstrip("-").isdigit() else text.strip()
    if key not in _LABEL_WORDS:
        raise UserError(f"unknown label {text!r} (use 1/violent, 0/nonviolent or -1/unknown)")
    return _LABEL_WORDS[key]


LABELS_MAX_BYTES = 64 << 20   # a labels file larger than this is refused (millions of rows fit)
LABELS_MAX_LINE = 4096        # bytes per row: a path and a label


def read_labels_csv(path) -> dict[str, int]:
    """``path,label`` rows (a header row is allowed) → {relative posix path: label}.

    The file must be UTF-8 text (a BOM is allowed) of at most ``LABELS_MAX_BYTES``, rows of at
    most ``LABELS_MAX_LINE`` bytes, without NUL bytes, and every path must stay inside the
    input folder (relative, no ``..`` above it). Anything else is one line naming the file and
    the line (:class:`UserError`, exit 2).
    """
    path = Path(path)
    lines = _labels_lines(path, _read_bounded(path))
    out = {}
    for n, row in _csv_rows(path, lines):
        if not row or row[0].startswith("#"):
            continue
        if len(row) < 2:
            raise UserError(f"{path}:{n}: expected 'path,label'")
        if n == 1 and row[0].strip().lower() in ("path", "video", "file"):
            continue
        try:
            out[_inside_root(row[0].strip())] = parse_label(row[1])
        except UserError as e:
            raise UserError(f"{path}:{n}: {e.message}") from None
    return out


def _read_bounded(path: Path) -> bytes:
    """The file's bytes: a plain file (never a FIFO or device, never waited on), size capped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UserError(f"labels file not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read labels file {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"labels file {path} is not a plain file")
        data = fh.read(LABELS_MAX_BYTES + 1)
    if len(data) > LABELS_MAX_BYTES:
        raise UserError(f"labels file {path} is larger than {LABELS_MAX_BYTES >> 20} MiB")
    return data


def _labels_lines(path: Path, data: bytes) -> list[str]:
    """Lines of text, each checked: no NUL byte, not too long, valid UTF-8."""
    out = []
    for n, raw in enumerate(data.splitlines(keepends=True), 1):
        if b"\0" in raw:
            raise UserError(f"{path}:{n}: a NUL byte; a labels file is 'path,label' text")
        if len(raw) > LABELS_MAX_LINE:
            raise UserError(f"{path}:{n}: line longer than {LABELS_MAX_LINE} bytes")
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise UserError(f"{path}:{n}: not UTF-8 text (byte {raw[e.start]:#04x} at column "
                            f"{e.start + 1})") from None
    return out


def _csv_rows(path: Path, lines: list[str]):
    """(line number, row) per CSV record; a malformed record is one line naming it."""
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise UserError(f"{path}:{reader.line_num}: not CSV ({e})") from None
        yield reader.line_num, row


def _inside_root(text: str) -> str:
    """A labels path as the store names clips: relative, posix, never above the input folder."""
    p = PurePosixPath(text)
    parts = [x for x in p.parts if x not in ("", ".")]
    if p.is_absolute() or ".." in parts or not parts:
        raise UserError(f"path {text!r} is not inside the input folder (give it relative to "
                        f"the folder, without '..')")
    return "/".join(parts)


def _walk(root: Path):
    """Files under ``root`` in sorted order, following folder links but never looping."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def discover(input_path, labels_csv=None) -> list[Clip]:
    """All videos under ``input_path`` (a folder, or one file) with labels and splits.

    Raises :class:`UserError` when the path does not exist or holds no video.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"input not found: {input_path}")
    if input_path.is_file():
        root, files = input_path.parent, [input_path]
    else:
        root = input_path
        files = [p for p in _walk(root) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
    if not files:
        exts = ", ".join(sorted(VIDEO_EXTENSIONS))
        raise UserError(f"no video files under {input_path} (looked for {exts})")
    overrides = read_labels_csv(labels_csv) if labels_csv else {}
    clips = []
    for p in files:
        rel = p.relative_to(root)
        video = rel.as_posix()
        parents = rel.parts[:-1]
        label = overrides.get(video, label_from_parts(parents))
        clips.append(Clip(path=p, video=video, label=label, split=split_from_parts(parents)))
    clips.sort(key=lambda c: c.video)  # one order everywhere: stores, shards of work, merges
    return clips


def parse_shard(spec: str | None, environ=None) -> tuple[int, int] | None:
    """``--shard`` → (index, count), or None for all clips.

    ``i/n`` takes part ``i`` of ``n`` (0-based). ``auto`` reads a SLURM array
    (``SLURM_ARRAY_TASK_ID`` with ``SLURM_ARRAY_TASK_COUNT``) or a Kubernetes Indexed Job
    (``JOB_COMPLETION_INDEX`` with ``VD_SHARD_COUNT``); ``auto/n`` takes the count from the
    option and the index from either variable.
    """
    if not spec:
        return None
    env = os.environ if environ is None else environ
    head, _, tail = spec.partition("/")
    try:
        if head == "auto":
            index = env.get("SLURM_ARRAY_TASK_ID", env.get("JOB_COMPLETION_INDEX"))
            count = tail or env.get("SLURM_ARRAY_TASK_COUNT", env.get("VD_SHARD_COUNT"))
            if index is None or not count:
                raise UserError("--shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, "
                                "or JOB_COMPLETION_INDEX and VD_SHARD_COUNT (or --shard auto/N)")
            i, n = int(index), int(count)
        else:
            i, n = int(head), int(tail)
    except ValueError:
        raise UserError(f"--shard must be i/n (e.g. 0/4) or auto, not {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def shard_of(video: str, count: int) -> int:
    """Which of ``count`` parts a clip belongs to: a hash of its relative path alone, so adding
    clips never moves the others."""
    return int.from_bytes(hashlib.sha1(video.encode("utf-8")).digest()[:8], "big") % count


def select_shard(clips: list[Clip], shard: tuple[int, int] | None) -> list[Clip]:
    if shard is None:
        return clips
    i, n = shard
    return [c for c in clips if shard_of(c.video, n) == i]
