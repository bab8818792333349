"""The feature store, schema 1 (see DESIGN.md): sharded HDF5 files plus one index file.

Layout for ``vd extract videos/ features.h5``::

    features.h5            index: per-row metadata copied, ``features`` a virtual dataset
    features.shards/       shard-000000.h5, shard-000001.h5, ... each complete on its own

A shard is written under a temporary name and renamed only after it is closed and synced,
so a kill loses at most the shard in progress. The index is written the same way (so it is
always whole and names only committed shards) with the first shard, then on a schedule that
keeps its total cost linear in the number of shards, and at the end; after a kill it may lag
behind the shards until the next run of the same command rebuilds it (see ``StoreWriter``).
Readers accept any HDF5 file with the schema's datasets and attributes, virtual or plain; a
virtual store whose shard is missing or damaged is an error naming the file, never rows of
fill values. ``create_store`` writes a plain store (``vd merge``, tests, tools).

``feature_dim`` is the features dataset's width; a writer takes it from the ``feature_dim``
attribute or else from the first rows it sees, and refuses to guess when it has neither.

Per row: ``features`` float16 (N, T, D), ``label`` int8, ``video`` str, ``variant`` int8,
``split`` str, ``frame_index`` int32 (N, T), ``n_frames`` int32, ``fps`` float32.
Failures: group ``failures`` with str datasets ``video``, ``stage``, ``message``.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import json
import logging
import os
import re
import shutil
import stat
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from vd import faults
from vd.errors import UserError, one_line
from vd.outputs import check_output

log = logging.getLogger("vd.data.store")

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


@contextmanager
def _atomic_h5(final: Path, kind: str = "file", need_bytes: int = 0) -> Iterator[h5py.File]:
    """Yield a new HDF5 file written under a temporary name; on a clean exit sync, then rename.

    ``need_bytes`` is checked against the free space first. An OS error (disk full,
    permissions) becomes a one-line :class:`UserError`; the temporary file is removed and
    whatever was committed before stays valid. The kill point ``{kind}-rename`` sits between
    the sync and the rename.
    """
    final = Path(final)
    tmp = final.with_name("." + final.name + ".tmp")
    if need_bytes and shutil.disk_usage(final.parent).free < need_bytes:
        raise UserError(f"cannot write {final}: no space left on device (needs ~{need_bytes >> 10} KiB); "
                        f"files committed before are intact, free space and rerun the same command")
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda *_: None  # h5py reports a failed close again from __dealloc__
    try:
        tmp.unlink(missing_ok=True)  # a leftover, or a link planted there: never written through
        with h5py.File(tmp, "w") as f:
            yield f
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        faults.point(f"{kind}-rename")
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except (OSError, RuntimeError) as e:
        gc.collect()
        with suppress(OSError):  # a folder squatting on the temporary name stays
            tmp.unlink(missing_ok=True)
        reason = "no space left on device" if _disk_full(e) else (getattr(e, "strerror", None) or one_line(e))
        raise UserError(f"cannot write {final}: {reason}; files committed before are intact, "
                        f"rerun the same command to resume") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        sys.unraisablehook = previous_hook


def _write_columns(f: h5py.File, cols: dict, frames: int) -> None:
    """Write the per-row metadata datasets from ``cols`` (name → list of arrays, concatenated)."""
    for k in ROW_DATASETS:
        parts = cols[k]
        if k in ("video", "split"):
            data = np.concatenate(parts).astype(object) if parts else np.zeros((0,), object)
            f.create_dataset(k, data=data, dtype=STR)
        elif k == "frame_index":
            data = np.concatenate(parts) if parts else np.zeros((0, frames), np.int32)
            f.create_dataset(k, data=np.asarray(data, np.int32).reshape(-1, frames))
        else:
            data = np.concatenate(parts) if parts else np.zeros((0,), _DTYPES[k])
            f.create_dataset(k, data=np.asarray(data, _DTYPES[k]).reshape(-1))


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
                            f"({one_line(e)})") from None
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
        if len(feats.shape) != 3:
            raise UserError(f"{self.path}: features has shape {feats.shape}, not (rows, frames, "
                            f"feature_dim)")
        self.n = int(feats.shape[0])
        self.frames, self.dim = int(feats.shape[1]), int(feats.shape[2])
        said = self.attrs.get("feature_dim")
        if self.n and said is not None and int(said) != self.dim:
            raise UserError(f"{self.path}: attribute feature_dim={said} but its features are "
                            f"{self.dim} wide")
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
        """A virtual dataset reads missing sources as fill values: prove every source is whole.

        Also counts committed shards the index does not name yet (``unindexed_shards``: the
        index lags after a killed run until the same ``vd extract`` runs again)."""
        self.unindexed_shards = 0
        ds = self._f["features"]
        if not ds.is_virtual:
            return
        base = self.path.parent
        named = {Path(vs.file_name).name for vs in ds.virtual_sources()}
        folder = shard_dir(self.path)
        if folder.is_dir():
            self.unindexed_shards = sum(1 for p in folder.iterdir()
                                        if _SHARD_RE.match(p.name) and p.name not in named)
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
                raise UserError(f"{self.path}: shard damaged: {src} ({one_line(e)})") from None
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


# --------------------------------------------------------------------------- writing


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


class RowAppender:
    """Rows appended to a plain store file being written (see :func:`create_store`).

    Features go to disk as they come (``features`` is chunked one row per chunk and grows), so
    memory stays bounded by one append; the small per-row columns are kept and written when
    the file is finished. ``rows`` counts the rows appended so far.
    """

    def __init__(self, f: h5py.File, frames: int, dim: int):
        self.frames, self.dim = int(frames), int(dim)
        if self.frames < 1 or self.dim < 1:
            raise UserError(f"cannot write {f.filename}: rows must be frames x feature_dim > 0, "
                            f"got {self.frames} x {self.dim}")
        self._f = f
        self._feats = f.create_dataset("features", (0, self.frames, self.dim), dtype=np.float16,
                                       chunks=(1, self.frames, self.dim),
                                       maxshape=(None, self.frames, self.dim))
        self._cols: dict[str, list] = {k: [] for k in ROW_DATASETS}
        self._failures: list[Failure] = []
        self.rows = 0

    def append(self, features, *, label, video, variant, split, frame_index, n_frames, fps) -> None:
        """Append ``n`` rows: ``features`` (n, T, D) and one value per row for each column
        (``frame_index`` (n, T)); scalars are repeated for every row."""
        features = np.asarray(features)
        if features.ndim != 3 or features.shape[1:] != (self.frames, self.dim):
            raise UserError(f"cannot write {self._f.filename}: rows of {features.shape[1:]} "
                            f"features, the store holds ({self.frames}, {self.dim})")
        n = features.shape[0]
        given = {"label": label, "video": video, "variant": variant, "split": split,
                 "n_frames": n_frames, "fps": fps}
        for k, v in given.items():
            v = np.asarray(v, dtype=object if k in ("video", "split") else _DTYPES[k])
            self._cols[k].append(np.full(n, v[()], dtype=v.dtype) if v.ndim == 0 else v.reshape(n))
        self._cols["frame_index"].append(np.asarray(frame_index, np.int32).reshape(n, self.frames))
        self._feats.resize(self.rows + n, axis=0)
        self._feats[self.rows:self.rows + n] = features.astype(np.float16, copy=False)
        self.rows += n

    def append_clip(self, clip: ClipRows) -> None:
        """Append a clip's rows (one per variant)."""
        self.append(clip.features, label=clip.label, video=clip.video, variant=clip.variant,
                    split=clip.split, frame_index=clip.frame_index, n_frames=clip.n_frames,
                    fps=clip.fps)

    def add_failures(self, failures) -> None:
        self._failures.extend(failures)

    def columns(self) -> dict[str, np.ndarray]:
        """The per-row columns appended so far (``ROW_DATASETS`` name → array of ``rows``)."""
        return {k: np.concatenate(v) if v else
                np.zeros((0, self.frames) if k == "frame_index" else (0,),
                         object if k in ("video", "split") else _DTYPES[k])
                for k, v in self._cols.items()}

    def _finish(self) -> None:
        _write_columns(self._f, {k: [v] for k, v in self.columns().items()}, self.frames)
        _write_failures(self._f, self._failures)


