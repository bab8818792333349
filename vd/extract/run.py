"""Stage one driver: videos → sampled frames → backbone features → sharded HDF5 store.

Decoding runs ahead in a background thread or processes (OpenCV and the backbone both release
the GIL), feeding a bounded queue. The backbone takes frames in full fixed-size batches across
clip boundaries; where a GPU is visible it runs in its own thread, up to two batches ahead, while
this thread assembles the next batch and writes finished clips (an accelerator is not left
waiting for the host); on a CPU it runs in this thread. The store writer commits a shard every
``shard_clips`` clips, clips and failures in input order. A clip that fails is recorded in the
store with a one-line reason and the run goes on; Ctrl-C commits what is finished and stops.
Rerunning the same command resumes: clips already in a committed shard are skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd import faults
from vd.data.discover import Clip, discover, select_shard
from vd.data.store import ClipRows, Failure, StoreWriter, base_attrs, open_store
from vd.errors import UserError
from vd.outputs import check_output
from vd.extract.clips import (FrameBatcher, PipelinedBatcher, _Decoded, _process_stream,  # noqa: F401
                              decode_clip, decode_or_failure, decoded_stream)
from vd.extract.sampling import FRAMES


@dataclass
class ExtractSummary:
    """What a run did. ``failed_total`` counts failures in the whole store, earlier runs too."""

    output: Path
    clips_found: int
    clips_skipped: int = 0
    clips_ok: int = 0
    clips_failed: int = 0
    rows: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    failed_total: int = 0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _rows(item: _Decoded, feats: np.ndarray, frames: int) -> ClipRows:
    v = len(item.variants)
    return ClipRows(video=item.clip.video, label=item.clip.label, split=item.clip.split,
                    features=feats.reshape(v, frames, -1).astype(np.float16),
                    variant=item.variants, frame_index=item.frame_index,
                    n_frames=item.n_frames, fps=item.fps)


def _finisher(writer: StoreWriter, summary: ExtractSummary, frames: int, start: float,
              progress, total: int):
    """What to do with finished ``(clip, features)`` pairs, in input order: write each clip's
    rows (or its failure) to the store and count it; any engine hands its results here."""

    def finish(pairs):
        for item, feats in pairs:
            if isinstance(item, Failure):
                writer.add_failure(item)
                summary.clips_failed += 1
                summary.failures.append(item)
            else:
                faults.point("clip-done")
                writer.add(_rows(item, feats, frames))
                summary.clips_ok += 1
                summary.rows += len(item.variants)
                summary.frames += item.frame_index.size
                summary.seconds = time.perf_counter() - start
            if progress:
                progress(summary, total)

    return finish


def store_attrs(weights_label: str, layer: str | None, augment: int, seed: int, frames: int,
                backbone: str | None = None) -> dict:
    """The attributes of a store extracted with these settings: the extractor's (backbone,
    layer, feature_dim, image_size, preprocess, weights; ``backbone`` None = VGG16, ``layer``
    None = its default) plus the augmentation recipe and seed."""
    from vd.extract.augment import BRIGHTNESS, NOISE_SIGMA
    from vd.extract.network import extractor_attrs

    attrs = base_attrs(frames=frames)
    attrs.update(extractor_attrs(weights_label, layer, backbone))
    attrs.update({
        "augment": int(augment),
        "augment_recipe": f"brightness±{BRIGHTNESS:g}, noise σ={NOISE_SIGMA:g} on 0–1, "
                          f"temporal jitter in 4-frame windows",
        "seed": int(seed),
    })
    return attrs


def _check_run(output, augment, batch_frames, batch_clips, frames, engine, dispatch, overwrite) -> int:
    """The run's options checked before anything is touched; returns the frames per batch."""
    if batch_clips is not None:
        if batch_clips < 1:
            raise UserError(f"--batch-clips must be at least 1, not {batch_clips}")
        batch_frames = int(batch_clips) * int(frames) * int(augment)  # frames per clip, all variants
    if engine not in ("local", "ray"):
        raise UserError(f"--engine must be 'local' or 'ray', not {engine!r}")
    if engine == "ray":
        from vd.extract.engines.ray import import_ray

        import_ray()  # a missing extra is one line now, before the store is touched
    if dispatch not in ("auto", "async", "sync"):
        raise ValueError(f"dispatch must be 'auto', 'async' or 'sync', not {dispatch!r}")
    if batch_frames < 1:
        raise UserError(f"--batch-frames must be at least 1, not {batch_frames}")
    output = Path(output)
    if augment < 1:
        raise UserError("--augment must be at least 1 (1 = original frames only)")
    if output.is_dir() and not output.is_symlink():
        raise UserError(f"output is a directory; give a file name such as {output / 'features.h5'}")
    check_output(output, "store", overwrite=overwrite)  # a FIFO, a device, someone's file: refused
    return batch_frames


def _backbone(weights, layer, batch_frames, seed, spec):
    from vd.extract.network import Backbone

    return Backbone(weights, layer, batch_frames=batch_frames, seed=seed, backbone=spec.name)


