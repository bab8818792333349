"""``vd extract``: build a feature store from videos (thin over :func:`vd.extract.run.run_extract`)."""

from __future__ import annotations

import click

from vd.cli.progress import Progress, echo_failures, format_duration
from vd.extract.registry import DEFAULT_BACKBONE, REGISTRY


def _backbone_help() -> str:
    """``--backbone``'s help: every registered backbone with its layers, dimension and cost."""
    return ("Feature extractor; the model trains on its features and predict rebuilds it. "
            "Choices: " + "; ".join(spec.describe() for spec in REGISTRY.values()) + ". "
            "NAME+pixels (e.g. mobilenet_v3_small+pixels) also stores each frame's 32x32 grey "
            "thumbnail (1,024 more columns), from which models measure motion with camera "
            "shake and brightness changes taken out.")


@click.command()
@click.argument("videos", type=click.Path(path_type=str))
@click.argument("output", type=click.Path(path_type=str))
@click.option("--weights", default="imagenet", show_default=True,
              help="Backbone weights: 'imagenet' (Keras downloads and caches them), a local "
                   ".h5/.weights.h5 file, or 'random' (seeded; for tests and demos).")
@click.option("--backbone", default=DEFAULT_BACKBONE, show_default=True, metavar="NAME",
              help=_backbone_help())
@click.option("--layer", default=None, metavar="NAME",
              help="Layer of the backbone whose output is stored per frame (default: the "
                   "backbone's first layer listed under --backbone, e.g. fc2 for vgg16).")
@click.option("--augment", type=int, default=1, show_default=True,
              help="Variants per clip: 1 = original frames only; N adds N-1 augmented copies "
                   "(brightness ±15%, noise σ=0.01, temporal jitter). The hybrid preset trains on 3.")
@click.option("--batch-frames", type=int, default=32, show_default=True,
              help="Frames per backbone call (batches span clips). Raise it on a GPU.")
@click.option("--batch-clips", type=int, default=None,
              help="Alternative to --batch-frames: this many clips' frames (all their "
                   "variants) per backbone call.")
@click.option("--labels", "labels_csv", type=click.Path(path_type=str),
              help="CSV of path,label (1/violent, 0/nonviolent) overriding folder names.")
@click.option("--shard-clips", type=int, default=64, show_default=True,
              help="Clips per shard file: a crash loses at most the shard in progress.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for augmentation and random weights.")
@click.option("--shard", "shard_spec", metavar="I/N|auto",
              help="Process only part I of N of the clips (stable hash of the path), e.g. one task "
                   "of a SLURM array or Kubernetes Indexed Job; 'auto' reads the scheduler's "
                   "variables. Join the parts with `vd merge`.")
@click.option("--workers", default="auto", show_default=True, metavar="N|auto",
              help="Decode processes. 0 = one background thread (enough on a CPU, where VGG16 is "
                   "~100x slower than decoding); auto = 0 on CPU, min(8, cores/2) with a GPU.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local = this machine; ray = Ray Data on a Ray cluster (decoding as CPU tasks, "
                   "the backbone in one actor per GPU; needs the ray extra). The same store.")
@click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
              help="With --engine ray: the cluster to join (auto = the one `ray start` made on "
                   "this node); default: a Ray instance on this machine.")
@click.option("--annotations", "annotations", type=click.Path(path_type=str), default=None,
              help="VIDEOS are untrimmed recordings and this file (CSV video,start_s,end_s; "
                   "UCF-Crime; XD-Violence) names their violent intervals: store one row per "
                   "window vd watch would score, labelled by overlap (>= half violent -> 1, none "
                   "-> 0, in between left out); see docs/extract.md.")
@click.option("--annotations-format", type=click.Choice(["auto", "csv", "ucf-crime", "xd-violence"]),
              default="auto", show_default=True, help="With --annotations: the file's format.")
@click.option("--window", type=float, default=None,
              help="With --annotations: window length in seconds (use vd watch's --window; "
                   "default 2, vd watch's own default).")
@click.option("--stride", type=float, default=None,
              help="With --annotations: seconds between window starts (default: half the window).")
