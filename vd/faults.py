"""Named points where a crash-safety test can kill the process with SIGKILL.

``VD_FAULT=name`` kills at the first time ``point(name)`` is reached, ``VD_FAULT=name@n`` at
the n-th. Unset (always, outside tests) it costs one dictionary lookup. The points sit where a
real crash would hurt most: between writing a file and renaming it into place, halfway through
a shard, while the index is written.
"""

from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("VD_FAULT")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
