"""Clips → decoded, sampled pixels → backbone batches: the plumbing stage one and predict share.

:func:`decode_clip` decodes one clip once (``vd.extract.decode.read_frames``) and builds every
augmentation variant's pixels; :func:`decoded_stream` does that ahead of the consumer (a
background thread, or a process pool for GPUs), turning any bad clip into a recorded
:class:`~vd.data.store.Failure`; :class:`FrameBatcher` runs the backbone on full batches that
may span clips.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from vd import faults
from vd.data.discover import Clip
from vd.data.store import Failure
from vd.errors import one_line
from vd.extract.augment import apply_pixels, plan_variants
from vd.extract.sampling import FRAMES


@dataclass
class _Decoded:
    """One clip ready for the backbone: float32 RGB pixels for all its variants, in order."""

    clip: Clip
    pixels: np.ndarray          # (V*T, S, S, 3), S the backbone's input size, RGB 0–255: uint8 if no variant is transformed, else float32
    variants: np.ndarray        # (V,)
    frame_index: np.ndarray     # (V, T)
    n_frames: int
    fps: float
    frame_time: np.ndarray | None = None   # (V, T) float64 presentation times (s)
    duration_s: float = float("nan")       # last frame's time + one frame interval
    notes: tuple = ()                      # how times were made, when not from timestamps


def decode_clip(clip: Clip, augment: int, seed: int, frames: int = FRAMES,
                size: int | None = None) -> _Decoded:
    """Decode one clip once and build every variant's pixels (raises DecodeError on bad input).

    ``size``: square frame side (default: the backbone registry's input size).
    """
    from vd.extract import decode  # looked up at call time (tests count decoding passes)

    def wanted(n: int) -> np.ndarray:
        return np.concatenate([p.indices for p in plan_variants(n, clip.video, augment, seed, frames)])

    dec = decode.read_frames(clip.path, wanted, size)
    plans = plan_variants(dec.n_frames, clip.video, augment, seed, frames)
    pixels = np.concatenate([apply_pixels(dec.take(p.indices), p) for p in plans])
    index = np.stack([p.indices for p in plans]).astype(np.int32)
    return _Decoded(clip, pixels, np.array([p.variant for p in plans], np.int8), index,
                    dec.n_frames, dec.fps, frame_time=dec.time_of(index),
                    duration_s=dec.duration_s, notes=tuple(dec.notes))


def decode_or_failure(clip: Clip, augment: int, seed: int, frames: int = FRAMES,
                      size: int | None = None) -> _Decoded | Failure:
    """:func:`decode_clip`, with any error turned into a recorded one-line :class:`Failure`."""
    try:
        return decode_clip(clip, augment, seed, frames, size)
    except Exception as e:  # one bad file never ends the batch
        return Failure(clip.video, "decode", one_line(e))


def decoded_stream(clips: list[Clip], augment: int, seed: int, frames: int = FRAMES,
                   prefetch: int = 4, workers: int = 0,
                   size: int | None = None) -> Iterator[_Decoded | Failure]:
    """Decoded clips in input order, made ahead of the consumer; a bad clip yields a Failure.

    ``workers=0`` decodes in one background thread (OpenCV releases the GIL: enough to hide
    decoding behind VGG16 on a CPU); ``workers=N`` uses N processes, for GPUs that outrun one
    decoder. Memory stays bounded: at most ``prefetch`` (thread) or ``2N`` (processes) clips wait.
    ``size``: the backbone's square input side (default: the registry's default backbone).
    """
    if workers > 0:
        yield from _process_stream(clips, augment, seed, frames, workers, size)
        return
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    done = object()

    def put(item) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def work():
        try:
            for clip in clips:
                if stop.is_set():
                    return
                put(decode_or_failure(clip, augment, seed, frames, size))
        finally:
            put(done)

    t = threading.Thread(target=work, name="vd-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


# Decoded pixels cross from a decode process to the consumer through a shared-memory block
# (one per clip: the worker creates and fills it, the consumer copies the pixels out and
# unlinks it) instead of being pickled through the pool's pipe. False = pickle them (kept for
# bench/extract_host_ceiling.py, which measures both in one run).
PIXELS_VIA_SHARED_MEMORY = True
SHM_PREFIX = "vd_px_"  # every block vd makes is named vd_px_<pid>_<run token>_<sequence>


@dataclass
class _SharedPixels:
    """Where a decode process left a clip's pixels: a shared-memory block's name, shape, dtype."""

    name: str
    shape: tuple
    dtype: str


def _decode_to_shared(clip: Clip, augment: int, seed: int, frames: int, size: int | None,
                      name: str) -> _Decoded | Failure:
    """In a decode process: :func:`decode_or_failure`, the pixels left in a new block ``name``."""
    from multiprocessing import shared_memory

    item = decode_or_failure(clip, augment, seed, frames, size)
    if isinstance(item, Failure):
        return item
    px = item.pixels
    shm = shared_memory.SharedMemory(name=name, create=True, size=max(1, px.nbytes))
    if not _reserve(shm, max(1, px.nbytes)):
        shm.close()
        shm.unlink()
        return item  # pickled instead: writing past a full /dev/shm would kill this process
    try:
        view = np.ndarray(px.shape, px.dtype, buffer=shm.buf)
        view[...] = px
        del view
        faults.point("shm-filled")  # a crash here leaves a block no one was told about
    finally:
        shm.close()  # the block lives on until the consumer unlinks it
    item.pixels = _SharedPixels(name, tuple(px.shape), px.dtype.str)
    return item


def _reserve(shm, nbytes: int) -> bool:
    """Allocate the block's pages now (False when /dev/shm is full): a block is sized lazily,
    and the first write to a page that tmpfs cannot give raises SIGBUS, not an error."""
    import os

    fd = getattr(shm, "_fd", -1)  # the POSIX descriptor SharedMemory keeps (CPython)
    if fd < 0 or not hasattr(os, "posix_fallocate"):
        return True
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError:
        return False
    return True


def _take_shared(item):
    """In the consumer: copy a clip's pixels out of its block and unlink the block."""
    from multiprocessing import shared_memory

    if isinstance(item, Failure) or not isinstance(item.pixels, _SharedPixels):
        return item
    ref = item.pixels
    shm = shared_memory.SharedMemory(name=ref.name)
    try:
        item.pixels = np.ndarray(ref.shape, np.dtype(ref.dtype), buffer=shm.buf).copy()
    finally:
        shm.close()
        shm.unlink()
    return item


