"""The ``vd`` command: a thin click group whose commands load lazily.

Each command lives in its own module (``vd/cli/*.py``) that imports only click at
module level, so ``vd --help`` never loads TensorFlow. Errors: a :class:`~vd.errors.UserError`
becomes one line on stderr and its exit status (2 by default); any other exception is one
line too (exit 3) unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from vd import __version__
from vd.cli import logs
from vd.errors import UserError, one_line

# name -> "module:attribute". Add a command by adding a line here.
COMMANDS = {
    "extract": "vd.cli.extract:extract",
    "info": "vd.cli.info:info",
    "merge": "vd.cli.merge:merge",
    "train": "vd.cli.train:train",
    "compare": "vd.cli.compare:compare",
    "predict": "vd.cli.predict:predict",
    "evaluate": "vd.cli.evaluate:evaluate",
    "watch": "vd.cli.watch:watch",
    "export": "vd.cli.export:export",
    "serve": "vd.cli.serve:serve",
}


# Commands that load Keras anyway: import it first, quietly (vd.runtime.load_keras).
_KERAS_COMMANDS = {"extract", "train", "compare", "predict", "evaluate", "watch", "export"}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used or listed."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx, name):
        return self._load(name)

    @staticmethod
    def _load(name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            command = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:  # a stage not installed in this checkout yet
            if e.name == module:
                return None
            raise
        if not any(p.name == "log_level" for p in command.params):
            command.params.extend(logs.log_options())
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vd")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@logs.add_log_options
@click.pass_context
def cli(ctx, debug):
    """vd: violence detection in video.

    \b
      vd extract videos/ features.h5   decode, sample 20 frames, backbone features → HDF5
      vd train features.h5             train the hybrid BiLSTM + attention model
      vd predict clip.mp4              score raw video, with test-time augmentation

    Label 1 always means violent. Run `vd COMMAND --help` for each command's options.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv=None) -> int:
    """Console-script entry point: run the CLI and turn errors into one line + exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    logs.configure()  # info, text, on stderr; --log-level/--log-format change it
    if set(args) & _KERAS_COMMANDS and not set(args) & {"--help", "-h"}:
        from vd import runtime

        runtime.load_keras()  # first import with TF's start-up chatter kept off the terminal
    try:
        status = cli.main(args=args, prog_name="vd", standalone_mode=False)
        return status if isinstance(status, int) else 0  # commands return 1 for "some clips failed"
    except UserError as e:
        if debug:
            raise
        click.echo(f"vd: error: {e.message}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return 2
    except click.Abort:
        click.echo("vd: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("vd: interrupted", err=True)
        return 130
    except Exception as e:  # a bug, not the user's input: still one line unless --debug
        if debug:
            raise
        click.echo(f"vd: internal error: {one_line(e, typed=True)} (rerun with --debug for "
                   f"the traceback)", err=True)
        return 3


if __name__ == "__main__":
    sys.exit(main())
