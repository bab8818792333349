"""Bounds: every size, time and count a client controls.

- :class:`Limits` — the numbers, one object (the CLI fills it; defaults documented in
  docs/serve.md).
- :func:`limited_receive` — an upload body must arrive whole within ``body_deadline_s`` and,
  after ``body_grace_s``, at an average of at least ``body_min_rate`` bytes/s; it is cut off
  as soon as it passes ``max_upload`` bytes. Not an idle timer: a client that sends one byte
  every few seconds is cut off as surely as one that sends nothing.
- :class:`Gate` — at most ``workers`` clips scored at once and ``queue`` more waiting; a
  request takes its place only once its body is on disk (a slow client holds no place).
  The bodies themselves are :class:`Places` too: at most ``arriving`` at once, so that the
  disk they take is bounded (``arriving × max_upload``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

MIN_STRIDE_S = 0.1       # the smallest timeline stride an upload may ask for (seconds)
MAX_WINDOWS = 1000       # timeline windows per request
SMALL_BODY = 64 * 1024   # bytes: the most a JSON request body (a review) may carry


@dataclass(frozen=True)
class Limits:
    max_upload: int = 64 * 2 ** 20        # bytes of one upload's body
    max_pixels: int = 3840 * 2160         # width × height a clip may declare (4K UHD)
    max_seconds: float = 600.0            # length of an uploaded clip
    max_windows: int = MAX_WINDOWS
    min_stride_s: float = MIN_STRIDE_S
    workers: int = 1
    queue: int = 4
    connections: int = 64                 # open connections (uvicorn's limit_concurrency)
    arriving: int = 16                    # upload bodies being received at once (disk use)
    body_deadline_s: float = 120.0        # the whole upload body within this
    body_grace_s: float = 10.0            # ... and after this, at least body_min_rate
    body_min_rate: float = 32 * 1024      # bytes/s, averaged since the body started


class UploadTooLarge(Exception):
    """The request body passed the limit (raised while it is being received)."""

    def __init__(self, limit: int):
        super().__init__(f"upload larger than the limit of {limit} bytes")
        self.limit = limit


class UploadStalled(Exception):
    """The body did not arrive in time (deadline, or too slow after the grace period)."""


class ShuttingDown(Exception):
    """The server is stopping; the request is given up."""


def limited_receive(receive, limits: Limits, closing: asyncio.Event | None = None):
    """An ASGI ``receive`` that raises :class:`UploadTooLarge` as soon as the body passes
    ``limits.max_upload`` bytes, :class:`UploadStalled` when the body is late (see the module
    doc; the clock starts at the first call) and :class:`ShuttingDown` when ``closing`` is set."""
    seen = 0
    start = None

    async def wrapped():
        nonlocal seen, start
        now = time.monotonic()
        start = now if start is None else start
        elapsed = now - start
        # the moment the average rate would drop below the minimum, if nothing more came
        rate_due = max(limits.body_grace_s, seen / limits.body_min_rate)
        wait = min(limits.body_deadline_s, rate_due) - elapsed
        if wait <= 0:
            raise UploadStalled()
        message = await _first(receive(), closing, wait)
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limits.max_upload:
                raise UploadTooLarge(limits.max_upload)
        return message

    return wrapped


async def _first(coro, closing: asyncio.Event | None, timeout: float):
    """``coro``'s result within ``timeout`` s, unless ``closing`` is set first."""
    task = asyncio.ensure_future(coro)
    waits = {task}
    stop = None
    if closing is not None:
        stop = asyncio.ensure_future(closing.wait())
        waits.add(stop)
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stop is not None:
            stop.cancel()
    if task in done:
        return task.result()
    task.cancel()
    if stop is not None and stop in done:
        raise ShuttingDown()
    raise UploadStalled()


class Busy(Exception):
    """Every place is taken."""


class Places:
    """At most ``capacity`` requests in: :meth:`admit` raises :class:`Busy` beyond,
    :meth:`release` when a request is done."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.admitted = 0
        self._lock = threading.Lock()

    def admit(self) -> None:
        with self._lock:
            if self.admitted >= self.capacity:
                raise Busy()
            self.admitted += 1

    def release(self) -> None:
        with self._lock:
            self.admitted -= 1


class Gate(Places):
    """At most ``workers`` clips scored at once, at most ``queue`` more admitted and waiting.

    :meth:`admit` (once the request's body is on disk) raises :class:`Busy` when
    ``workers + queue`` requests are already in; :meth:`release` when the request is done.
    :meth:`slot` is the scoring slot itself (a context manager, blocking, used in the worker
    thread).
    """

    def __init__(self, workers: int = 1, queue: int = 4):
        if workers < 1 or queue < 0:
            raise ValueError("workers must be ≥ 1 and queue ≥ 0")
        super().__init__(workers + queue)
        self._slots = threading.BoundedSemaphore(workers)

    def slot(self):
        return self._slots
