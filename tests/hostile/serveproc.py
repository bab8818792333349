"""Helpers of the hostile `vd serve` tests: a real `vd serve` process on 127.0.0.1 (a free
port), its memory (``/proc/<pid>/status``), its temporary folder, and raw HTTP for the clients
that misbehave.

The model is tests/export's untrained run (the hybrid preset saved without training, on
mobilenet_v3_small random-weight features): no ``fit``, so these tests need no ``slow`` mark;
its scores mean nothing, the tests check bounds.

:func:`shared_server` is one server for the whole session (the cases that can share it);
it watches a 2 s clip (so that the live side and its events file are loaded) with a clips
folder prepared by the caller.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "export"))
from export_runs import untrained_run  # noqa: E402

TOKEN = "hostile-serve-token-0123456789"
MAX_SECONDS = 400.0   # the shared server's --max-seconds
_SHARED: dict = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`vd serve --model RUN ARGS` on 127.0.0.1:<free port>, TMPDIR=<root>/tmp, cwd=<root>."""

    def __init__(self, run, root: Path, *args):
        import httpx

        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        (self.root / "token").write_text(TOKEN + "\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TMPDIR=str(self.tmp), PYTHONPATH=str(REPO))
        env.pop("VD_TOKEN", None)
        self.err_path = self.root / "stderr.txt"
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vd.cli.main", "serve", "--model", str(run), "--port",
                 str(self.port), "--token-file", str(self.root / "token"), *map(str, args)],
                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=self.root)
        self.http = httpx.Client(base_url=self.url, timeout=120,
                                 headers={"Authorization": f"Bearer {TOKEN}"})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.err_path.read_text()

    def wait_ready(self, seconds: float = 240.0) -> None:
        import httpx

        end = time.monotonic() + seconds
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                if self.http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"vd serve did not get ready: {self.text()}")

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {key}")

    def reset_peak(self) -> int:
        """Start a new peak (VmHWM := VmRSS, Linux ≥ 4.0); returns VmRSS in kB."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self.status_kb("VmRSS")

    def peak_growth_mb(self, base_kb: int) -> float:
        return (self.status_kb("VmHWM") - base_kb) / 1024.0

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir() if p.name.startswith("vd-serve-"))

    def stop(self, timeout: float = 60.0) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def upload(client, path, name=None, **params):
    with open(path, "rb") as fh:
        return client.post("/v1/predict", params=params,
                           files={"file": (name or Path(path).name, fh, "video/mp4")})


def one_line_error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"], body
    return body["error"]


def _prepare_clips(clips: Path, clip: Path) -> dict:
    """A clips folder as a careless operator or an attacker leaves it: events.jsonl with
    malformed lines among three ended incidents whose clips are a regular file vd could have
    written, a hard link to a file outside the folder, and a symbolic link to it."""
    import json
    import shutil

    outside = clips.parent / "outside-secret.mp4"
    shutil.copyfile(clip, outside)
    shutil.copyfile(clip, clips / "good-1.mp4")
    os.link(outside, clips / "hard-1.mp4")
    os.symlink(outside, clips / "sym-1.mp4")
    base = {"source": "old", "start_s": 1.0, "peak": 0.9, "peak_s": 2.0, "threshold": 0.5,
            "start_time": "2026-01-01T00:00:01.000+00:00", "snapshot": None}
    lines = [json.dumps(dict(base, type="start", id={"a": 1})),   # the id is an object
             json.dumps(dict(base, type="end", id=["x"])),
             json.dumps([1, 2, 3]),
             json.dumps(dict(base, type="end", id="bad-clip", clip=123)),
             "not json at all"]
    for ident in ("good-1", "hard-1", "sym-1"):
        clip_path = str(clips / f"{ident}.mp4")
        lines.append(json.dumps(dict(base, type="start", id=ident, end_s=None, clip=clip_path)))
        lines.append(json.dumps(dict(base, type="end", id=ident, end_s=5.0, reason="cooldown",
                                     clip=clip_path)))
    (clips / "events.jsonl").write_text("\n".join(lines) + "\n")
    return {"malformed": 5, "outside": outside}


def shared_server(request, tmp_path_factory, opencv_clips) -> Serve:
    """The session's shared server, started on first use and stopped at the end of the
    session: it watches the 2 s mp4v clip, its clips folder is :func:`_prepare_clips`'s
    (``server.prepared`` says what is in it), ``--max-seconds`` :data:`MAX_SECONDS`, one
    worker and two queue places."""
    if "server" not in _SHARED:
        run = untrained_run(tmp_path_factory)
        root = tmp_path_factory.mktemp("hostile-serve")
        clips = root / "clips"
        clips.mkdir()
        prepared = _prepare_clips(clips, opencv_clips["mp4v.mp4"])
        srv = Serve(run, root, "--watch", opencv_clips["mp4v.mp4"], "--threshold", "0.99",
                    "--clips", clips, "--max-seconds", MAX_SECONDS, "--workers", "1",
                    "--queue", "2", "--timeout", "5", "--backoff-cap", "2")
        srv.prepared = prepared
        request.config.add_cleanup(srv.stop)
        srv.wait_ready()
        _SHARED["server"] = srv
    return _SHARED["server"]


def wait_for(cond, seconds: float) -> bool:
    """Poll ``cond()`` every 0.1 s until it is true (True) or ``seconds`` pass (False)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text (0.0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def write_mjpg(path: Path, seconds: float, fps: float, size=(64, 64)) -> Path:
    """A real MJPG .avi of ``seconds`` at ``fps`` (OpenCV only; a moving bar)."""
    import cv2
    import numpy as np

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert w.isOpened()
    img = np.zeros((size[1], size[0], 3), np.uint8)
    for i in range(int(round(seconds * fps))):
        img[:] = 0
        img[:, i % size[0]] = 255
        w.write(img)
    w.release()
    return path


def read_reply(s) -> tuple[int, bytes]:
    """(status, the reply's bytes) read from socket ``s`` until the server closes or the reply
    (with a Content-Length) is whole; status 0 when nothing HTTP came."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(x.split(b":")[1]) for x in head.split(b"\r\n")
                      if x.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data