def _extract_locally(stream, net, batch_frames: int, dispatch: str, finish, writer) -> None:
    """Every decoded clip of ``stream`` through ``net`` in batches that span clips; each
    finished clip handed to ``finish`` in input order."""
    if dispatch == "auto":
        from vd import runtime

        dispatch = "async" if runtime.gpu_count() else "sync"
    batcher = (PipelinedBatcher(net, batch_frames) if dispatch == "async"
               else FrameBatcher(net, batch_frames))
    try:
        for item in stream:
            finish(batcher.add(item))
        finish(batcher.flush())
    except KeyboardInterrupt:
        # keep every finished clip (also those whose features came back while this
        # thread waited for the backbone); the rerun resumes after them
        finish(batcher.ready())
        writer.commit()
        raise
    finally:
        stream.close()  # now, not when the traceback goes: stops decoding, frees its blocks
        batcher.close()


def run_extract(input_path, output, *, weights: str = "imagenet", layer: str | None = None,
                backbone: str | None = None,
                augment: int = 1, batch_frames: int = 32, batch_clips: int | None = None,
                labels_csv=None,
                overwrite: bool = False, seed: int = 0, shard_clips: int = 64,
                frames: int = FRAMES, shard: tuple[int, int] | None = None,
                workers: int = 0, warm_up: bool = False, progress=None,
                network=None, dispatch: str = "auto", engine: str = "local",
                ray_address: str | None = None) -> ExtractSummary:
    """Extract features for every video under ``input_path`` into the store ``output``.

    ``backbone``: a registry name (:mod:`vd.extract.registry`; None = VGG16), ``layer`` None =
    that backbone's default layer. ``batch_clips``, when given, replaces ``batch_frames`` by
    that many clips' frames: ``batch_clips × frames × augment``.
    ``workers`` decode processes (0 = one background thread). ``warm_up`` runs one batch
    before the clock starts (benchmarks: excludes XLA/graph compilation from the rates).
    ``shard=(i, n)`` processes only part ``i`` of ``n`` of the clips (see
    ``vd.data.discover.shard_of``); ``vd merge`` joins the parts.
    ``progress(summary, total_todo)`` is called after each clip (for a progress bar).
    ``network``: benchmarks only — a callable (N, S, S, 3) uint8 → (N, D) float32 used instead
    of building the backbone (bench/extract_host_ceiling.py passes a zero-cost one to measure
    decode + sample + batch + write alone); the store still records the named backbone.
    ``dispatch``: "async" runs the backbone in its own thread, up to two assembled batches
    ahead, while this thread assembles the next batch and writes finished clips; "sync" calls
    it in this thread; "auto" (default) = async when the backend sees a GPU, else sync (on a
    CPU the backbone already uses every core and decoding already runs ahead: async measured
    no gain there, and in one of three runs 0.90 x). The same batches, so the same features,
    either way. Clips and failures are written in input order, so shards do not depend on timing.
    ``engine``: "local" (this machine, as above) or "ray" (Ray Data over a Ray cluster at
    ``ray_address``, None = a local one: see :mod:`vd.extract.engines.ray`; the same store).
    Raises :class:`UserError` for problems with the inputs or output (nothing is written).
    """
    from vd.extract.network import describe_weights
    from vd.extract.registry import get_spec

    spec = get_spec(backbone)
    layer = spec.check_layer(layer)
    batch_frames = _check_run(output, augment, batch_frames, batch_clips, frames, engine, dispatch,
                              overwrite)
    output = Path(output)
    clips = select_shard(discover(input_path, labels_csv), shard)
    weights_label, _ = describe_weights(weights, seed)
    attrs = store_attrs(weights_label, layer, augment, seed, frames, spec.name)
    summary = ExtractSummary(output=output, clips_found=len(clips))
    start = time.perf_counter()
    with StoreWriter(output, attrs, shard_clips=shard_clips, overwrite=overwrite) as writer:
        done = writer.done()
        todo = [c for c in clips if c.video not in done]
        summary.clips_skipped = len(clips) - len(todo)
        if todo and engine == "ray":  # Ray Data across a cluster: vd/extract/engines/ray.py
            from vd.extract.engines.ray import RaySettings, extract_on_ray

            start = time.perf_counter()
            extract_on_ray(todo, _finisher(writer, summary, frames, start, progress, len(todo)),
                           writer.commit, RaySettings(weights, layer, spec.name, augment, seed, frames,
                                                      batch_frames, spec.input_size, ray_address))
        elif todo:
            net = network if network is not None else _backbone(weights, layer, batch_frames, seed, spec)
            if warm_up:
                net(np.zeros((batch_frames, spec.input_size, spec.input_size, 3), np.uint8))
            start = time.perf_counter()  # rates measure extraction, not building the network
            finish = _finisher(writer, summary, frames, start, progress, len(todo))
            stream = decoded_stream(todo, augment, seed, frames, workers=workers, size=spec.input_size)
            _extract_locally(stream, net, batch_frames, dispatch, finish, writer)
    summary.seconds = time.perf_counter() - start
    faults.point("end")
    with open_store(output) as store:
        summary.failed_total = len(store.failures)
    return summary
