"""``vd merge``: join feature stores made in parts (``vd extract --shard i/n``) into one."""

from __future__ import annotations

import click


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
