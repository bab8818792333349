"""Benchmark: `vd serve`'s POST /v1/predict on a 5-second clip, with and without TTA, against
`vd predict` on the same clip, measured in one run.

For each TTA setting:
1. in-process ``predict_paths`` with the model already loaded (what the server runs per
   request) and 2. an upload to the server (a ``vd serve`` process on 127.0.0.1, model loaded
   once), alternating, ``--repeat`` pairs (so that both see the same machine load): medians,
   the server's p50/p95 latency and sequential requests/s; then ``--concurrency`` clients
   uploading at once (``--workers 1``, a queue long enough for all) → requests/s;
3. one cold ``vd predict CLIP --json`` process (what a script without the server pays each
   time: Python, TensorFlow and the model load included).

Printed ratios: server p50 / in-process median (the service's own cost: upload, temp file,
content check, HTTP) and cold `vd predict` / server p50.

Needs no download: random backbone weights and a tiny hybrid run trained here on random
features. ``--backbone mobilenet_v3_small`` (default; ~1/50 of VGG16's cost a frame) or
``vgg16``.

    .venv/bin/python bench/serve_latency.py [--backbone vgg16] [--repeat 10] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DIMS = {"mobilenet_v3_small": (576, None), "vgg16": (4096, "fc2")}


def tiny_run(tmp: Path, backbone: str) -> Path:
    from vd.data.store import write_plain_store
    from vd.extract.run import store_attrs
    from vd.model.train import train

    dim, layer = DIMS[backbone]
    rng = np.random.default_rng(0)
    y = np.arange(16) % 2
    x = rng.normal(0.0, 1.0, (16, 20, dim)).astype(np.float16)
    videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
    store = write_plain_store(tmp / "store.h5", x, y, videos,
                              attrs=store_attrs("random(seed=0)", layer, 1, 0, 20, backbone))
    train(store, epochs=1, out=tmp / "run", seed=0, checkpoint_every=0, tensorboard=False)
    return tmp / "run"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="mobilenet_v3_small", choices=sorted(DIMS))
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()

    import httpx

    from vd import runtime
    from vd.synthetic import write_long_clip

    runtime.load_keras()
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor, predict_paths

    tmp = Path(tempfile.mkdtemp(prefix="vd-bench-serve-"))
    clip = tmp / "clip5s.mp4"
    write_long_clip(clip, parts=(("calm", 2.0), ("violent", 3.0)), fps=25.0, size=(320, 240))
    run = tiny_run(tmp, args.backbone)
    print(f"load average {os.getloadavg()[0]:.1f}; backbone {args.backbone} (random weights), clip 5 s 320x240 25 fps "
          f"({clip.stat().st_size} bytes), {os.cpu_count()} CPUs, repeat {args.repeat}")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("VD_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "vd.cli.main", "serve", "--model", str(run), "--port", str(port),
         "--workers", "1", "--queue", str(args.concurrency + 1)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    data = clip.read_bytes()
    results, inproc = {}, {}
    try:
        with httpx.Client(base_url=url, timeout=600) as c:
            end = time.monotonic() + 300
            while time.monotonic() < end:
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit("the server did not become ready")

            def post(client, tta):
                r = client.post("/v1/predict", params={"tta": str(tta).lower()},
                                files={"file": ("clip5s.mp4", data, "video/mp4")})
                assert r.status_code == 200, r.text

            for tta in (False, True):
                p = Predictor(str(run), tta=TTAConfig(enabled=tta))
                predict_paths([str(clip)], predictor=p)  # warm both
                post(c, tta)
                lat, local = [], []
                t_srv = 0.0
                for _ in range(args.repeat):  # paired, alternating: both see the same load
                    t0 = time.perf_counter()
                    predict_paths([str(clip)], predictor=p)
                    local.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    post(c, tta)
                    lat.append(time.perf_counter() - t0)
                    t_srv += lat[-1]
                seq_rps = args.repeat / t_srv
                inproc[tta] = statistics.median(local)

                n_each = max(1, args.repeat // args.concurrency)

                def client_loop():
                    with httpx.Client(base_url=url, timeout=600) as cc:
                        for _ in range(n_each):
                            post(cc, tta)
                threads = [threading.Thread(target=client_loop) for _ in range(args.concurrency)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                conc_rps = n_each * args.concurrency / (time.perf_counter() - t0)
                results[tta] = (statistics.median(lat), pct(lat, 0.95), seq_rps, conc_rps)
    finally:
        server.terminate()
        server.wait(60)

    cold = {}
    for tta in (False, True):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vd.cli.main", "predict", str(clip), "--model",
                        str(run), "--json", "-q"] + ([] if tta else ["--no-tta"]),
                       env=env, capture_output=True, check=True, cwd=tmp)
        cold[tta] = time.perf_counter() - t0

    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    for tta in (False, True):
        p50, p95, seq, conc = results[tta]
        print(f"TTA {'on ' if tta else 'off'}: server p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"{seq:.2f} req/s sequential, {conc:.2f} req/s with {args.concurrency} clients; "
              f"in-process predict {inproc[tta] * 1000:.0f} ms → service cost ×{p50 / inproc[tta]:.2f}; "
              f"cold `vd predict` {cold[tta]:.1f} s = ×{cold[tta] / p50:.1f} a server request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
