"""``vd info``: describe a feature store (clips per label, split and variant, failures, the
extractor settings that made it)."""

from __future__ import annotations

import json
from collections import Counter

import click


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
