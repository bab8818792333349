"""The feature store, schema 1 (see DESIGN.md): sharded HDF5 files plus one index file.

Layout for ``vd extract videos/ features.h5``::

    features.h5            index: per-row metadata copied, ``features`` a virtual dataset
    features.shards/       shard-000000.h5, shard-000001.h5, ... each complete on its own

A shard is written under a temporary name and renamed only after it is closed and synced,
so a kill loses at most the shard in progress. The index is rewritten (also via rename)
after every committed shard. Readers accept any HDF5 file with the schema's datasets and
attributes, virtual or plain; a virtual store whose shard is missing or damaged is an error
naming the file, never rows of fill values.

Per row: ``features`` float16 (N, T, D), ``label`` int8, ``video`` str, ``variant`` int8,
``split`` str, ``frame_index`` int32 (N, T), ``n_frames`` int32, ``fps`` float32.
Failures: group ``failures`` with str datasets ``video``, ``stage``, ``message``.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from vd import faults
from vd.errors import UserError

SCHEMA = 1
ROW_DATASETS = ("label", "video", "variant", "split", "frame_index", "n_frames", "fps")
STR = h5py.string_dtype("utf-8")
_DTYPES = {
    "features": np.float16,
    "label": np.int8,
    "variant": np.int8,
    "frame_index": np.int32,
    "n_frames": np.int32,
    "fps": np.float32,
}
# Attributes that define what a feature row means; a model trained on one store can only score
# rows computed with the same values.
EXTRACTOR_KEYS = ("backbone", "layer", "weights", "frames", "image_size", "preprocess")
_SHARD_RE = re.compile(r"^shard-(\d{6})\.h5$")


@dataclass
class ClipRows:
    """Everything the extractor produced for one clip: one row per variant.

    ``features`` (V, T, D) float16; ``variant`` (V,); ``frame_index`` (V, T) decoded frame
    numbers; ``n_frames`` frames that really decoded; ``fps`` from the container.
    """

    video: str
    label: int
    split: str
    features: np.ndarray
    variant: np.ndarray
    frame_index: np.ndarray
    n_frames: int
    fps: float


@dataclass
class Failure:
    """A clip that produced no rows, with the stage that failed and a one-line reason."""

    video: str
    stage: str
    message: str


def shard_dir(index_path: Path) -> Path:
    """The folder of shards that belongs to an index file (``x.h5`` → ``x.shards/``)."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.stem + ".shards")


def _str_list(ds) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in ds[()]]


def _attrs_dict(attrs) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_full(e: BaseException) -> bool:
    return getattr(e, "errno", None) == errno.ENOSPC or "errno = 28" in str(e) or "No space left" in str(e)


def _atomic_h5(final: Path, fill, kind: str = "file", need_bytes: int = 0) -> None:
    """Write an HDF5 file via ``fill(h5file)`` under a temporary name, sync, then rename.

    ``need_bytes`` is checked against the free space first. An OS error (disk full,
    permissions) becomes a one-line :class:`UserError`; the temporary file is removed and
    whatever was committed before stays valid.
    """
    tmp = final.with_name("." + final.name + ".tmp")
    if need_bytes and shutil.disk_usage(final.parent).free < need_bytes:
        raise UserError(f"cannot write {final}: no space left on device (needs ~{need_bytes >> 10} KiB); "
                        f"files committed before are intact, free space and rerun the same command")
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda *_: None  # h5py reports a failed close again from __dealloc__
    try:
        with h5py.File(tmp, "w") as f:
            fill(f)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        faults.point(f"{kind}-rename")
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except (OSError, RuntimeError) as e:
        gc.collect()
        tmp.unlink(missing_ok=True)
        reason = "no space left on device" if _disk_full(e) else (getattr(e, "strerror", None) or _first_line(e))
        raise UserError(f"cannot write {final}: {reason}; files committed before are intact, "
                        f"rerun the same command to resume") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        sys.unraisablehook = previous_hook


