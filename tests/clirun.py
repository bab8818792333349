"""Run the `vd` CLI in-process and capture what it prints (the tests' one way to do it)."""

import contextlib
import io

from vd.cli.main import main


def run_cli(args):
    """``vd ARGS`` in this process → (exit status, stdout text, stderr text)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    return status, out.getvalue(), err.getvalue()
