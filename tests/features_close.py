"""What "the same features" means between two extraction runs: one helper, one tolerance.

The backbone batches frames across clips, so a resumed run, a ``--shard i/n`` part or a run with
other batch-mates computes a clip's frames beside different neighbours, and the CPU kernels
(oneDNN picks its blocking by batch shape and ISA) round the float32 sums differently (what was
measured is written above ``RTOL``). Bit-identical float16 features are therefore not a promise
vd can make across batch-mates; everything else about a row (which clip, variant and frames,
label, split, order, failures) is, and :func:`assert_same_rows` asserts those exactly.

The promise: every value agrees within ``RTOL`` of its own magnitude (two float16 ulps: the
float16 spacing is 2**-11..2**-10 of a value, so a float32 difference of ~2e-4 relative may
land one ulp apart after rounding, and two leave room for a value that sits on a rounding edge
in both runs) plus ``ATOL_SCALE`` times the largest magnitude in the clip's rows (the floor
for values near 0: a dot product's rounding error scales with its terms, not with its result,
so a ReLU output near 0 can move by a small fraction of the row's scale; measured worst:
3.2e-4 of it, so the floor 2**-10 = 9.8e-4 leaves a 3x margin). A different clip's
rows, a zeroed clip, shifted frames or NaN fill from a missing shard miss this by orders of
magnitude (tests/data/test_features_close.py proves that the helper catches them).
"""

from __future__ import annotations

import numpy as np

# Measured (oneDNN capped to AVX2 on an AMD EPYC, TF 2.21, VGG16 fc2 with random(seed=3)
# weights, --augment 2, 3 clips = 6 rows of 20 x 4096): a one-shot store against (a) the same
# run SIGKILLed after its first shard and resumed, (b) --shard 0/2 + 1/2 merged. Of 491,520
# values 56 (a) and 66 (b) differ (<= 0.014 %), in 3 and 4 of the 6 rows: 54 / 64 by one float16
# ulp and 2 by two; the largest |difference| is 2.44e-4, which is 3.2e-4 of its row's largest
# |value| (row maxima ~0.75, mean |value| 0.08); differing values under 1 % of their row's
# maximum moved by <= 5.1e-6 of it; no value went from 0 to non-0. Without the cap (AVX-512
# kernels) the crash-safety tests' bit-for-bit assertions held on this machine.
RTOL = 2 * 2.0 ** -10  # two float16 ulps at the top of a binade: 1.95e-3 relative
ATOL_SCALE = 2.0 ** -10  # the absolute floor, as a share of the clip's largest |value|


def features_close(a, b) -> tuple[bool, str]:
    """Whether float features ``a`` and ``b`` (N, T, D) agree within the promise, and why not."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.shape != b.shape:
        return False, f"shapes differ: {a.shape} vs {b.shape}"
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return False, "non-finite values (NaN is what a virtual store reads for a missing shard)"
    if a.size == 0:
        return True, "empty"
    scale = np.maximum(np.abs(a), np.abs(b)).reshape(a.shape[0], -1).max(axis=1)  # per row
    scale = scale.reshape((-1,) + (1,) * (a.ndim - 1))
    diff = np.abs(a - b)
    allowed = RTOL * np.maximum(np.abs(a), np.abs(b)) + ATOL_SCALE * scale
    bad = diff > allowed
    if bad.any():
        i = np.unravel_index(np.argmax(diff - allowed), a.shape)
        return False, (f"{int(bad.sum())} of {a.size} values differ beyond the tolerance in "
                       f"{len(np.unique(np.nonzero(bad)[0]))} row(s); worst at {tuple(int(x) for x in i)}: "
                       f"{a[i]!r} vs {b[i]!r}, allowed {allowed[i]:.3g}")
    return True, f"{int((diff > 0).sum())} of {a.size} values differ, all within the tolerance"


def assert_features_close(a, b) -> None:
    """Assert :func:`features_close`; the message says how many values and rows are off."""
    ok, why = features_close(a, b)
    assert ok, why


def assert_same_rows(a, b) -> None:
    """Two open stores hold the same rows: every column and the failures exactly, the features
    within the tolerance (see the module doc for why they may differ at all)."""
    assert (a.n, a.frames, a.dim) == (b.n, b.frames, b.dim)
    assert list(a.video) == list(b.video)  # the same clips in the same order
    for k in ("label", "variant", "frame_index", "n_frames", "fps"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert list(a.split) == list(b.split)
    assert sorted((f.video, f.stage, f.message) for f in a.failures) == \
        sorted((f.video, f.stage, f.message) for f in b.failures)
    assert_features_close(a.read_features(), b.read_features())
