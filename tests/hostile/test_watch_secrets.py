"""Credentials in a camera URL never reach a log line, a name, an event, a score, the API or
the metrics: a real `vd watch` and a real `vd serve` beside an unreachable
``rtsp://admin:hunter2@127.0.0.1:<closed>/cam?user=admin&password=hunter3`` (it fails, is
retried and logged). Both runs log with ``--log-format json``: every stderr line must parse."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from watchproc import REPO, Watch, closed_port, file_lines, json_lines
from watchproc import reap  # noqa: F401 (autouse: kills a vd watch a failed test left running)

from vd.redact import display_name, redact_text, redact_url

pytestmark = pytest.mark.slow  # light_run is trained (keras fit)
SECRETS = ("hunter2", "hunter3")


def _camera():
    return f"rtsp://admin:hunter2@127.0.0.1:{closed_port()}/cam?user=admin&password=hunter3"


def test_redaction_rules():
    url = "rtsp://admin:hunter2@cam:554/live?User=admin&PassWord=hunter3&X-Amz-Signature=s1&ch=1"
    assert redact_url(url) == "rtsp://***@cam:554/live?User=admin&PassWord=***&X-Amz-Signature=***&ch=1"
    assert display_name(url) == "cam:554/live?User=admin&PassWord=***&X-Amz-Signature=***&ch=1"
    text = f"cannot open stream {url}: refused; token=abc apikey=k2 pwd=p3"
    clean = redact_text(text)
    assert not any(s in clean for s in ("hunter2", "hunter3", "s1", "abc", "k2", "p3")), clean
    assert redact_text(clean) == clean and "ch=1" in clean


def test_watch_with_credentials_in_the_url_shows_none(light_run, long_clip, tmp_path):
    path, _ = long_clip
    ev, sc = tmp_path / "events.jsonl", tmp_path / "scores.jsonl"
    w = Watch([path, _camera(), "--model", light_run, "--window", "2", "--stride", "1",
               "--threshold", "0.01", "--events", ev, "--scores", sc, "--clips", tmp_path / "clips",
               "--timeout", "1", "--backoff-cap", "1", "--status-every", "1"], tmp_path)
    # the file is scored through (11 windows), the camera retried meanwhile
    assert w.wait_for(lambda: len(file_lines(sc)) >= 11 and "cannot connect" in w.err), w.err
    w.proc.send_signal(signal.SIGTERM)
    assert w.finish() == 143, w.err
    err, out = w.err, "".join(w.out)
    logs = json_lines(err)
    assert any("cannot connect" in o["message"] for o in logs)
    cams = {o.get("camera") for o in logs} - {None, path.name}
    assert cams and all("password=***" in c for c in cams), cams
    for name, text in (("stderr", err), ("stdout", out), ("events", ev.read_text()),
                       ("scores", sc.read_text())):
        assert not any(s in text for s in SECRETS), f"a secret in {name}"
    assert any(e["type"] == "start" for e in file_lines(ev))
    assert not any(s in p.name for s in SECRETS for p in (tmp_path / "clips").iterdir())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_with_credentials_in_the_url_shows_none(light_run, long_clip, tmp_path):
    path, _ = long_clip
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    err_path = tmp_path / "stderr.txt"
    cmd = [sys.executable, "-m", "vd.cli.main", "--log-format", "json", "serve", "--model",
           str(light_run), "--port", str(port), "--watch", _camera(), "--watch", str(path),
           "--window", "2", "--stride", "1", "--threshold", "0.01", "--clips", str(tmp_path / "clips"),
           "--timeout", "1", "--backoff-cap", "1", "--status-every", "1"]
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        sources = metrics = None
        end = time.monotonic() + 150
        while time.monotonic() < end and proc.poll() is None:
            try:
                sources = json.loads(urllib.request.urlopen(base + "/v1/sources", timeout=5).read())
                metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
                states = {s["name"]: s.get("failed") or s["state"] for s in sources["sources"]}
                if "cannot connect" in err_path.read_text() and states.get(path.name) == "ended":
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert sources is not None and metrics is not None, err_path.read_text()
        names = [s["name"] for s in sources["sources"]]
        assert path.name in names and any("password=***" in n for n in names), names
        incidents = urllib.request.urlopen(base + "/v1/events", timeout=5).read().decode()
        page = urllib.request.urlopen(base + "/", timeout=5).read().decode()
        for name, text in (("/v1/sources", json.dumps(sources)), ("/metrics", metrics),
                           ("/v1/events", incidents), ("/", page)):
            assert not any(s in text for s in SECRETS), f"a secret in {name}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = err_path.read_text()
    assert not any(s in text for s in SECRETS), "a secret in stderr"
    logs = json_lines(text)  # uvicorn's lines too: one JSON object per line
    assert any(o["logger"].startswith("vd.live.camera.") for o in logs)
    events = (tmp_path / "clips" / "events.jsonl").read_text()
    assert not any(s in events for s in SECRETS)