@click.option("--overwrite", is_flag=True, help="Start over instead of resuming an existing store.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line, only the summary and errors.")
def extract(videos, output, weights, backbone, layer, augment, batch_frames, batch_clips, labels_csv, shard_clips, seed,
            shard_spec, workers, engine, ray_address, annotations, annotations_format, window, stride,
            overwrite, quiet):
    """Decode VIDEOS (a folder, walked recursively, or one file), sample 20 frames per clip,
    and store one backbone feature vector per frame (--backbone, VGG16 fc2 by default) in
    OUTPUT (an HDF5 index plus OUTPUT-stem.shards/).

    Labels come from folder names (Fight/Violence → 1, NonFight/NonViolence → 0), splits from
    train/val/test folders. Rerunning the same command resumes where it stopped.

    Exit status: 0 all clips extracted, 1 some clips failed (they are recorded in the store
    with a reason; the store is valid), 2 a usage error (nothing done).
    """
    from vd.data.discover import parse_shard
    from vd.extract.run import run_extract

    if annotations is not None:
        return _recordings(videos, output, annotations, annotations_format, window, stride,
                           weights, backbone, layer, seed, batch_frames, overwrite, quiet,
                           augment=augment, labels_csv=labels_csv, shard_spec=shard_spec,
                           engine=engine)
    if window is not None or stride is not None:
        from vd.errors import UserError

        raise UserError("--window and --stride apply to recordings: give --annotations too")
    bar = Progress("extract", enabled=not quiet)

    def on_progress(s, todo):
        bar.update(s.clips_ok + s.clips_failed, todo, s.frames, s.seconds, s.clips_failed)

    try:
        s = run_extract(videos, output, weights=weights, backbone=backbone, layer=layer,
                        augment=augment,
                        batch_frames=batch_frames, batch_clips=batch_clips,
                        labels_csv=labels_csv, overwrite=overwrite,
                        seed=seed, shard_clips=shard_clips, shard=parse_shard(shard_spec),
                        workers=_workers(workers), progress=on_progress,
                        engine=engine, ray_address=ray_address)
    finally:
        bar.close()
    echo_failures(s.failures)
    skipped = f", {s.clips_skipped} already done" if s.clips_skipped else ""
    click.echo(f"extracted {s.clips_ok} clips ({s.rows} rows), {s.clips_failed} failed{skipped}; "
               f"{s.frames} frames in {format_duration(s.seconds)} "
               f"({s.frames_per_second:.1f} frames/s) -> {s.output}", err=True)
    if s.failed_total:
        click.echo(f"{s.failed_total} clip(s) in the store failed; `vd info {s.output}` lists them",
                   err=True)
        return 1
    return 0


def _recordings(videos, output, annotations, annotations_format, window, stride, weights,
                backbone, layer, seed, batch_frames, overwrite, quiet, **refused) -> int:
    """``vd extract RECORDINGS OUT --annotations FILE``: window rows (vd.score.recording_windows)."""
    from vd.errors import UserError
    from vd.score.recording_windows import extract_recordings

    bad = [f"--{k.replace('_csv', '').replace('_spec', '').replace('_', '-')}"
           for k, v in refused.items() if v not in (None, 1, "local")]
    if bad:
        raise UserError(f"{', '.join(bad)} cannot be used with --annotations")
    bar = Progress("extract", enabled=not quiet)

    def on_progress(s, todo):
        bar.update(s.recordings_ok + s.recordings_failed, todo, s.frames, s.seconds, s.recordings_failed)

    try:
        s = extract_recordings(videos, output, annotations, window=2.0 if window is None else window,
                               stride=stride,
                               annotations_format=annotations_format, weights=weights,
                               layer=layer, backbone=backbone, seed=seed,
                               batch_frames=batch_frames, overwrite=overwrite, progress=on_progress)
    finally:
        bar.close()
    echo_failures(s.failures)
    skipped = f", {s.recordings_skipped} already done" if s.recordings_skipped else ""
    click.echo(f"extracted {s.recordings_ok} recordings ({s.rows} windows, {s.violent_rows} violent, "
               f"{s.ambiguous} ambiguous left out), {s.recordings_failed} failed{skipped}; "
               f"{s.frames} frames in {format_duration(s.seconds)} -> {s.output}", err=True)
    if s.failed_total:
        click.echo(f"{s.failed_total} recording(s) in the store failed; `vd info {s.output}` "
                   f"lists them", err=True)
        return 1
    return 0


def _workers(value: str) -> int:
    from vd.errors import UserError

    if value == "auto":
        import os

        from vd import runtime

        return min(8, max(1, (os.cpu_count() or 2) // 2)) if runtime.gpu_count() else 0
    try:
        n = int(value)
    except ValueError:
        raise UserError(f"--workers must be a number or 'auto', not {value!r}") from None
    if n < 0:
        raise UserError("--workers must be >= 0")
    return n