def _write_rows(f: h5py.File, clips: list[ClipRows], failures: list[Failure], frames: int, dim: int) -> None:
    n = sum(len(c.variant) for c in clips)
    feats = f.create_dataset("features", (n, frames, dim), dtype=np.float16,
                             chunks=(1, frames, dim) if n else None)
    cols = {k: [] for k in ROW_DATASETS}
    row = 0
    for c in clips:
        v = len(c.variant)
        feats[row:row + v] = c.features.astype(np.float16, copy=False)
        row += v
        cols["label"] += [c.label] * v
        cols["video"] += [c.video] * v
        cols["variant"] += list(c.variant)
        cols["split"] += [c.split] * v
        cols["frame_index"] += list(np.asarray(c.frame_index).reshape(v, frames))
        cols["n_frames"] += [c.n_frames] * v
        cols["fps"] += [c.fps] * v
    _write_columns(f, cols, n, frames)
    _write_failures(f, failures)


def _write_columns(f: h5py.File, cols: dict, n: int, frames: int) -> None:
    for k in ROW_DATASETS:
        if k in ("video", "split"):
            f.create_dataset(k, data=np.array(cols[k], dtype=object), dtype=STR) if n else \
                f.create_dataset(k, (0,), dtype=STR)
        elif k == "frame_index":
            data = np.asarray(cols[k], dtype=np.int32).reshape(n, frames)
            f.create_dataset(k, data=data)
        else:
            f.create_dataset(k, data=np.asarray(cols[k], dtype=_DTYPES[k]).reshape(n))


def _write_failures(f: h5py.File, failures: list[Failure]) -> None:
    g = f.create_group("failures")
    for name in ("video", "stage", "message"):
        g.create_dataset(name, data=np.array([getattr(x, name) for x in failures], dtype=object),
                         dtype=STR)


# --------------------------------------------------------------------------- reading