@contextmanager
def create_store(path, attrs: dict, *, frames: int, dim: int, kind: str = "file",
                 need_bytes: int = 0) -> Iterator[RowAppender]:
    """Write a plain (one-file) store, all or nothing: ``with create_store(...) as out:
    out.append(...)``.

    The file is written under a temporary name and renamed into place only when the block
    ends without an exception (then it is synced first); otherwise nothing appears and what
    was there before is untouched. Only a vd store is ever replaced (:mod:`vd.outputs`). An OS error (disk full) is a one-line :class:`UserError`.
    ``attrs`` become the file's attributes (start from :func:`base_attrs`). ``kind`` names the
    kill point ``{kind}-rename`` (vd/faults.py); ``need_bytes`` is checked against free space.
    """
    check_output(path, "store")
    with _atomic_h5(Path(path), kind, need_bytes) as f:
        out = RowAppender(f, frames, dim)
        yield out
        out._finish()
        f.attrs.update(attrs)


def write_plain_store(path, features, label, video, *, variant=None, split=None,
                      frame_index=None, n_frames=None, fps=None, attrs=None,
                      failures=()) -> Path:
    """Write a one-file (non-sharded) store from arrays; for tests and tools.

    ``features`` (N, T, D); the other columns default to variant 0, empty split, evenly
    spaced ``frame_index``, ``n_frames`` = T and fps 30. ``attrs`` are added to
    :func:`base_attrs`.
    """
    features = np.asarray(features)
    n, t, d = features.shape
    all_attrs = base_attrs(frames=t)
    all_attrs.update(attrs or {})
    path = Path(path)
    with create_store(path, all_attrs, frames=t, dim=d) as out:
        out.append(features, label=np.asarray(label).reshape(n),
                   video=np.array([str(v) for v in video], dtype=object),
                   variant=np.zeros(n, np.int8) if variant is None else variant,
                   split=np.full(n, "", dtype=object) if split is None else
                   np.array([str(s) for s in split], dtype=object),
                   frame_index=np.tile(np.arange(t, dtype=np.int32), (n, 1)) if frame_index is None
                   else frame_index,
                   n_frames=np.full(n, t, np.int32) if n_frames is None else n_frames,
                   fps=np.full(n, 30.0, np.float32) if fps is None else fps)
        out.add_failures(failures)
    return path


