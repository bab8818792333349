"""The options ``vd predict`` and ``vd evaluate`` share (which run, TTA, threshold, backbone
weights, ``--quiet``) and their progress line, declared once."""

from __future__ import annotations

import click

from vd.cli.progress import Progress

_MODEL = click.option("--model", "model", type=click.Path(path_type=str), default=None,
                      help="Run folder from `vd train` (default: the newest under --runs).")
_RUNS = click.option("--runs", "runs_root", default="runs", show_default=True,
                     type=click.Path(path_type=str), help="Where to look for the newest run.")
_NO_TTA = click.option("--no-tta", is_flag=True,
                       help="Score the original frames only (5x faster, less robust).")
_ANGLE = click.option("--tta-angle", type=float, default=10.0, show_default=True,
                      help="TTA rotation ±degrees (at most 15).")
_THRESHOLD = click.option("--threshold", type=float, default=None,
                          help="Violent when P(violent) ≥ this (default: the run's, 0.5).")
_WEIGHTS = click.option("--weights", default=None,
                        help="Backbone weights (default: what the model was trained with; a weights "
                             "file must be passed again and its sha256 must match).")


def scoring_options(command):
    """The options predict and evaluate share: which run, TTA, threshold, backbone weights."""
    for option in reversed((_MODEL, _RUNS, _NO_TTA, _ANGLE, _THRESHOLD, _WEIGHTS)):
        command = option(command)
    return command


QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress line.")


def progress_bar(quiet):
    """A progress line on stderr (none with --quiet) and the callback that advances it."""
    bar = Progress("predict", enabled=not quiet)

    def update(done, total, frames, seconds, failed):
        bar.update(done, total, frames, seconds, failed)

    return bar, update
