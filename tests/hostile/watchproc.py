"""Helpers of the hostile `vd watch` tests: a real `vd watch` process, its lines, a tmpfs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


STARTED: list = []  # every Watch of the running test, killed in teardown if still running


@pytest.fixture(autouse=True)
def reap():
    """Kill what a failed test left running (a `vd watch` that never ended)."""
    yield
    while STARTED:
        proc = STARTED.pop().proc
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


class Watch:
    """`vd watch ARGS` in its own process; stdout lines collected as they come."""

    def __init__(self, args, cwd, log_format="json"):
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.err_path = Path(cwd) / f"stderr-{time.monotonic_ns()}.txt"
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "vd.cli.main", "--log-format", log_format,
                                      "watch", *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, cwd=cwd, text=True)
        STARTED.append(self)
        self.out: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line)

    def events(self) -> list[dict]:
        return [json.loads(x) for x in list(self.out) if x.strip()]

    def wait_for(self, cond, timeout=120.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            if self.proc.poll() is not None:
                return cond()
            time.sleep(0.05)
        return False

    def finish(self, timeout=180.0) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._t.join(timeout=10)
        self._err.close()
        return rc

    @property
    def err(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.err_path.read_text()


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as JSON (each must parse: one object per line)."""
    out = []
    for line in text.splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def file_lines(path) -> list[dict]:
    text = Path(path).read_text() if Path(path).exists() else ""
    assert text == "" or text.endswith("\n")  # whole lines only
    return [json.loads(x) for x in text.splitlines()]


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Tmpfs:
    """A small tmpfs mounted at ``path`` (root only; the test is skipped where mount is refused)."""

    def __init__(self, path, size="2m"):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(self.path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'})")

    def remount(self, opts: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{opts}", str(self.path)], check=True)

    def fill(self, leave: int = 0) -> Path:
        """Write a filler file until the tmpfs is full (or ``leave`` bytes are left)."""
        filler = self.path / "filler.bin"
        with open(filler, "ab") as fh:
            chunk = b"\0" * 65536
            while True:
                free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
                if free <= leave:
                    break
                try:
                    fh.write(chunk[:max(4096, min(len(chunk), free - leave))])
                    fh.flush()
                except OSError:
                    break
        return filler

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


def mp4_plays(path) -> int:
    """Frames OpenCV decodes from ``path`` (0 when it does not open)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.isOpened() and cap.grab():
        n += 1
    cap.release()
    return n
