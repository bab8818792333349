"""What the routers of ``vd serve`` share: one :class:`Service` per process.

It loads the model in a background thread (the server answers ``/healthz`` and 503s
meanwhile), holds the scoring gate, the limits, the metrics, the live side, the uploads'
temporary folders (removed when each request ends, and whatever is left when the server
stops) and the shutdown signal that cancels scoring in progress.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import queue
import threading
from concurrent.futures import Future
from pathlib import Path

from vd.serve.limits import Gate, Limits, Places
from vd.serve.metrics import Metrics

log = logging.getLogger("vd.serve")


def _warm_up(p) -> None:
    """Build the backbone and trace the backbone's and the classifier's batch shapes for uploads
    with and without TTA now, not in the first request (seconds in which that request could not
    be cancelled: a traced call does not look at the cancel flag)."""
    import numpy as np

    from vd.extract.tta import TTAConfig
    from vd.serve.scoring import RequestPredictor

    frames = np.zeros((int(p.frames), p.input_size, p.input_size, 3), np.uint8)
    for tta in (True, False):
        view = RequestPredictor(p, TTAConfig(enabled=tta), lambda _: None)
        feats = view.features(frames, np.arange(len(frames)))
        for windows in (1, 3):  # two batch sizes: the classifier's trace generalises
            view.view_probabilities(np.stack([feats] * windows))


class Threads:
    """``n`` daemon threads that run the jobs given to :meth:`submit`, in order. Daemon, unlike
    a ``ThreadPoolExecutor``'s: a job between two cancellation checks (decoding) never holds
    up the process's exit after a signal."""

    def __init__(self, n: int, name: str):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(n):
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True).start()

    def submit(self, fn) -> Future:
        """A future of ``fn()`` (await it with ``asyncio.wrap_future``)."""
        f: Future = Future()
        self._jobs.put((f, fn))
        return f

    def _run(self) -> None:
        while True:
            f, fn = self._jobs.get()
            if not f.set_running_or_notify_cancel():
                continue
            try:
                f.set_result(fn())
            except BaseException as e:  # noqa: BLE001 — the awaiting request gets it
                f.set_exception(e)


class Service:
    """The one predictor (loaded in the background), the scoring gate, the live side, the
    metrics and the limits. ``load()`` returns a :class:`~vd.score.predict.Predictor`."""

    def __init__(self, load, *, token: str | None = None, live=None, limits: Limits = Limits()):
        self._load = load
        self.token = token
        self.live = live
        self.limits = limits
        self.gate = Gate(limits.workers, limits.queue)
        # the threads that decode and score uploads: one per gate place, so that the memory
        # they keep (allocator arenas, decoder and backbone buffers) is bounded by the gate
        self.scoring = Threads(limits.workers + limits.queue, "vd-serve-score")
        self.arriving = Places(limits.arriving)
        self.metrics = Metrics(live, self.gate)
        self.predictor = None
        self.error: str | None = None
        self.on_fatal = lambda: None
        self.stopping = threading.Event()        # read by scoring threads
        self.closing: asyncio.Event | None = None  # the same, for the event loop
        self._loop = None
        self._thread = None
        self._tmp: set[Path] = set()
        self._tmp_lock = threading.Lock()

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        """Called in the event loop at start-up: load the model in the background."""
        self._loop = asyncio.get_running_loop()
        self.closing = asyncio.Event()
        self._thread = threading.Thread(target=self._load_now, name="vd-serve-load", daemon=True)
        self._thread.start()

    def _load_now(self) -> None:
        from vd.errors import UserError

        try:
            p = self._load()
            _warm_up(p)
        except UserError as e:
            self.error = e.message
        except Exception as e:  # noqa: BLE001 — one line, the server exits
            self.error = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        else:
            self.predictor = p
            if self.live is not None:
                self.live.start(p)
            log.info("model loaded; ready")
            return
        log.error(self.error)
        self.on_fatal()

    def shutdown(self) -> None:
        """The server was asked to stop (a signal): cancel scoring and uploads in progress.
        Safe to call from a signal handler or any thread."""
        self.stopping.set()
        if self._loop is not None and self.closing is not None:
            self._loop.call_soon_threadsafe(self.closing.set)

    def stop(self) -> None:
        """At the end: stop the live side, remove every upload folder still there."""
        self.stopping.set()
        if self.live is not None:
            self.live.stop()
        with self._tmp_lock:
            left, self._tmp = list(self._tmp), set()
        for d in left:
            shutil.rmtree(d, ignore_errors=True)

    # ------------------------------------------------------------------ upload folders

    def upload_dir(self) -> Path:
        d = Path(tempfile.mkdtemp(prefix="vd-serve-"))
        with self._tmp_lock:
            self._tmp.add(d)
        return d

    def remove_upload_dir(self, d: Path) -> None:
        shutil.rmtree(d, ignore_errors=True)
        with self._tmp_lock:
            self._tmp.discard(d)
