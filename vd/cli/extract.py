"""``vd extract`` and ``vd info``: build a feature store from videos, and describe one."""

from __future__ import annotations

import json
from collections import Counter

import click

from vd.cli.progress import Progress, echo_failures, format_duration
from vd.extract.registry import DEFAULT_BACKBONE, REGISTRY


def _backbone_help() -> str:
    """``--backbone``'s help: every registered backbone with its layers, dimension and cost."""
    return ("Feature extractor; the model trains on its features and predict rebuilds it. "
            "Choices: " + "; ".join(spec.describe() for spec in REGISTRY.values()) + ".")


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
@click.option("--overwrite", is_flag=True, help="Start over instead of resuming an existing store.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line, only the summary and errors.")
def extract(videos, output, weights, backbone, layer, augment, batch_frames, batch_clips, labels_csv, shard_clips, seed,
            shard_spec, workers, overwrite, quiet):
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

    bar = Progress("extract", enabled=not quiet)

    def on_progress(s, todo):
        bar.update(s.clips_ok + s.clips_failed, todo, s.frames, s.seconds, s.clips_failed)

    try:
        s = run_extract(videos, output, weights=weights, backbone=backbone, layer=layer,
                        augment=augment,
                        batch_frames=batch_frames, batch_clips=batch_clips,
                        labels_csv=labels_csv, overwrite=overwrite,
                        seed=seed, shard_clips=shard_clips, shard=parse_shard(shard_spec),
                        workers=_workers(workers), progress=on_progress)
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


def describe_store(path) -> dict:
    """Counts per label / split / variant, failures and attributes of a store, as data."""
    from vd.data.store import open_store

    with open_store(path) as st:
        first = {v: i for i, v in reversed(list(enumerate(st.video)))}
        clip_rows = list(first.values())
        return {
            "path": str(path),
            "rows": st.n,
            "clips": len(first),
            "frames": st.frames,
            "feature_dim": st.dim,
            "clips_per_label": {int(k): v for k, v in sorted(Counter(st.label[clip_rows].tolist()).items())},
            "clips_per_split": dict(sorted(Counter(st.split[clip_rows].tolist()).items())),
            "rows_per_variant": {int(k): v for k, v in sorted(Counter(st.variant.tolist()).items())},
            "failures": [{"video": f.video, "stage": f.stage, "message": f.message} for f in st.failures],
            "unindexed_shards": st.unindexed_shards,
            "attrs": st.attrs,
        }


@click.command()
@click.argument("store", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(store, as_json):
    """Describe a feature store: clips per label, split and variant, failures with their
    reasons, and the extractor settings that made it."""
    d = describe_store(store)
    if as_json:
        click.echo(json.dumps(d, indent=2, default=str))
        return 0
    names = {1: "violent", 0: "nonviolent", -1: "unknown"}
    click.echo(f"{d['path']}: {d['clips']} clips, {d['rows']} rows of {d['frames']} x {d['feature_dim']}")
    a = d["attrs"]
    click.echo(f"  backbone: {a.get('backbone', '?')} {a.get('layer', '?')} "
               f"({a.get('feature_dim', '?')}-d, {a.get('image_size', '?')}px, "
               f"weights {a.get('weights', '?')})")
    click.echo("  labels:   " + ", ".join(f"{names.get(k, k)} {v}" for k, v in d["clips_per_label"].items()))
    click.echo("  splits:   " + ", ".join(f"{k or '(none)'} {v}" for k, v in d["clips_per_split"].items()))
    click.echo("  variants: " + ", ".join(f"{k}: {v} rows" for k, v in d["rows_per_variant"].items()))
    click.echo(f"  failures: {len(d['failures'])}")
    if d["unindexed_shards"]:
        click.echo(f"  note:     {d['unindexed_shards']} committed shard(s) are not in this index yet "
                   f"(a run was interrupted); run the same `vd extract` command again to add them")
    for f in d["failures"]:
        click.echo(f"    {f['video']} [{f['stage']}]: {f['message']}")
    click.echo("  attributes:")
    for k, v in sorted(d["attrs"].items()):
        click.echo(f"    {k} = {v}")
    return 0


@click.command()
@click.argument("output", type=click.Path(path_type=str))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
def merge(output, inputs):
    """Join feature stores made by `vd extract --shard i/n` (or on different machines) into one
    plain OUTPUT store. Mixed extractor settings are refused; a clip present in several inputs
    is kept once; clips are ordered by path, as a one-shot extract writes them."""
    from vd.data.merge import merge_stores

    s = merge_stores(output, inputs)
    dup = f", {len(s.duplicates)} duplicate clip(s) kept once" if s.duplicates else ""
    click.echo(f"merged {s.parts} stores: {s.clips} clips, {s.rows} rows, {s.failures} failures{dup} -> {s.output}",
               err=True)
    return 0
