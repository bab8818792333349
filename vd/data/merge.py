"""Joining stores made on different machines (``vd extract --shard i/n``) into one plain store.

Refuses stores whose extractor settings differ (a row's features must mean the same thing in
every part), keeps each clip once (the first part that has it wins; failures of a clip that
succeeded elsewhere are dropped), and orders clips by their relative path — the order a
one-shot ``vd extract`` writes — so ``--shard 0/2`` + ``--shard 1/2`` + merge equals a one-shot
store row for row. Features are copied clip by clip, so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vd.data.store import EXTRACTOR_KEYS, ROW_DATASETS, Failure, create_store, open_store
from vd.errors import UserError
from vd.outputs import check_output

# Settings that must agree between parts (beyond the extractor): how rows were made.
MUST_MATCH = EXTRACTOR_KEYS + ("feature_dim", "augment", "seed", "vd_schema")
PER_PART = ("shards",)


@dataclass
class MergeSummary:
    output: Path
    parts: int
    clips: int
    rows: int
    duplicates: list[str]
    failures: int


def merge_stores(output, inputs) -> MergeSummary:
    """Write the union of ``inputs`` (paths of stores) to ``output`` as one plain HDF5 store.

    An existing ``output`` is replaced only when it is a vd store (:mod:`vd.outputs`)."""
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise UserError("vd merge needs at least one input store")
    output = Path(output)
    check_output(output, "store")
    if output.resolve() in {p.resolve() for p in inputs}:
        raise UserError(f"the output {output} is also an input")
    stores = [open_store(p) for p in inputs]
    try:
        ref = stores[0].attrs
        for st in stores[1:]:
            for k in MUST_MATCH:
                if str(st.attrs.get(k)) != str(ref.get(k)):
                    raise UserError(f"cannot merge: {st.path} has {k}={st.attrs.get(k)}, "
                                    f"{stores[0].path} has {k}={ref.get(k)}")
            if (st.frames, st.dim) != (stores[0].frames, stores[0].dim):
                raise UserError(f"cannot merge: {st.path} rows are {st.frames}x{st.dim}")
        owner: dict[str, int] = {}
        duplicates = []
        for si, st in enumerate(stores):
            for v in dict.fromkeys(st.video):
                if v in owner:
                    duplicates.append(v)
                else:
                    owner[v] = si
        failures: dict[str, Failure] = {}
        for st in stores:
            for f in st.failures:
                if f.video not in owner:
                    failures.setdefault(f.video, f)
        order = sorted(owner)
        plan = []  # (store index, rows of that clip) in output order
        for v in order:
            st = stores[owner[v]]
            plan.append((owner[v], np.flatnonzero(st.video == v)))
        total = sum(len(r) for _, r in plan)
        frames, dim = stores[0].frames, stores[0].dim
        attrs = {k: v for k, v in ref.items() if k not in PER_PART}
        attrs["merged_from"] = len(inputs)

        with create_store(output, attrs, frames=frames, dim=dim) as out:
            for si, rows in plan:
                st = stores[si]
                out.append(st.read_features(rows, dtype=np.float16),
                           **{k: getattr(st, k)[rows] for k in ROW_DATASETS})
            out.add_failures(failures[v] for v in sorted(failures))
        return MergeSummary(output, len(inputs), len(order), total, duplicates, len(failures))
    finally:
        for st in stores:
            st.close()
