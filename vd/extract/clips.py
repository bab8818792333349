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
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from vd.data.discover import Clip
from vd.data.store import Failure
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


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] if text else type(e).__name__


def decode_or_failure(clip: Clip, augment: int, seed: int, frames: int = FRAMES,
                      size: int | None = None) -> _Decoded | Failure:
    """:func:`decode_clip`, with any error turned into a recorded one-line :class:`Failure`."""
    try:
        return decode_clip(clip, augment, seed, frames, size)
    except Exception as e:  # one bad file never ends the batch
        return Failure(clip.video, "decode", _one_line(e))


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


def _process_stream(clips, augment, seed, frames, workers, size=None):
    """Decode in a pool of ``workers`` processes, in order; a decoder that crashes the whole
    process (a segfault on a hostile file) fails that clip only and the pool is restarted."""
    import collections
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # never fork a process that holds TF/CUDA state
    todo = collections.deque(clips)
    pool = ProcessPoolExecutor(workers, mp_context=ctx)
    pending: collections.deque = collections.deque()
    try:
        while todo or pending:
            while todo and len(pending) < 2 * workers:
                clip = todo.popleft()
                pending.append((clip, pool.submit(decode_or_failure, clip, augment, seed, frames, size)))
            clip, fut = pending.popleft()
            try:
                item = fut.result()
            except BrokenProcessPool:
                item = Failure(clip.video, "decode", "the decoder process crashed on this file")
                todo.extendleft(reversed([c for c, _ in pending]))
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(workers, mp_context=ctx)
            yield item
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class FrameBatcher:
    """Runs the backbone on full batches of frames that may span clips; yields finished clips.

    Frames of each clip are queued in order; whenever ``batch`` frames are waiting they go
    through the backbone together; a clip is finished when all its frames have features.
    ``flush()`` pads and runs what is left.
    """

    def __init__(self, backbone: Callable[[np.ndarray], np.ndarray], batch: int):
        self.backbone, self.batch = backbone, int(batch)
        self._queue: list[tuple[_Decoded, np.ndarray, int]] = []  # clip, features, frames taken
        self._waiting = 0

    def add(self, item: _Decoded) -> list[tuple[_Decoded, np.ndarray]]:
        feats = np.empty((len(item.pixels), 0), np.float32)
        self._queue.append([item, feats, 0])
        self._waiting += len(item.pixels)
        done = []
        while self._waiting >= self.batch:
            done += self._run(self.batch)
        return done

    def flush(self) -> list[tuple[_Decoded, np.ndarray]]:
        done = []
        while self._waiting > 0:
            done += self._run(min(self._waiting, self.batch))
        return done

    def _run(self, count: int) -> list[tuple[_Decoded, np.ndarray]]:
        pieces, owners, left = [], [], count
        for entry in self._queue:
            item, _, taken = entry
            if left == 0:
                break
            n = min(len(item.pixels) - taken, left)
            if n > 0:
                pieces.append(item.pixels[taken:taken + n])
                owners.append((entry, n))
                entry[2] += n
                left -= n
        out = self.backbone(np.concatenate(pieces))
        self._waiting -= count
        pos = 0
        for entry, n in owners:
            entry[1] = np.concatenate([entry[1], out[pos:pos + n]]) if entry[1].size else out[pos:pos + n]
            pos += n
        finished = []
        while self._queue and self._queue[0][2] == len(self._queue[0][0].pixels):
            item, feats, _ = self._queue.pop(0)
            finished.append((item, feats))
        return finished
