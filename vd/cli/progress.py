"""What long commands print on stderr: a progress line (done/total, clips/s, frames/s, ETA)
and one line per failed clip.

Rewrites one line on a terminal; prints a line every ``every`` seconds otherwise (logs, CI).
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    def __init__(self, label: str, enabled: bool = True, stream=None, every: float = 10.0):
        self.label = label
        self.enabled = enabled
        self._stream = stream
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every
        self._last = 0.0
        self._drawn = False

    @property
    def stream(self):
        """The stream given, else ``sys.stderr`` as it is now (vd.runtime's terminal filter
        replaces it when Keras loads, which may be after this bar was made)."""
        return self._stream or sys.stderr

    def update(self, done: int, total: int, frames: int, seconds: float, failed: int = 0) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = done >= total
        if not self.tty and not final and now - self._last < self.every:
            return
        self._last = now
        rate = done / seconds if seconds > 0 else 0.0
        fps = frames / seconds if seconds > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        text = (f"{self.label} {done}/{total} clips ({failed} failed) | {rate:.2f} clips/s "
                f"{fps:.1f} frames/s | ETA {format_duration(eta)}")
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def echo_failures(failures) -> None:
    """One ``vd: failed: PATH: reason`` line per clip that failed (stderr)."""
    for f in failures:
        sys.stderr.write(f"vd: failed: {f.video}: {f.message}\n")
    sys.stderr.flush()
