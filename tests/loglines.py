"""Collect what the library logs (``from loglines import capture_logs``).

vd's library code logs through ``logging.getLogger("vd.…")`` and the CLI decides where lines go
(vd/cli/logs.py, which also stops the ``vd`` logger from propagating); tests that call the
library directly read its messages with this instead of a ``log=`` callback.
"""

from __future__ import annotations

import contextlib
import logging


class _Collect(logging.Handler):
    def __init__(self, lines: list):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def capture_logs(name: str = "vd", level: int = logging.INFO):
    """``with capture_logs() as lines:`` → the messages logged under ``name`` meanwhile."""
    lines: list[str] = []
    logger = logging.getLogger(name)
    handler, old = _Collect(lines), logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level, old) if old else level)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