def _unlink_if_there(name: str) -> None:
    """Unlink block ``name`` if it exists (left by a crashed worker or an interrupted run)."""
    from multiprocessing import shared_memory

    try:
        shm = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    shm.close()
    shm.unlink()


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this decode process when the consumer is gone (SIGKILLed: the
    pool cannot tell its workers), so that nothing outlives the run and the resource tracker
    unlinks any block left behind."""
    import os

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="vd-parent-watch", daemon=True).start()


def _process_stream(clips, augment, seed, frames, workers, size=None):
    """Decode in a pool of ``workers`` processes, in order; a decoder that crashes the whole
    process (a segfault on a hostile file) fails that clip only and the pool is restarted.

    Pixels come back in shared memory (see ``PIXELS_VIA_SHARED_MEMORY``; pickled for a clip
    whose block /dev/shm cannot allocate, e.g. in a container's default 64 MB). Every block
    this stream names is unlinked: when its clip is taken, and on leaving (end, error,
    interrupt, a crashed worker) for every clip asked for and not taken, after waiting (30 s at
    most) for the decodes still running. A worker's block is also known to multiprocessing's resource
    tracker, which unlinks whatever is left when the run's processes end (a SIGKILL too)."""
    import collections
    import itertools
    import multiprocessing as mp
    import os
    import secrets
    from concurrent import futures
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # never fork a process that holds TF/CUDA state
    shared = PIXELS_VIA_SHARED_MEMORY
    token = f"{SHM_PREFIX}{os.getpid()}_{secrets.token_hex(4)}_"  # the pid: whose block it is
    todo = collections.deque(clips)

    def new_pool():
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_exit_with_parent,
                                   initargs=(os.getpid(),))

    pool = new_pool()
    pending: collections.deque = collections.deque()  # (clip, block name, future)
    names = itertools.count()

    def submit(clip):
        name = f"{token}{next(names)}"
        if shared:
            return clip, name, pool.submit(_decode_to_shared, clip, augment, seed, frames, size, name)
        return clip, name, pool.submit(decode_or_failure, clip, augment, seed, frames, size)

    try:
        while todo or pending:
            while todo and len(pending) < 2 * workers:
                pending.append(submit(todo.popleft()))
            clip, name, fut = pending[0]
            try:
                item = _take_shared(fut.result())
            except BrokenProcessPool:
                item = Failure(clip.video, "decode", "the decoder process crashed on this file")
                pool.shutdown(wait=False, cancel_futures=True)
                for _, n, _ in pending:
                    _unlink_if_there(n)
                todo.extendleft(reversed([c for c, _, _ in list(pending)[1:]]))
                pending.clear()
                pool = new_pool()
            else:
                pending.popleft()
            yield item
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if shared and pending:
            # a block appears when its decode ends: give the running ones time to end (a Ctrl-C
            # reaches the workers too), then sweep every name not taken
            futures.wait([f for _, _, f in pending], timeout=30)
            for _, n, _ in pending:
                _unlink_if_there(n)


