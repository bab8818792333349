"""The ``vd`` command: a thin click group whose commands load lazily.

Each command lives in its own module (``vd/cli/*.py``) that imports only click at
module level, so ``vd --help`` never loads TensorFlow. Errors: a :class:`~vd.errors.UserError`
becomes one line on stderr and its exit status (2 by default); any other exception is one
line too (exit 3) unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
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


# Commands that load Keras: its first import, wherever it happens, goes through
# vd.runtime.load_keras (TensorFlow's start-up chatter kept off the terminal).
_KERAS_COMMANDS = {"extract", "train", "compare", "predict", "evaluate", "watch", "export"}


class _QuietKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The first ``import keras`` (or ``tensorflow``) of a Keras command runs
    :func:`vd.runtime.load_keras` instead of a plain import.

    Importing them costs seconds (a TensorFlow start-up); importing them before the command
    ran (as vd once did) made every refusal of a bad argument, path or run folder wait for
    it. Hooked here, a command that fails before it needs a model answers at once, and one
    that needs it still gets the quiet import wherever the first ``import keras`` is."""

    @classmethod
    def install(cls) -> None:
        if not any(isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.insert(0, cls())

    def find_spec(self, name, path=None, target=None):
        if name not in ("keras", "tensorflow") or name in sys.modules:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        """Import ``spec.name`` the quiet way (this finder steps aside first, so the real
        import runs) and hand the import system that module."""
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        from vd import runtime

        runtime.load_keras()
        if spec.name not in sys.modules:  # tensorflow under another Keras backend
            importlib.import_module(spec.name)
        module = sys.modules[spec.name]
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module):
        """Already executed: only its own ``__spec__`` goes back (the import system set ours)."""
        module.__spec__ = self._real_spec


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
        _QuietKerasImport.install()
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
