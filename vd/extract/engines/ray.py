"""``vd extract --engine ray``: stage one on a Ray cluster, written by this process.

Ray Data over the list of clips: each clip is decoded and sampled by a CPU task anywhere in
the cluster (:func:`vd.extract.clips.decode_or_failure`, the local pipeline's code), the
backbone runs in a pool of actors (one per GPU with ``num_gpus=1``, or CPU actors), each
taking blocks of several clips and running them through :class:`vd.extract.network.Backbone`
in ``batch_frames`` batches that span the clips; the features come back to this process (the
driver), which writes them with the local store writer in input order. Work is handed out as
it is asked for, not split in advance: a slow node takes fewer clips, and the tasks of a lost
node are run again elsewhere (Ray retries tasks and restarts actors; an object lost with its
node is rebuilt from its lineage). A clip that cannot be decoded is recorded as locally; a
clip whose task still fails after Ray's retries (a decoder that crashes its worker on every
try) is recorded as a failure of stage ``ray`` and the run goes on.

``ray`` is imported only here, only when this engine runs (the ``ray`` extra). Every node
needs vd and the clips at the same paths (a shared file system), as with ``--shard`` on SLURM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vd.data.discover import Clip
from vd.data.store import Failure
from vd.errors import UserError

log = logging.getLogger("vd.extract.engines.ray")

# tries of a clip's decoding task: enough for the loss of a node or two, finite for a crash
DECODE_TRIES = 4
# Without GPUs: one backbone actor per this many CPUs of the cluster. An actor reserves one CPU
# but its network uses every core of its node (TensorFlow's threads), as decoding's tasks do;
# the other CPUs stay free for decoding, so a cluster of small nodes never has actors waiting
# for decoded clips that no CPU is left to decode, even after losing a node.
CPUS_PER_CPU_ACTOR = 4
# the one-line reason recorded for a clip whose task Ray gave up on (after its retries)
LOST = "its Ray task failed on every retry (a crash of the worker that decoded it?)"


@dataclass(frozen=True)
class RaySettings:
    """What the tasks and actors need to know: the extractor, sampling and where Ray is."""

    weights: str
    layer: str
    backbone: str
    augment: int
    seed: int
    frames: int
    batch_frames: int
    size: int
    address: str | None = None  # None: start a Ray instance on this machine

    @property
    def frames_per_clip(self) -> int:
        return self.frames * self.augment


def import_ray():
    """The ``ray`` module, with Ray Data (the ``ray`` extra); one line if it is missing."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError("--engine ray needs Ray Data: pip install 'vd[ray]'") from None
    return ray


def _connect(ray, address: str | None) -> None:
    """Join the cluster at ``address`` ('auto', HOST:PORT, ray://…) or start a local one.

    A local instance runs its workers at normal priority (Ray's default is nice 15, which on a
    machine shared with other work would starve the job the user asked for; the local engine
    runs at normal priority too). A cluster's own setting is left alone."""
    import os

    if address is None and not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local Ray instance"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"--engine ray: cannot connect to {where}: {first}") from None


def decode_rows(batch: dict, settings: RaySettings) -> dict:
    """Ray task: one block of clips → their sampled pixels (uint8) and metadata, or failures.

    The pixels are rounded to 8 bits here, as the backbone would round them (the same bits),
    so a block crosses the cluster at a quarter of float32's size."""
    from vd.extract.network import to_uint8
    from vd.extract.clips import decode_or_failure

    s, f, v = settings.size, settings.frames, settings.augment
    n = len(batch["index"])
    out = {"index": batch["index"], "video": batch["video"],
           "pixels": np.zeros((n, v * f, s, s, 3), np.uint8),
           "variant": np.zeros((n, v), np.int8), "frame_index": np.zeros((n, v, f), np.int32),
           "n_frames": np.zeros(n, np.int32), "fps": np.zeros(n, np.float32),
           "stage": np.full(n, "", object), "message": np.full(n, "", object)}
    for i in range(n):
        clip = Clip(Path(str(batch["path"][i])), str(batch["video"][i]), int(batch["label"][i]),
                    str(batch["split"][i]))
        item = decode_or_failure(clip, v, settings.seed, f, s)
        if isinstance(item, Failure):
            out["stage"][i], out["message"][i] = item.stage, item.message
            continue
        out["pixels"][i] = to_uint8(item.pixels)
        out["variant"][i], out["frame_index"][i] = item.variants, item.frame_index
        out["n_frames"][i], out["fps"][i] = item.n_frames, item.fps
    return out