class FrameBatcher:
    """Runs the backbone on full batches of frames that may span clips; yields finished clips.

    Frames of each clip are queued in order; whenever ``batch`` frames are waiting they go
    through the backbone together; a clip is finished when all its frames have features.
    ``flush()`` runs what is left (the backbone pads a short last batch itself).
    A :class:`~vd.data.store.Failure` may be queued too: it is handed back, with features
    ``None``, once every clip queued before it is finished, so clips and failures come out in
    input order and the store's shards do not depend on timing.
    """

    def __init__(self, backbone: Callable[[np.ndarray], np.ndarray], batch: int):
        self.backbone, self.batch = backbone, int(batch)
        # per queued clip: [item, feature pieces, frames taken into a batch, frames with features]
        self._queue: list[list] = []
        self._waiting = 0  # frames queued but not yet taken into a batch

    def add(self, item: _Decoded | Failure) -> list[tuple[_Decoded | Failure, np.ndarray | None]]:
        """Queue one clip (or failure); return the clips finished by the batches this filled."""
        self._enqueue(item)
        while self._waiting >= self.batch:
            self._dispatch(self._take(self.batch))
        self._drain(wait=False)
        return self._finished()  # finished clips stay queued until here: ready() sees them

    def flush(self) -> list[tuple[_Decoded | Failure, np.ndarray | None]]:
        """Run what is left; return every clip still queued, finished."""
        while self._waiting > 0:
            self._dispatch(self._take(min(self._waiting, self.batch)))
        self._drain(wait=True)
        return self._finished()

    def ready(self) -> list[tuple[_Decoded | Failure, np.ndarray | None]]:
        """The queued clips already finished, in order (for a caller stopping early: Ctrl-C;
        a backbone error is not raised again here, the caller is stopping anyway)."""
        try:
            self._drain(wait=False)
        except Exception:  # noqa: BLE001
            pass
        return self._finished()

    def close(self) -> None:
        """Release what runs the backbone (nothing here: it runs in the caller's thread)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the parts: assemble a batch, run it, hand features back to their clips

    def _enqueue(self, item) -> None:
        n = 0 if isinstance(item, Failure) else len(item.pixels)
        self._queue.append([item, [], 0, 0])
        self._waiting += n

    def _take(self, count: int) -> tuple[np.ndarray, list]:
        """The next ``count`` waiting frames as one array, and which clips they belong to."""
        pieces, owners, left = [], [], count
        for entry in self._queue:
            if left == 0:
                break
            item, _, taken, _ = entry
            if isinstance(item, Failure):
                continue
            n = min(len(item.pixels) - taken, left)
            if n > 0:
                pieces.append(item.pixels[taken:taken + n])
                owners.append((entry, n))
                entry[2] += n
                left -= n
        self._waiting -= count
        return np.concatenate(pieces), owners

    def _dispatch(self, job) -> None:
        """Run one assembled batch (here: synchronously) and hand its features to their clips."""
        frames, owners = job
        self._deliver(self.backbone(frames), owners)

    def _drain(self, wait: bool) -> None:
        """Deliver the batches the backbone has finished (all of them when ``wait``); nothing
        to do when it runs in the caller's thread."""

    @staticmethod
    def _deliver(out: np.ndarray, owners: list) -> None:
        pos = 0
        for entry, n in owners:
            entry[1].append(out[pos:pos + n])
            entry[3] += n
            pos += n

    def _finished(self) -> list:
        """Pop the clips at the front whose frames all have features (failures in their place)."""
        finished = []
        while self._queue:
            item, pieces, _, computed = self._queue[0]
            if isinstance(item, Failure):
                finished.append((item, None))
            elif computed == len(item.pixels):
                finished.append((item, np.concatenate(pieces) if pieces
                                 else np.empty((0, 0), np.float32)))
            else:
                break
            self._queue.pop(0)
        return finished


