"""Files leave the server only from vd's own output folders.

:func:`inside` returns a path only when it lies under one of the allowed roots (resolved, so
``..`` and links out are caught) and is itself a regular file — not a symbolic link, and not
a hard link (``st_nlink > 1``: a name in the folder for a file that may live anywhere else);
anything else — an absolute path elsewhere, a link, a missing file, a folder — is None, which
the app answers with 404. vd writes its clips and snapshots as plain single-link files.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path


def inside(path, roots) -> Path | None:
    if not path:
        return None
    try:
        p = Path(path).resolve(strict=True)
        st = os.lstat(Path(path))
    except (OSError, RuntimeError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return None
    for root in roots:
        try:
            r = Path(root).resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if p.is_relative_to(r):
            return p
    return None


_CONVERT = threading.Lock()


def web_clip(mp4: Path, out_dir: Path) -> Path:
    """A copy of an incident clip that browsers play: VP8 in WebM, written once into
    ``out_dir`` (the server's cache, not the clips folder, which ``vd extract`` reads) through
    OpenCV's own FFmpeg. The recorder's clips are MPEG-4 Part 2 (``mp4v``), which no browser
    decodes. Conversions run one at a time. Returns the WebM's path."""
    with _CONVERT:
        out = Path(out_dir) / (mp4.stem + ".webm")
        if out.exists() and out.stat().st_mtime >= mp4.stat().st_mtime:
            return out
        return _convert(mp4, out)


def _convert(mp4: Path, out: Path) -> Path:
    import os

    import cv2

    cap = cv2.VideoCapture(str(mp4))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    tmp = out.with_name(out.stem + ".partial.webm")
    writer = None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"), float(fps), (w, h))
                if not writer.isOpened():
                    raise OSError("this OpenCV cannot write VP8/WebM")
            writer.write(frame)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise OSError(f"{mp4.name}: no frame decodes")
    os.replace(tmp, out)
    return out
