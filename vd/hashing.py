"""The sha256 of a file, read in blocks: how vd names a weights file and checks a bundle."""

from __future__ import annotations

import hashlib


def sha256_file(path) -> str:
    """Hex sha256 of the file at ``path``, read 4 MiB at a time (memory stays bounded)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
