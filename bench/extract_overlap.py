"""Does `vd extract` keep an accelerator busy? A simulated device measures it without a GPU.

A GPU call, seen from the host, is time during which the calling thread waits with the GIL
released. ``SimDevice(rate)`` is exactly that: ``n / rate`` seconds of ``time.sleep`` per call
of ``n`` frames, returning zeros of VGG16's 4096 dimensions. In one run:

1. host ceiling — `run_extract` with a zero-cost network (decode + sample + batch + write);
2. for each simulated rate (by default 0.8 x and 0.25 x the host ceiling: near it and well
   below it): the device's own ceiling (called alone, in vd's batches), then `run_extract` end
   to end with it, SYNC (backbone called in the consumer thread) and ASYNC (its own thread, up
   to 2 batches ahead), each run twice in the order sync, async, async, sync (a shared machine
   drifts) and averaged; ratio end to end / device ceiling for each;
3. the HDF5 writes: seconds spent in `StoreWriter.add`/`commit` (consumer thread) as a share
   of the ASYNC run's wall time, and ASYNC with the writes moved to a writer thread
   (``--writer-thread``: a bench-only wrapper, to decide whether vd should have one).

With no overlap at all the two costs would add: 1 / (1/host + 1/device). The decode thread (or
processes) already runs during a synchronous call, so SYNC loses only the consumer thread's own
work (batch assembly, HDF5 writes, handing results back); ASYNC hides that too: ideal
min(host, device).

    python bench/extract_overlap.py [--clips 48] [--size 320x240] [--batch-frames 32]
                                    [--rates 0.8,0.25] [--workers 0] [--writer-thread]
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time

import numpy as np
from extract_host_ceiling import ZeroNet, synthetic_clips  # bench/ is the script's folder


class SimDevice:
    """A simulated accelerator: ``len(frames) / rate`` seconds per call with the GIL released
    (time.sleep), then (N, dim) float32 zeros — the shape of a GPU call seen from the host."""

    def __init__(self, rate: float, dim: int):
        self.rate, self.dim = float(rate), dim

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        time.sleep(len(frames) / self.rate)
        return np.zeros((len(frames), self.dim), np.float32)


class Timed:
    """Wraps StoreWriter: seconds spent in add/add_failure/commit (the consumer thread's writes)."""

    seconds = 0.0

    def __init__(self, real_cls):
        self.real_cls = real_cls

    def __call__(self, *a, **k):
        w = self.real_cls(*a, **k)
        for name in ("add", "add_failure", "commit"):
            f = getattr(w, name)

            def timed(*args, _f=f, **kw):
                t = time.perf_counter()
                try:
                    return _f(*args, **kw)
                finally:
                    Timed.seconds += time.perf_counter() - t
            setattr(w, name, timed)
        return w


class ThreadedWriter:
    """Bench-only: StoreWriter whose add/add_failure run in one writer thread (FIFO, so the
    same shards); done()/commit()/close()/abandon() first wait for the queued writes."""

    def __init__(self, real_cls, *a, **k):
        self._w = real_cls(*a, **k)
        self._q: queue.Queue = queue.Queue(maxsize=8)
        self._err = None
        self._t = threading.Thread(target=self._work, daemon=True)
        self._t.start()

    def _work(self):
        while True:
            job = self._q.get()
            if job is None:
                return
            try:
                if self._err is None:
                    job[0](*job[1:])
            except BaseException as e:
                self._err = e
            finally:
                self._q.task_done()

    def _wait(self):
        self._q.join()
        if self._err is not None:
            raise self._err

    def add(self, clip):
        self._q.put((self._w.add, clip))

    def add_failure(self, f):
        self._q.put((self._w.add_failure, f))

    def done(self):
        return self._w.done()

    def commit(self):
        self._wait()
        self._w.commit()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        self._q.put(None)
        self._t.join()
        return self._w.__exit__(exc_type, *rest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--size", default="320x240", help="clip size WxH")
    ap.add_argument("--frames", default="60,90", help="frames per clip, min,max")
    ap.add_argument("--batch-frames", type=int, default=32)
    ap.add_argument("--rates", default="0.8,0.25", help="simulated device rates, as fractions of "
                                                        "the measured host ceiling")
    ap.add_argument("--workers", type=int, default=0, help="decode workers (0 = one thread)")
    ap.add_argument("--writer-thread", action="store_true", help="also: ASYNC with a writer thread")
    args = ap.parse_args()

    import vd.extract.run as run_mod
    from vd.extract.registry import get_spec
    from vd.extract.run import run_extract

    t = time.perf_counter()
    tmp, _ = synthetic_clips("vd-overlap-", "clips", args.clips, args.size, args.frames)
    lo, hi = (int(v) for v in args.frames.split(","))
    spec = get_spec("vgg16")
    dim = spec.feature_dim()
    print(f"clips {args.size}, {lo}-{hi} frames (made in {time.perf_counter() - t:.0f} s); batch "
          f"{args.batch_frames} frames; decode workers {args.workers}", flush=True)
    runs = [0]
    real_writer = run_mod.StoreWriter

    def e2e(net, dispatch: str, writer=None) -> float:
        runs[0] += 1
        Timed.seconds = 0.0
        run_mod.StoreWriter = writer or Timed(real_writer)
        try:
            s = run_extract(tmp / "clips", tmp / f"run-{runs[0]}.h5", weights="random",
                            batch_frames=args.batch_frames, workers=args.workers, network=net,
                            dispatch=dispatch)
        finally:
            run_mod.StoreWriter = real_writer
        e2e.last_write_share = Timed.seconds / s.seconds
        return s.frames_per_second

    host = {d: e2e(ZeroNet(dim), d) for d in ("sync", "async")}
    host["sync"] = (host["sync"] + e2e(ZeroNet(dim), "sync")) / 2
    ceiling = max(host.values())
    print(f"host ceiling (zero-cost network): sync {host['sync']:.1f}, async {host['async']:.1f} "
          f"frames/s; writes {e2e.last_write_share:.1%} of the wall", flush=True)

    frames = np.zeros((args.batch_frames, spec.input_size, spec.input_size, 3), np.uint8)
    for frac in [float(v) for v in args.rates.split(",")]:
        dev = SimDevice(frac * ceiling, dim)
        t = time.perf_counter()
        for _ in range(8):
            dev(frames)
        alone = 8 * args.batch_frames / (time.perf_counter() - t)
        got = {"sync": [], "async": []}
        share = []
        for d in ("sync", "async", "async", "sync"):
            got[d].append(e2e(dev, d))
            if d == "async":
                share.append(e2e.last_write_share)
        print(f"device at {frac:.2f} x host = {dev.rate:.1f} frames/s set, {alone:.1f} measured alone:")
        for d in ("sync", "async"):
            r = float(np.mean(got[d]))
            print(f"  {d:5s} end to end {r:8.1f} frames/s  ({', '.join(f'{x:.1f}' for x in got[d])})"
                  f"   ratio / device ceiling {r / alone:.3f}")
        ideal_sync = 1 / (1 / ceiling + 1 / alone)
        print(f"  async / sync {np.mean(got['async']) / np.mean(got['sync']):.3f};  no overlap at all "
              f"{ideal_sync:.1f}, ideal {min(ceiling, alone):.1f};  HDF5 writes in the consumer "
              f"thread: {np.mean(share):.1%} of the async wall", flush=True)
        if args.writer_thread:
            wt = [e2e(dev, "async", writer=lambda *a, **k: ThreadedWriter(real_writer, *a, **k))
                  for _ in range(2)]
            print(f"  async + writer thread {np.mean(wt):8.1f} frames/s ({', '.join(f'{x:.1f}' for x in wt)})"
                  f"   ratio / device ceiling {np.mean(wt) / alone:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
