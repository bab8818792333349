"""The vd command's logging: one configuration, text for people, JSON lines for collectors."""

import json
import subprocess
import sys

SCRIPT = r"""
import logging, sys
import click
from vd.cli import main as m

@click.command()
def speak():
    logging.getLogger("vd.data.store").info("plain line")
    logging.getLogger("vd.live.camera.door").warning("stalled for 5 s")
    logging.getLogger("vd.score").debug("detail")

m.COMMANDS["speak"] = "__main__:speak"
sys.exit(m.main(sys.argv[1:]))
"""


def _run(*args):
    p = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""  # logs never reach stdout, where results go
    return p.stderr.splitlines()


def test_text_lines_for_people():
    assert _run("speak") == ["plain line", "vd: warning: [door] stalled for 5 s"]


def test_json_one_object_per_line_on_the_command_or_the_group():
    for args in (["speak", "--log-format", "json"], ["--log-format", "json", "speak"]):
        objs = [json.loads(line) for line in _run(*args)]
        assert [o["message"] for o in objs] == ["plain line", "stalled for 5 s"]
        assert [o["level"] for o in objs] == ["info", "warning"]
        assert objs[1]["camera"] == "door" and "camera" not in objs[0]
        assert objs[0]["logger"] == "vd.data.store" and objs[0]["time"].endswith("+00:00")


def test_level_filters():
    assert _run("speak", "--log-level", "warning") == ["vd: warning: [door] stalled for 5 s"]
    assert len(_run("speak", "--log-level", "debug")) == 3
