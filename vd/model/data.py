"""Training inputs from a feature store: in memory when it fits, streamed from HDF5 when not.

Both paths are ``keras.utils.PyDataset``s over the same per-epoch batch plan
(:func:`epoch_plan`): a shuffle of the store's chunks (for vd stores one chunk = one row, so it is
a full row shuffle) seeded by (seed, epoch), cut into batches. Every batch reads whole chunks,
sorted within the batch for HDF5. The in-memory path indexes a float16 copy of the rows; the
streaming path reads each batch from the store. Same plan + same float16 source → the same
(x, y) batches, so a streamed run trains exactly like an in-memory one.

x: (B, T, D) float32 features; y: (B, 2) float32 one-hot, column 1 = violent. When the
training rows include windows of recordings (``vd extract --annotations``), batches carry a
third element, per-row weights (:func:`source_weights`); stores of clips alone train unweighted,
exactly as before.
"""

from __future__ import annotations

import os
import threading

from vd import runtime  # noqa: F401  (TF settings and the import filter, before Keras loads)
import keras
import numpy as np

# Keep in-memory data under this share of the machine's available memory.
MEMORY_SHARE = 0.5


def chunk_rows(store) -> int:
    """Rows per HDF5 chunk of the store's features (1 for vd stores; 1 if unknown/virtual)."""
    return store.chunk_rows


def epoch_plan(rows: np.ndarray, batch_size: int, seed: int, epoch: int,
               chunk: int = 1, shuffle: bool = True) -> list[np.ndarray]:
    """Batches of store row numbers for one epoch; deterministic in (seed, epoch).

    Rows are grouped by chunk (``row // chunk``) and the groups shuffled, so each chunk is read
    once. A final batch of one row is folded into the one before it (BatchNorm needs >1).
    """
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        return []
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        groups = rows // max(1, chunk)
        uniq = np.unique(groups)
        order = rng.permutation(len(uniq))
        rank = np.empty(len(uniq), np.int64)
        rank[order] = np.arange(len(uniq))
        g_rank = rank[np.searchsorted(uniq, groups)]
        within = rng.random(len(rows))
        rows = rows[np.lexsort((within, g_rank))]
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = np.concatenate([batches[-2], batches[-1]])
        batches.pop()
    return batches


def fits_in_memory(store, n_rows: int) -> bool:
    """Whether n_rows float16 feature rows fit in ``MEMORY_SHARE`` of available memory."""
    need = n_rows * store.frames * store.dim * 2
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return need <= MEMORY_SHARE * avail


def source_weights(labels: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Per-row loss weights for training rows mixing clips and recording windows.

    The rule: each label holds half the total weight; within a label, clips and recording
    windows each hold half of it when both are present (all of it otherwise); rows of one
    (label, source) cell weigh the same. So a site's calm windows count as much as all the calm
    clips together however many or few they are, and a few hundred calm windows do not bury
    the violent rows. Normalised to a mean of 1 (the loss scale is unchanged).
    """
    labels = np.asarray(labels).astype(int)
    windows = np.asarray(windows, bool)
    w = np.zeros(len(labels), np.float64)
    present = [c for c in (0, 1) if (labels == c).any()]
    for c in present:
        cells = [m for m in (windows, ~windows) if ((labels == c) & m).any()]
        for m in cells:
            rows = (labels == c) & m
            w[rows] = 1.0 / (len(present) * len(cells) * rows.sum())
    return (w * len(labels) / w.sum()).astype(np.float32) if w.sum() > 0 else w.astype(np.float32)


def one_hot(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).astype(int)
    y = np.zeros((len(labels), 2), np.float32)
    y[np.arange(len(labels)), labels] = 1.0
    return y


class _Batches(keras.utils.PyDataset):
    """Shared plan handling: ``on_epoch_end`` advances to the next epoch's shuffle."""

    def __init__(self, store, rows, batch_size, seed, shuffle, chunk, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.rows = np.asarray(rows, np.int64)
        self.weights = weights  # per store row (float32, len = store rows), or None
        self.labels = np.asarray(store.label, np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.chunk = chunk
        self.epoch = 0
        self.wait_s = 0.0  # time spent producing batches (for the throughput bench)
        self._plan = epoch_plan(self.rows, self.batch_size, self.seed, 0, chunk, shuffle)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s shuffle (a resumed run continues the same sequence)."""
        self.epoch = epoch
        self._plan = epoch_plan(self.rows, self.batch_size, self.seed, epoch, self.chunk,
                                self.shuffle)

    def __len__(self):
        return len(self._plan)

    def on_epoch_end(self):
        if self.shuffle:
            self.set_epoch(self.epoch + 1)

    def batch_rows(self, idx: int) -> np.ndarray:
        return np.sort(self._plan[idx])

    def __getitem__(self, idx):
        import time

        t0 = time.perf_counter()
        rows = self.batch_rows(idx)
        x = self._features(rows)
        y = one_hot(self.labels[rows])
        self.wait_s += time.perf_counter() - t0
        if self.weights is not None:
            return x, y, self.weights[rows]
        return x, y

    def _features(self, rows):
        raise NotImplementedError


class InMemoryBatches(_Batches):
    """Batches from a float16 in-memory copy of ``rows`` (read once, in one pass, on creation)."""

    def __init__(self, store, rows, batch_size=64, seed=0, shuffle=True, chunk=1, weights=None,
                 **kwargs):
        super().__init__(store, rows, batch_size, seed, shuffle, chunk, weights, **kwargs)
        order = np.sort(self.rows)
        self._pos = {int(r): i for i, r in enumerate(order)}
        self._x = store.read_features(order, dtype=np.float16)

    def _features(self, rows):
        idx = np.fromiter((self._pos[int(r)] for r in rows), np.int64, len(rows))
        return self._x[idx].astype(np.float32)


class StreamingBatches(_Batches):
    """Batches read from the HDF5 store per batch (whole chunks, sorted rows).

    h5py handles are not thread-safe: reads are serialised by a lock; ``workers`` > 1 still
    overlaps the float16→float32 conversion and queueing with the train step.
    """

    def __init__(self, store, rows, batch_size=64, seed=0, shuffle=True, chunk=1, weights=None,
                 **kwargs):
        super().__init__(store, rows, batch_size, seed, shuffle, chunk, weights, **kwargs)
        self.store = store
        self._lock = threading.Lock()

    def _features(self, rows):
        with self._lock:
            x = self.store.read_features(rows, dtype=np.float16)
        return x.astype(np.float32)


def make_batches(store, rows, *, batch_size, seed, shuffle, stream, chunk=1, weights=None):
    """The in-memory or streaming dataset for ``rows`` (``weights``: per store row, or None)."""
    cls = StreamingBatches if stream else InMemoryBatches
    kwargs = {"workers": 2, "max_queue_size": 8} if stream else {}
    return cls(store, rows, batch_size=batch_size, seed=seed, shuffle=shuffle, chunk=chunk,
               weights=weights, **kwargs)
