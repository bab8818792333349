"""Install packages into vd's virtual environment: with uv where it can, else with pip.

``make install`` (vd with its dev extras) and ``make tools`` (a local CPU torch wheel) call
it. uv installs the same packages faster than pip, as it unpacks wheels on every core where
pip unpacks one after another (on 2 cores, a fresh `.venv` with empty caches: 39-41 s with
uv, 51-68 s with pip, compiling included). But uv does not read pip's configuration, and a
machine's pip configuration is where its package indexes, mirrors, wheel folders and
constraints are named. So this script reads pip's configuration (``pip config list``) and
hands each setting to uv as the flag that means the same. Where that is not possible it uses
pip and says why on stderr: a pip setting this script does not know (uv would install from
other places than pip would), or uv could not be installed. Either way the installed
modules are compiled to bytecode on every core, so no process compiles them when it imports
them (vd's tests start many).

    python tools/venv_install.py .venv -e '.[dev]'
    python tools/venv_install.py .venv /path/to/torch-*.whl

``VD_INSTALLER=pip`` uses pip whatever uv could do.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

# pip settings with the uv flag that means the same; a setting that holds several values
# (separated by whitespace, as pip writes them) becomes the flag once per value.
FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "trusted-host": "--allow-insecure-host",
}
# pip settings that change nothing about which files are installed, or that uv takes from
# the environment instead of a flag (see ``uv_environment``).
HARMLESS = {"cert", "timeout", "default-timeout", "disable-pip-version-check", "progress-bar",
            "no-input", "quiet", "verbose", "retries", "no-color", "root-user-action",
            "no-compile", "proxy", "no-cache-dir", "cache-dir"}


def pip_settings(python: str) -> dict[str, str]:
    """pip's effective settings, as ``pip config list`` shows them (the environment's last)."""
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, check=True).stdout
    settings: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        scope, name = key.split(".", 1)
        (env if scope == ":env:" else settings)[name] = ast.literal_eval(value)
    settings.update(env)   # PIP_* variables override pip's files, as in pip itself
    return settings


def uv_arguments(settings: dict[str, str]) -> list[str]:
    """The uv flags that install from where pip would; ValueError names a setting uv lacks."""
    unknown = sorted(set(settings) - set(FLAGS) - HARMLESS)
    if unknown:
        raise ValueError(f"pip setting {', '.join(unknown)} has no uv equivalent here")
    args: list[str] = []
    for name, flag in FLAGS.items():
        for value in settings.get(name, "").split():
            args += [flag, value]
    # pip takes the best version from all its indexes together; uv by default takes a
    # package from the first index that has it
    return args + ["--index-strategy", "unsafe-best-match"]


def uv_environment(settings: dict[str, str]) -> dict[str, str]:
    """The environment for uv: pip's certificate bundle, proxy and timeout."""
    env = dict(os.environ)
    if "cert" in settings:
        env.setdefault("SSL_CERT_FILE", settings["cert"])
    if "proxy" in settings:
        env.setdefault("HTTPS_PROXY", settings["proxy"])
        env.setdefault("HTTP_PROXY", settings["proxy"])
    timeout = settings.get("timeout") or settings.get("default-timeout")
    if timeout:
        env.setdefault("UV_HTTP_TIMEOUT", str(timeout))
    return env


def install_with_uv(python: str, packages: list[str]) -> bool:
    """Install ``packages`` with uv and compile them; False (and why, on stderr) if it cannot."""
    try:
        settings = pip_settings(python)
        args = uv_arguments(settings)
    except (subprocess.CalledProcessError, ValueError, SyntaxError) as e:
        print(f"venv_install: using pip ({e})", file=sys.stderr)
        return False
    uv = Path(python).parent / "uv"
    if not uv.exists():
        got = subprocess.run([python, "-m", "pip", "install", "-qq", "uv"])
        if got.returncode != 0 or not uv.exists():
            print("venv_install: using pip (uv could not be installed)", file=sys.stderr)
            return False
    subprocess.run([str(uv), "pip", "install", "-q", "--python", python, "--compile-bytecode",
                    *args, *packages], env=uv_environment(settings), check=True)
    return True


def install_with_pip(python: str, packages: list[str]) -> None:
    """pip without its one-file-at-a-time compile, then compileall on every core."""
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-compile", *packages], check=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # bytecode is only a cache: a file it cannot compile (some packages ship templates named
    # .py) is compiled, or refused, when it is imported
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", purelib],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: venv_install.py VENV PACKAGE_OR_PIP_ARGUMENT...", file=sys.stderr)
        return 2
    python = str(Path(argv[0]) / "bin" / "python")
    packages = argv[1:]
    if os.environ.get("VD_INSTALLER") == "pip" or not install_with_uv(python, packages):
        install_with_pip(python, packages)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as e:
        tool = Path(e.cmd[0]).name
        hint = "; VD_INSTALLER=pip installs with pip instead" if tool == "uv" else ""
        print(f"venv_install: {tool} failed (exit {e.returncode}){hint}", file=sys.stderr)
        sys.exit(1)
