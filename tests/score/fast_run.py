"""One small trained run shared by the predict, checkpoint, explain and alarm tests
(``from fast_run import shared_run``).

The run is the default hybrid preset trained a few epochs on a *planted* store whose
attributes say "mobilenet_v3_small, random(seed=0)" (576-d): exactly what ``vd predict`` then
computes with that backbone (~1/50 of VGG16's cost a frame here), so predict/evaluate accept it
on real clips without extracting a real store. VGG16 itself is not what these tests are about
(tests/extract/test_backbones.py scores a clip end to end through VGG16). Its scores on real
video mean nothing; these tests check plumbing (which frames, which timestamps, how many
decodes, which file became model.keras), not accuracy. Violent rows carry a signal on frames
5–9, so the model has something to learn and to attend to.

Saved: checkpoints/epoch-002, -004, -006 (every 2 epochs), model.keras (best validation
balanced accuracy), last.keras (epoch 6), calibration.json.
"""

from __future__ import annotations

from planted_hybrid import planted_rows  # noqa: F401  (the tests here import it from this module)

EPOCHS = 6
EVERY = 2
FRAMES, DIM = 20, 576
BACKBONE = "mobilenet_v3_small"


def random_attrs() -> dict:
    """The attributes of a store that `vd extract --backbone mobilenet_v3_small --weights random
    --seed 0` would write."""
    from vd.extract.run import store_attrs

    return store_attrs("random(seed=0)", None, 1, 0, FRAMES, backbone=BACKBONE)


def shared_run(tmp_path_factory):
    """(store path, run folder), trained once per test session for all workers
    (``session_cache.build_once``); read-only: a test that writes copies the run first."""
    from session_cache import build_once

    def make(root):
        from vd.data.store import write_plain_store
        from vd.model.train import train

        x, y = planted_rows(40)
        videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
        store = write_plain_store(root / "features.h5", x, y, videos, attrs=random_attrs())
        train(store, epochs=EPOCHS, out=root / "runs" / "hybrid", seed=0, checkpoint_every=EVERY,
              tensorboard=False)

    root = build_once(tmp_path_factory, "fast_run", make)
    return root / "features.h5", root / "runs" / "hybrid"
