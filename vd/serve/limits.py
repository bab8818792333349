"""Bounds: how large an upload may be (counted while it streams in), how long it may stall,
and how many clips are scored at once (the rest wait in a short queue; beyond it, 503 with
Retry-After).
"""

from __future__ import annotations

import asyncio
import threading

UPLOAD_IDLE_S = 30.0  # an upload that sends nothing for this long is given up (408)


class UploadTooLarge(Exception):
    """The request body passed the limit (raised while it is being received)."""

    def __init__(self, limit: int):
        super().__init__(f"upload larger than the limit of {limit} bytes")
        self.limit = limit


class UploadStalled(Exception):
    """The client sent no part of the body for ``UPLOAD_IDLE_S`` seconds."""


def limited_receive(receive, limit: int, idle_s: float = UPLOAD_IDLE_S):
    """An ASGI ``receive`` that raises :class:`UploadTooLarge` as soon as the body's bytes so far
    pass ``limit`` (a large upload is cut off while it streams, never held whole) and
    :class:`UploadStalled` when nothing arrives for ``idle_s`` seconds (a client that trickles
    cannot hold a scoring place for ever)."""
    seen = 0

    async def wrapped():
        nonlocal seen
        try:
            message = await asyncio.wait_for(receive(), idle_s)
        except asyncio.TimeoutError:
            raise UploadStalled() from None
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise UploadTooLarge(limit)
        return message

    return wrapped


class Busy(Exception):
    """Every scoring slot and queue place is taken."""


class Gate:
    """At most ``workers`` clips scored at once, at most ``queue`` more admitted and waiting.

    :meth:`admit` (at the start of a request, before its body is read) raises :class:`Busy`
    when ``workers + queue`` requests are already in; :meth:`release` when the request is
    done. :meth:`slot` is the scoring slot itself (a context manager, blocking, used in the
    worker thread).
    """

    def __init__(self, workers: int = 1, queue: int = 4):
        if workers < 1 or queue < 0:
            raise ValueError("workers must be ≥ 1 and queue ≥ 0")
        self.capacity = workers + queue
        self.admitted = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers)

    def admit(self) -> None:
        with self._lock:
            if self.admitted >= self.capacity:
                raise Busy()
            self.admitted += 1

    def release(self) -> None:
        with self._lock:
            self.admitted -= 1

    def slot(self):
        return self._slots