class BackboneActor:
    """Ray actor: the backbone, built once; a block of decoded clips → their features."""

    def __init__(self, settings: RaySettings):
        from vd.extract.network import Backbone

        self.net = Backbone(settings.weights, settings.layer, batch_frames=settings.batch_frames,
                            seed=settings.seed, backbone=settings.backbone)

    def __call__(self, batch: dict) -> dict:
        ok = batch["stage"] == ""
        pixels = batch.pop("pixels")
        n, per = pixels.shape[:2]
        # float16, as the store keeps them (the same rounding the driver would do): half the
        # bytes to send back
        feats = np.zeros((n, per, self.net.dim), np.float16)
        if ok.any():  # the clips of the block in one stream of batches that span clips
            frames = pixels[ok].reshape((-1,) + pixels.shape[2:])
            feats[ok] = self.net(frames).reshape(int(ok.sum()), per, -1).astype(np.float16)
        batch["features"] = feats
        return batch


def _actor_pool(ray) -> dict:
    """map_batches arguments for the backbone: one actor per GPU of the cluster, else one CPU
    actor per ``CPUS_PER_CPU_ACTOR`` CPUs (at least one)."""
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    if gpus:
        return {"compute": ray.data.ActorPoolStrategy(size=gpus), "num_gpus": 1}
    actors = max(1, int(res.get("CPU", 1)) // CPUS_PER_CPU_ACTOR)
    return {"compute": ray.data.ActorPoolStrategy(size=actors), "num_cpus": 1}


def _dataset(ray, clips: list[Clip], settings: RaySettings):
    """The pipeline as a lazy Ray Dataset: clips → decoding tasks → backbone actors."""
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the store is written in input order
    ctx.max_errored_blocks = -1  # a clip whose task fails every retry is recorded, not fatal
    ctx.enable_progress_bars = False
    items = [{"index": i, "path": str(Path(c.path).resolve()), "video": c.video, "label": c.label,
              "split": c.split} for i, c in enumerate(clips)]
    clips_per_call = max(1, -(-settings.batch_frames // settings.frames_per_clip))
    ds = ray.data.from_items(items, override_num_blocks=len(items))  # a clip per block
    # a finite number of tries (Ray Data's default retries forever: a file that crashes its
    # decoder would never end); this also keeps decoding out of the actors (a stage with other
    # remote arguments is not fused into the next), so it overlaps the backbone
    ds = ds.map_batches(decode_rows, fn_kwargs={"settings": settings}, batch_size=1,
                        batch_format="numpy", num_cpus=1, max_retries=DECODE_TRIES - 1)
    return ds.map_batches(BackboneActor, fn_constructor_kwargs={"settings": settings},
                          batch_size=clips_per_call, batch_format="numpy", **_actor_pool(ray))


def _pairs(batch: dict, clips: list[Clip]) -> list[tuple]:
    """One block of results → ``(clip or Failure, features)`` pairs for the store writer."""
    from vd.extract.clips import _Decoded

    out = []
    for i, index in enumerate(batch["index"]):
        clip = clips[int(index)]
        if batch["stage"][i]:
            out.append((Failure(clip.video, str(batch["stage"][i]), str(batch["message"][i])), None))
            continue
        item = _Decoded(clip, None, batch["variant"][i], batch["frame_index"][i],
                        int(batch["n_frames"][i]), float(batch["fps"][i]))
        out.append((item, batch["features"][i]))
    return out


def _in_order(blocks, clips: list[Clip]):
    """Result pairs in input order; a clip Ray dropped (its block failed every retry) becomes
    a failure in its place."""
    expected = 0
    for batch in blocks:
        pairs = _pairs(batch, clips)
        for index, pair in zip(batch["index"], pairs):
            index = int(index)
            lost = [(Failure(c.video, "ray", LOST), None) for c in clips[expected:index]]
            expected = max(expected, index + 1)
            yield lost + [pair]
    yield [(Failure(c.video, "ray", LOST), None) for c in clips[expected:]]


def extract_on_ray(clips: list[Clip], finish: Callable, commit: Callable[[], None],
                   settings: RaySettings) -> None:
    """Run ``clips`` through the cluster; ``finish(pairs)`` gets the results in input order
    as they come back. Ctrl-C: ``commit()`` what is back, then stop (the rerun resumes)."""
    ray = import_ray()
    _connect(ray, settings.address)
    try:
        log.info("Ray cluster: %s", ray.cluster_resources())
        blocks = _dataset(ray, clips, settings).iter_batches(batch_size=None, batch_format="numpy")
        try:
            for pairs in _in_order(blocks, clips):
                finish(pairs)
        except KeyboardInterrupt:
            commit()
            raise
    finally:
        ray.shutdown()