class PipelinedBatcher(FrameBatcher):
    """:class:`FrameBatcher` whose backbone runs in its own thread, ``depth`` batches ahead.

    The caller assembles batch k+1 (and writes finished clips) while the backbone runs batch k,
    which is what keeps an accelerator busy: a GPU call, like a CPU one in TF/JAX, releases
    the GIL. The batches are exactly those of :class:`FrameBatcher` (same frames, same order),
    so the features are the same bits. At most ``depth`` assembled batches are in flight
    (queued or running); assembling one more first waits for the oldest to finish. Results
    come back in order (one backbone thread, first in first out). An exception raised by the
    backbone is raised again in the caller's thread at its next ``add``/``flush``; after it,
    or on any exit, :meth:`close` drops the queued batches and joins the thread (a running
    backbone call is waited for, as the synchronous path would).
    """

    def __init__(self, backbone: Callable[[np.ndarray], np.ndarray], batch: int, depth: int = 2):
        super().__init__(backbone, batch)
        self.depth = max(1, int(depth))
        self.in_flight = 0  # batches handed to the backbone thread, not yet delivered
        self._jobs: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="vd-backbone", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            frames, owners = job
            try:
                out = self.backbone(frames)
            except BaseException as e:  # handed to the caller, which raises it
                self._results.put((owners, None, e))
                return
            self._results.put((owners, out, None))

    def _collect(self, block: bool) -> bool:
        """Deliver one finished batch; False when ``block`` is False and none is ready."""
        try:
            owners, out, err = self._results.get(block=block)
        except queue.Empty:
            return False
        self.in_flight -= 1
        if err is not None:
            raise err
        self._deliver(out, owners)
        return True

    def _dispatch(self, job) -> None:
        while self.in_flight >= self.depth:
            self._collect(block=True)
        self._jobs.put(job)
        self.in_flight += 1

    def _drain(self, wait: bool) -> None:
        if wait:
            while self.in_flight:
                self._collect(block=True)
        else:
            while self._collect(block=False):
                pass

    def close(self) -> None:
        try:
            while True:
                self._jobs.get_nowait()  # batches not started: dropped
        except queue.Empty:
            pass
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join()
