"""Finding videos under a folder and reading their labels and splits from the folder names.

Label rules (case-insensitive, the nearest folder wins): ``Fight``/``Violence``/``violent`` → 1,
``NonFight``/``NonViolence``/``non_violent``/``nonviolent`` → 0, anything else → -1 (unknown).
A ``train``/``val``/``test`` folder sets the split. So RWF-2000 (``train/Fight/x.avi``) and Real
Life Violence Situations (``Violence/V_1.mp4``) work unchanged. ``--labels file.csv``
(``path,label`` rows, path relative to the input root) overrides folder labels.
"""

from __future__ import annotations

import csv
import os
import re
import hashlib
import os as _os
from dataclasses import dataclass
from pathlib import Path

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


def read_labels_csv(path) -> dict[str, int]:
    """``path,label`` rows (a header row is allowed) → {relative posix path: label}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file not found: {path}")
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise UserError(f"{path}:{n}: expected 'path,label'")
            if n == 1 and row[0].strip().lower() in ("path", "video", "file"):
                continue
            try:
                out[Path(row[0].strip()).as_posix()] = parse_label(row[1])
            except UserError as e:
                raise UserError(f"{path}:{n}: {e.message}") from None
    return out


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
    env = _os.environ if environ is None else environ
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
