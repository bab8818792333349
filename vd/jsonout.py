"""JSON output that stays standard: NaN/inf become null, numpy scalars plain numbers."""

from __future__ import annotations

import json
import math


def finite(d):
    """A copy of nested dicts/lists with non-finite floats replaced by None (json.dumps would
    otherwise write the non-standard NaN)."""
    if isinstance(d, dict):
        return {k: finite(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [finite(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def jsonable(x):
    """``default=`` for json.dumps: numpy scalars → Python numbers, anything else → str."""
    if hasattr(x, "item") and callable(x.item):
        x = x.item()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, (int, float, bool)):
            return x
    return str(x)


def dumps(d, **kw) -> str:
    return json.dumps(finite(d), default=jsonable, **kw)
