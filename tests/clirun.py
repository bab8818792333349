"""Run the `vd` CLI in-process and capture what it prints (the tests' one way to do it)."""

import contextlib
import io
import json

from vd.cli.main import main


def run_cli(args):
    """``vd ARGS`` in this process → (exit status, stdout text, stderr text)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    return status, out.getvalue(), err.getvalue()


def predict_rows(run, clips) -> list[dict]:
    """``vd predict CLIPS --model RUN --json --no-tta -q``: one parsed JSON row per clip, after
    checking it exited 0."""
    status, out, err = run_cli(["predict", *map(str, clips), "--model", str(run), "--json",
                                "--no-tta", "-q"])
    assert status == 0, err
    return [json.loads(line) for line in out.strip().splitlines()]