class Store:
    """A read-only view of a feature store (an index with shards, or one plain HDF5 file).

    Metadata columns are loaded into numpy arrays on open; ``features`` stays on disk and is
    read with :meth:`read_features`. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"feature store not found: {self.path}")
        if self.path.is_dir():
            raise UserError(f"feature store is a directory, not an HDF5 file: {self.path}")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise UserError(f"cannot read feature store {self.path}: not a readable HDF5 file "
                            f"({_first_line(e)})") from None
        try:
            self._load()
        except BaseException:
            self._f.close()
            raise

    def _load(self) -> None:
        f = self._f
        self.attrs = _attrs_dict(f.attrs)
        schema = self.attrs.get("vd_schema")
        if schema is None:
            raise UserError(f"{self.path} is not a vd feature store (no vd_schema attribute)")
        if int(schema) > SCHEMA:
            raise UserError(f"{self.path} has store schema {schema}, written by a newer vd "
                            f"({self.attrs.get('vd_version', '?')}); this vd "
                            f"reads schema {SCHEMA}")
        missing = [k for k in ("features",) + ROW_DATASETS if k not in f]
        if missing:
            raise UserError(f"{self.path} lacks dataset(s) {', '.join(missing)}")
        self._check_sources()
        feats = f["features"]
        self.n = int(feats.shape[0])
        self.frames, self.dim = int(feats.shape[1]), int(feats.shape[2])
        self.label = f["label"][()].astype(np.int8)
        self.video = np.array(_str_list(f["video"]), dtype=object)
        self.variant = f["variant"][()].astype(np.int8)
        self.split = np.array(_str_list(f["split"]), dtype=object)
        self.frame_index = f["frame_index"][()].astype(np.int32)
        self.n_frames = f["n_frames"][()].astype(np.int32)
        self.fps = f["fps"][()].astype(np.float32)
        for k in ROW_DATASETS:
            if len(getattr(self, k)) != self.n:
                raise UserError(f"{self.path}: dataset {k} has {len(getattr(self, k))} rows, "
                                f"features has {self.n}")
        self.failures = read_failures(f)

    def _check_sources(self) -> None:
        """A virtual dataset reads missing sources as fill values: prove every source is whole."""
        ds = self._f["features"]
        if not ds.is_virtual:
            return
        base = self.path.parent
        for vs in ds.virtual_sources():
            src = Path(vs.file_name)
            src = src if src.is_absolute() else base / src
            if not src.exists():
                raise UserError(f"{self.path}: shard missing: {src}")
            try:
                with h5py.File(src, "r") as sf:
                    rows = sf[vs.dset_name].shape[0]
                    sf[vs.dset_name][rows - 1:rows]  # the last chunk reads back
            except (OSError, KeyError, ValueError) as e:
                raise UserError(f"{self.path}: shard damaged: {src} ({_first_line(e)})") from None
            lo, hi = vs.vspace.get_select_bounds()
            want = hi[0] - lo[0] + 1  # rows this source supplies to the index
            if rows < want:
                raise UserError(f"{self.path}: shard truncated: {src} has {rows} rows, "
                                f"index expects {want}")

    @property
    def chunk_rows(self) -> int:
        """Rows per HDF5 chunk of ``features`` (1 for vd's stores; streaming reads align to it)."""
        ds = self._f["features"]
        if ds.is_virtual or not ds.chunks:  # shards are chunked by row; contiguous reads anywhere
            return 1
        return int(ds.chunks[0])

    def extractor(self) -> dict:
        """The attributes that define what a row's features mean (see ``EXTRACTOR_KEYS``)."""
        return {k: self.attrs.get(k) for k in EXTRACTOR_KEYS}

    def read_features(self, rows=None, dtype=np.float32) -> np.ndarray:
        """Features for ``rows`` (any order, repeats allowed; None = all) as (len, T, D)."""
        ds = self._f["features"]
        if rows is None:
            return ds[()].astype(dtype, copy=False)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.frames, self.dim), dtype)
        uniq, inverse = np.unique(rows, return_inverse=True)  # h5py wants increasing indices
        if uniq[0] < 0 or uniq[-1] >= self.n:
            raise IndexError(f"row out of range 0..{self.n - 1}")
        if uniq[-1] - uniq[0] + 1 == len(uniq):  # one contiguous block: a single slab read
            block = ds[int(uniq[0]):int(uniq[-1]) + 1]
        else:
            block = ds[uniq.tolist()]
        return block[inverse.reshape(-1)].astype(dtype, copy=False)

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(path) -> Store:
    """Open a feature store for reading (raises :class:`UserError` with one line if unusable)."""
    return Store(path)


def read_failures(f: h5py.File) -> list[Failure]:
    if "failures" not in f:
        return []
    g = f["failures"]
    cols = [_str_list(g[k]) for k in ("video", "stage", "message")]
    return [Failure(*row) for row in zip(*cols)]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# --------------------------------------------------------------------------- writing


def write_plain_store(path, features, label, video, *, variant=None, split=None,
                      frame_index=None, n_frames=None, fps=None, attrs=None,
                      failures=()) -> Path:
    """Write a one-file (non-sharded) store from arrays; for tests, tools and ``vd merge``.

    ``features`` (N, T, D); the other columns default to variant 0, empty split, evenly
    spaced ``frame_index``, ``n_frames`` = T and fps 30.
    """
    features = np.asarray(features)
    n, t, d = features.shape
    label = np.asarray(label)
    clips = []
    for i in range(n):
        clips.append(ClipRows(
            video=str(video[i]), label=int(label[i]),
            split="" if split is None else str(split[i]),
            features=features[i:i + 1],
            variant=np.array([0 if variant is None else variant[i]], np.int8),
            frame_index=(np.arange(t, dtype=np.int32) if frame_index is None else np.asarray(frame_index[i]))[None],
            n_frames=t if n_frames is None else int(n_frames[i]),
            fps=30.0 if fps is None else float(fps[i]),
        ))
    all_attrs = base_attrs(frames=t)
    all_attrs.update(attrs or {})
    path = Path(path)

    def fill(f):
        _write_rows(f, clips, list(failures), t, d)
        f.attrs.update(all_attrs)

    _atomic_h5(path, fill)
    return path