@dataclass
class _Committed:
    """A committed shard and the metadata the index copies from it (kept, not re-read)."""

    path: Path
    rows: int
    dim: int | None  # None for a shard without rows (its width says nothing)
    cols: dict  # ROW_DATASETS name -> array of ``rows``
    failures: list[Failure]

    @property
    def videos(self) -> list[str]:
        return list(dict.fromkeys(self.cols["video"]))

    @property
    def failed(self) -> list[str]:
        return [x.video for x in self.failures]


# The index is rewritten after a commit only when one of these says so (and always at close and
# when a run stops on an exception such as Ctrl-C). Rewriting costs O(shards); doing it when the
# shards not yet in it reach a quarter of those that are keeps the total cost linear in shards.
INDEX_MIN_NEW_SHARDS = 8
INDEX_GROWTH = 0.25
# ... and when it has not been written for this long, so a slow run's index stays fresh; the wait
# stretches so that index upkeep takes at most ~INDEX_TIME_SHARE of the run's wall time.
INDEX_MAX_AGE_S = 30.0
INDEX_TIME_SHARE = 0.05


class StoreWriter:
    """Appends clips to a sharded store; resumable, locked against a second writer.

    ``attrs`` are the store's attributes (extractor settings included). Opening an existing
    store with different attributes is refused unless ``overwrite``. :meth:`done` lists the
    clips already in a committed shard (rows or failure); the caller skips them.

    The index is valid at every moment (it names only committed shards) but may lag behind
    them during a run: it is rewritten at the first commit, when the shards not in it reach
    ``max(INDEX_MIN_NEW_SHARDS, INDEX_GROWTH * shards in it)``, when it is older than
    ``INDEX_MAX_AGE_S``, at :meth:`close` and on :meth:`abandon`. After a kill, the next writer
    of the same store rebuilds it from the committed shards.
    """

    def __init__(self, index_path, attrs: dict, *, shard_clips: int = 64, overwrite: bool = False):
        self.index_path = Path(index_path)
        self.dir = shard_dir(self.index_path)
        self.attrs = dict(attrs)
        self.shard_clips = max(1, int(shard_clips))
        self.frames = int(self.attrs.get("frames", 20))
        self.dim = int(self.attrs["feature_dim"]) if "feature_dim" in self.attrs else None
        self._lock_fh = None
        check_output(self.index_path, "store", overwrite=overwrite)  # before a lock file appears
        self._acquire_lock()
        try:
            if self.dir.exists() and not self.dir.is_dir():
                raise UserError(f"{self.dir} (where the shards go) exists and is not a folder; "
                                f"vd leaves it alone: choose another output")
            if overwrite:
                self._remove_existing()
            self.dir.mkdir(parents=True, exist_ok=True)
            self.shards: list[_Committed] = self._scan()
        except BaseException:
            self._release_lock()
            raise
        self._next_number = 1 + max((int(_SHARD_RE.match(c.path.name).group(1)) for c in self.shards),
                                    default=-1)
        self._pending: list[ClipRows] = []
        self._pending_fail: list[Failure] = []
        self._indexed = None  # shards in the index this writer wrote (None: not written yet)
        self._index_at = 0.0  # time.monotonic() of that write
        self._index_cost = 0.0  # seconds it took

    # -- lifecycle

    def _acquire_lock(self) -> None:
        parent = self.index_path.parent
        if not parent.exists():
            raise UserError(f"output folder does not exist: {parent}")
        lock = self.index_path.with_name(self.index_path.name + ".lock")
        try:  # never through a link, never blocking on a FIFO, only ever a plain file
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                         | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
        except OSError as e:
            raise UserError(f"output not writable: {lock} ({e.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UserError(f"{lock} exists and is not a plain file; vd leaves it alone: remove "
                            f"it or choose another output")
        self._lock_fh = os.fdopen(fd, "a")
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
                    shape = f["features"].shape
                    cols = {k: f[k][()] for k in ROW_DATASETS}
                    cols["video"] = np.array(_str_list(f["video"]), dtype=object)
                    cols["split"] = np.array(_str_list(f["split"]), dtype=object)
                    failures = read_failures(f)
            except UserError:
                raise
            except (OSError, KeyError) as e:
                bad = p.with_name(p.name + ".corrupt")
                os.replace(p, bad)
                log.warning("%s is damaged (%s); moved to %s, its clips will be extracted again",
                            p, one_line(e), bad.name)
                continue
            rows = int(shape[0])
            if rows:
                self._check_shape(tuple(shape[1:]), p)
            out.append(_Committed(p, rows, int(shape[2]) if rows else None, cols, failures))
        return out

    def _check_shape(self, shape: tuple, where) -> None:
        """Rows must be (frames, dim); the first rows seen fix ``dim`` when no attribute does."""
        if self.dim is None:
            self.dim = int(shape[-1])
        if tuple(shape) != (self.frames, self.dim):
            raise UserError(f"{where} holds rows of {tuple(int(x) for x in shape)} features, "
                            f"this store's are ({self.frames}, {self.dim}); use --overwrite "
                            f"to start over or choose another output")

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
        self._check_shape(np.shape(clip.features)[1:], f"clip {clip.video}")
        self._pending.append(clip)
        self._maybe_commit()

    def add_failure(self, failure: Failure) -> None:
        self._pending_fail.append(failure)
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if len(self._pending) + len(self._pending_fail) >= self.shard_clips:
            self.commit()

    def _known_dim(self) -> int:
        if self.dim is None:
            raise UserError(f"{self.index_path}: feature width unknown: no feature_dim attribute "
                            f"and no rows to take it from")
        return self.dim

    def commit(self) -> None:
        """Write pending clips as one shard; rewrite the index if it is due (see the class)."""
        if not self._pending and not self._pending_fail:
            return
        path = self.dir / f"shard-{self._next_number:06d}.h5"
        clips, fails = self._pending, self._pending_fail
        need = sum(c.features.size for c in clips) * 2 + 64 * 1024 * (1 + len(clips))
        with create_store(path, self.attrs, frames=self.frames, dim=self._known_dim(),
                          kind="shard", need_bytes=need) as out:
            for c in clips:
                out.append_clip(c)
            out.add_failures(fails)
            faults.point("shard-write")
            cols, rows = out.columns(), out.rows
        self.shards.append(_Committed(path, rows, self.dim if rows else None, cols, list(fails)))
        self._next_number += 1
        self._pending, self._pending_fail = [], []
        if self._index_due():
            self.write_index()

    def _index_due(self) -> bool:
        if self._indexed is None:
            return True
        new = len(self.shards) - self._indexed
        if new >= max(INDEX_MIN_NEW_SHARDS, INDEX_GROWTH * self._indexed):
            return True
        age = time.monotonic() - self._index_at
        return new > 0 and age >= max(INDEX_MAX_AGE_S, self._index_cost / INDEX_TIME_SHARE)

    def write_index(self) -> None:
        """The index: metadata copied from the shards, ``features`` virtual over them."""
        started = time.monotonic()
        frames, dim = self.frames, self._known_dim()
        shards = list(self.shards)
        total = sum(c.rows for c in shards)
        layout = h5py.VirtualLayout(shape=(total, frames, dim), dtype=np.float16)
        row = 0
        for c in shards:
            if c.rows:
                rel = os.path.relpath(c.path, self.index_path.parent)
                layout[row:row + c.rows] = h5py.VirtualSource(rel, "features", shape=(c.rows, frames, dim))
                row += c.rows
        with _atomic_h5(self.index_path, "index") as f:
            f.create_virtual_dataset("features", layout, fillvalue=np.float16(np.nan))
            _write_columns(f, {k: [c.cols[k] for c in shards] for k in ROW_DATASETS}, frames)
            _write_failures(f, [x for c in shards for x in c.failures])
            faults.point("index-write")
            f.attrs.update(self.attrs)
            f.attrs["shards"] = json.dumps([os.path.relpath(c.path, self.index_path.parent)
                                            for c in shards])
        self._indexed = len(shards)
        self._index_at = time.monotonic()
        self._index_cost = self._index_at - started

    def close(self) -> None:
        """Commit what is pending, bring the index up to date, release the lock."""
        try:
            self.commit()
            if self._indexed != len(self.shards) or not self.index_path.exists():
                self.write_index()
        finally:
            self._release_lock()

    def abandon(self) -> None:
        """Release the lock without committing what is pending (a run that stops on an
        exception, Ctrl-C included); the index is first brought up to date with the committed
        shards if it can be (a full disk may refuse: the next run rebuilds it)."""
        try:
            if self.shards and self._indexed != len(self.shards):
                self.write_index()
        except UserError:
            pass
        finally:
            self._release_lock()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.close()
        else:
            self.abandon()