def base_attrs(**extra) -> dict:
    """Attributes every store carries, before the extractor adds its own."""
    from vd import LABEL_NAMES, __version__

    attrs = {
        "vd_schema": SCHEMA,
        "vd_version": __version__,
        "label_map": json.dumps({str(k): v for k, v in LABEL_NAMES.items()}),
    }
    attrs.update(extra)
    return attrs


@dataclass
class _Committed:
    path: Path
    rows: int
    videos: list[str]
    failed: list[str]


class StoreWriter:
    """Appends clips to a sharded store; resumable, locked against a second writer.

    ``attrs`` are the store's attributes (extractor settings included). Opening an existing
    store with different attributes is refused unless ``overwrite``. :meth:`done` lists the
    clips already in a committed shard (rows or failure); the caller skips them.
    """

    def __init__(self, index_path, attrs: dict, *, shard_clips: int = 64, overwrite: bool = False):
        self.index_path = Path(index_path)
        self.dir = shard_dir(self.index_path)
        self.attrs = dict(attrs)
        self.shard_clips = max(1, int(shard_clips))
        self._lock_fh = None
        self._acquire_lock()
        try:
            if overwrite:
                self._remove_existing()
            self.dir.mkdir(parents=True, exist_ok=True)
            self.shards: list[_Committed] = self._scan()
        except BaseException:
            self._release_lock()
            raise
        self._pending: list[ClipRows] = []
        self._pending_fail: list[Failure] = []

    # -- lifecycle

    def _acquire_lock(self) -> None:
        parent = self.index_path.parent
        if not parent.exists():
            raise UserError(f"output folder does not exist: {parent}")
        lock = self.index_path.with_name(self.index_path.name + ".lock")
        try:
            self._lock_fh = open(lock, "a")
        except OSError as e:
            raise UserError(f"output not writable: {lock} ({e.strerror})") from None
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise UserError(f"another vd process is writing {self.index_path} "
                            f"(lock {lock.name} is held); wait for it or choose another output") from None

    def _release_lock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def _remove_existing(self) -> None:
        if self.dir.exists():
            for p in self.dir.iterdir():
                if _SHARD_RE.match(p.name) or p.name.endswith(".tmp") or p.name.endswith(".corrupt"):
                    p.unlink()
        self.index_path.unlink(missing_ok=True)

    def _scan(self) -> list[_Committed]:
        """Committed shards, each re-opened to prove it whole; leftovers of a kill removed."""
        out = []
        for p in sorted(self.dir.iterdir()):
            if p.name.endswith(".tmp"):
                p.unlink()  # a shard or index in progress when the last run died
                continue
            if not _SHARD_RE.match(p.name):
                continue
            try:
                with h5py.File(p, "r") as f:
                    have = _attrs_dict(f.attrs)
                    self._check_compatible(have, p)
                    videos = _str_list(f["video"])
                    failed = [x.video for x in read_failures(f)]
                    rows = int(f["features"].shape[0])
            except UserError:
                raise
            except (OSError, KeyError) as e:
                bad = p.with_name(p.name + ".corrupt")
                os.replace(p, bad)
                print(f"vd: warning: {p} is damaged ({_first_line(e)}); moved to {bad.name}, "
                      f"its clips will be extracted again", flush=True)
                continue
            out.append(_Committed(p, rows, list(dict.fromkeys(videos)), failed))
        return out

    def _check_compatible(self, have: dict, where: Path) -> None:
        for k, v in self.attrs.items():
            if k in ("vd_version", "opencv_version", "keras_version", "keras_backend"):
                continue
            if k in have and str(have[k]) != str(v):
                raise UserError(f"{where} was written with {k}={have[k]}, this run uses {k}={v}; "
                                f"use --overwrite to start over or choose another output")

    def done(self) -> set[str]:
        """Clips already in a committed shard (with rows or as a recorded failure)."""
        s = set()
        for c in self.shards:
            s.update(c.videos)
            s.update(c.failed)
        return s

    # -- appending

    def add(self, clip: ClipRows) -> None:
        self._pending.append(clip)
        self._maybe_commit()

    def add_failure(self, failure: Failure) -> None:
        self._pending_fail.append(failure)
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if len(self._pending) + len(self._pending_fail) >= self.shard_clips:
            self.commit()

    def commit(self) -> None:
        """Write pending clips as one shard, then rewrite the index."""
        if not self._pending and not self._pending_fail:
            return
        number = 1 + max((int(_SHARD_RE.match(c.path.name).group(1)) for c in self.shards), default=-1)
        path = self.dir / f"shard-{number:06d}.h5"
        frames, dim = self._shape()
        clips, fails = self._pending, self._pending_fail

        def fill(f):
            _write_rows(f, clips, fails, frames, dim)
            faults.point("shard-write")
            f.attrs.update(self.attrs)

        need = sum(c.features.size for c in clips) * 2 + 64 * 1024 * (1 + len(clips))
        _atomic_h5(path, fill, "shard", need_bytes=need)
        self.shards.append(_Committed(path, sum(len(c.variant) for c in clips),
                                      [c.video for c in clips], [x.video for x in fails]))
        self._pending, self._pending_fail = [], []
        self.write_index()

    def _shape(self) -> tuple[int, int]:
        frames = int(self.attrs.get("frames", 20))
        if self._pending:
            return frames, int(self._pending[0].features.shape[-1])
        return frames, int(self.attrs.get("feature_dim", 4096))

    def write_index(self) -> None:
        """The index: metadata copied from the shards, ``features`` virtual over them."""
        frames, _ = self._shape()
        dim = int(self.attrs.get("feature_dim", 4096))
        metas, failures, total = [], [], 0
        for c in self.shards:
            with h5py.File(c.path, "r") as f:
                metas.append({k: f[k][()] for k in ROW_DATASETS})
                failures += read_failures(f)
                total += c.rows
        layout = h5py.VirtualLayout(shape=(total, frames, dim), dtype=np.float16)
        row = 0
        for c in self.shards:
            if c.rows:
                rel = os.path.relpath(c.path, self.index_path.parent)
                layout[row:row + c.rows] = h5py.VirtualSource(rel, "features", shape=(c.rows, frames, dim))
                row += c.rows

        def fill(f):
            f.create_virtual_dataset("features", layout, fillvalue=np.float16(np.nan))
            for k in ROW_DATASETS:
                parts = [m[k] for m in metas]
                if k in ("video", "split"):
                    data = np.concatenate(parts) if parts else np.zeros((0,), object)
                    f.create_dataset(k, data=data.astype(object), dtype=STR)
                elif k == "frame_index":
                    data = np.concatenate(parts) if parts else np.zeros((0, frames), np.int32)
                    f.create_dataset(k, data=data.astype(np.int32))
                else:
                    data = np.concatenate(parts) if parts else np.zeros((0,), _DTYPES[k])
                    f.create_dataset(k, data=data.astype(_DTYPES[k]))
            _write_failures(f, failures)
            faults.point("index-write")
            f.attrs.update(self.attrs)
            f.attrs["shards"] = json.dumps([os.path.relpath(c.path, self.index_path.parent)
                                            for c in self.shards])

        _atomic_h5(self.index_path, fill, "index")

    def close(self) -> None:
        """Commit what is pending, write the index, release the lock."""
        try:
            self.commit()
            self.write_index()
        finally:
            self._release_lock()

    def abandon(self) -> None:
        """Release the lock without committing (used when a run is interrupted)."""
        self._release_lock()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.close()
        else:
            self.abandon()
