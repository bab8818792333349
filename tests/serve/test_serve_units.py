"""`vd serve`'s rules without a server: who may bind where, the token (and which routes need
it), the files it may send, the scoring gate, container headers and parameter bounds, the
one-line 500 and bounded metric labels; and the command's refusals (one line, exit 2)."""

import dataclasses
import os

import pytest

from clirun import run_cli
from vd.errors import UserError
from vd.serve import auth
from vd.serve.files import inside
from vd.serve.limits import Busy, Gate


def test_non_loopback_bind_needs_a_token():
    for host in ("127.0.0.1", "127.3.2.1", "localhost", "::1"):
        auth.check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.org"):
        with pytest.raises(UserError, match="not a loopback address"):
            auth.check_bind(host, None)
        auth.check_bind(host, "t0k" * 6)
        with pytest.raises(UserError, match="at least 16 characters"):
            auth.check_bind(host, "t0k")


def test_token_from_file_stripped_or_env(tmp_path):
    f = tmp_path / "token"
    f.write_text("  s3cret\n\n")
    assert auth.load_token(str(f), {}) == "s3cret"
    assert auth.load_token(None, {"VD_TOKEN": " abc "}) == "abc"
    assert auth.load_token(None, {}) is None
    (tmp_path / "empty").write_text(" \n")
    with pytest.raises(UserError, match="is empty"):
        auth.load_token(str(tmp_path / "empty"), {})
    with pytest.raises(UserError, match="cannot read"):
        auth.load_token(str(tmp_path / "missing"), {})


def test_bearer_check():
    assert auth.authorized(None, None)
    assert auth.authorized("Bearer s3cret", "s3cret")
    assert auth.authorized("bearer s3cret", "s3cret")
    for h in (None, "", "s3cret", "Basic s3cret", "Bearer s3cre", "Bearer s3cret2", "Bearer"):
        assert not auth.authorized(h, "s3cret")
    assert not auth.needs_token("/healthz") and not auth.needs_token("/readyz")
    assert not auth.needs_token("/") and not auth.needs_token("/static/app.js")
    for p in ("/metrics", "/v1/predict", "/v1/events", "/v1/sources", "/v1/events/x/clip"):
        assert auth.needs_token(p)


def test_files_only_from_inside_the_folder(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    ok = root / "a.jpg"
    ok.write_bytes(b"x")
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    os.symlink(secret, root / "link.jpg")
    assert inside(ok, [root]) == ok.resolve()
    assert inside(str(root / ".." / "secret.txt"), [root]) is None
    assert inside(secret, [root]) is None
    assert inside(root / "link.jpg", [root]) is None        # a link out of the folder
    assert inside(root / "missing.jpg", [root]) is None
    assert inside(root, [root]) is None                     # a folder is not a file
    assert inside(None, [root]) is None


def test_gate_admits_workers_plus_queue():
    g = Gate(workers=1, queue=2)
    for _ in range(3):
        g.admit()
    with pytest.raises(Busy):
        g.admit()
    g.release()
    g.admit()
    assert g.admitted == 3


def test_cli_refuses_a_network_bind_without_token(tmp_path, monkeypatch):
    monkeypatch.delenv("VD_TOKEN", raising=False)
    status, out, err = run_cli(["serve", "--host", "0.0.0.0", "--model", str(tmp_path)])
    assert status == 2 and err.startswith("vd: error: --host 0.0.0.0 is not a loopback address")
    assert len(err.strip().splitlines()) == 1
    status, _, err = run_cli(["serve", "--model", str(tmp_path / "nope")])
    assert status == 2 and "no such run folder" in err and len(err.strip().splitlines()) == 1


def test_k8s_serve_manifest_calls_real_options_with_a_token():
    from pathlib import Path

    import yaml

    from vd.cli.serve import serve

    docs = list(yaml.safe_load_all((Path(__file__).resolve().parents[2] / "deploy" /
                                    "k8s-serve.yaml").read_text()))
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    options = {o for p in serve.params for o in p.opts}
    assert args[0] == "serve" and {a for a in args if a.startswith("--")} <= options
    assert args[args.index("--host") + 1] == "0.0.0.0" and "--token-file" in args  # network → token
    token_dir = args[args.index("--token-file") + 1].rsplit("/", 1)[0]
    assert any(m["mountPath"] == token_dir for m in c["volumeMounts"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_incidents_replayed_after_a_restart_and_reviews_become_extract_labels(tmp_path):
    import csv
    import json

    from vd.data.discover import discover
    from vd.live.engine import WatchConfig
    from vd.live.sources import SourceSpec
    from vd.serve.live import LiveService

    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("cam-a-1.mp4", "cam-b-1.mp4"):
        (clips / name).write_bytes(b"\0" * 100)  # stand-ins: discover() lists files by extension
    base = {"source": "cam", "start_s": 1.0, "peak": 0.9, "peak_s": 2.0, "threshold": 0.5,
            "start_time": "2026-01-01T00:00:01.000+00:00", "snapshot": None}
    lines = [dict(base, type="start", id="cam-a-1", end_s=None, clip=str(clips / "cam-a-1.mp4")),
             dict(base, type="end", id="cam-a-1", end_s=5.0, reason="cooldown",
                  clip=str(clips / "cam-a-1.mp4")),
             dict(base, type="start", id="cam-b-1", end_s=None, clip=str(clips / "cam-b-1.mp4"))]
    events = clips / "events.jsonl"
    events.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn')
    live = LiveService([SourceSpec("cam", "rtsp://127.0.0.1:1/x")], WatchConfig(), clips, events)
    got = {e["id"]: e for e in live.incidents()}
    assert got["cam-a-1"]["state"] == "ended" and got["cam-a-1"]["end_s"] == 5.0
    assert got["cam-b-1"]["state"] == "interrupted"   # open when the last run stopped
    assert live.started == {}                          # metrics count this process's only
    with pytest.raises(LookupError):
        live.review("cam-b-1", "violent")
    with pytest.raises(KeyError):
        live.review("nope", "violent")
    with pytest.raises(ValueError):
        live.review("cam-a-1", "maybe")
    assert live.review("cam-a-1", "False alarm")["label"] == "nonviolent"
    rows = list(csv.reader((clips / "labels.csv").open()))
    assert rows == [["path", "label"], ["cam-a-1.mp4", "nonviolent"]]
    assert {c.video: c.label for c in discover(clips, clips / "labels.csv")}["cam-a-1.mp4"] == 0
    # after another restart the mark is still shown
    again = LiveService([SourceSpec("cam", "rtsp://127.0.0.1:1/x")], WatchConfig(), clips, events)
    assert {e["id"]: e["review"] for e in again.incidents()} == {"cam-a-1": "nonviolent", "cam-b-1": None}


def test_cli_refuses_a_port_in_use_in_one_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        status, _, err = run_cli(["serve", "--port", str(port), "--model", str(tmp_path)])
    assert status == 2 and err.startswith(f"vd: error: cannot listen on 127.0.0.1:{port}")
    assert len(err.strip().splitlines()) == 1


def test_upload_receive_cuts_off_large_and_stalled_bodies():
    import asyncio

    from vd.serve.limits import Limits, UploadStalled, UploadTooLarge, limited_receive

    async def chunks(parts):
        for p in parts:
            yield {"type": "http.request", "body": p, "more_body": True}

    def receiver(parts):
        it = chunks(parts)
        return lambda: it.__anext__()

    async def drain(receive):
        got = 0
        for _ in range(10):
            got += len((await receive())["body"])
        return got

    with pytest.raises(UploadTooLarge):  # raised at the chunk that passes the limit
        asyncio.run(drain(limited_receive(receiver([b"x" * 60, b"x" * 60, b"x" * 60]), Limits(max_upload=100))))
    assert asyncio.run(drain(limited_receive(receiver([b"x" * 50] * 10), Limits(max_upload=500)))) == 500

    async def never():
        await asyncio.sleep(3600)

    with pytest.raises(UploadStalled):
        asyncio.run(limited_receive(never, Limits(max_upload=100, body_grace_s=0.05))())


def test_every_route_with_data_has_the_token_dependency():
    from vd.serve import dashboard, events, health, predict, sources
    from vd.serve.deps import require_token

    paths = set()
    for router in (health.router, health.metrics_router, predict.router, sources.router,
                   events.router, dashboard.router):
        guarded = any(d.dependency is require_token for d in router.dependencies)
        for r in router.routes:
            paths.add(r.path)
            assert guarded == auth.needs_token(r.path), r.path
    assert paths >= {"/v1/predict", "/v1/events", "/v1/sources", "/metrics", "/healthz",
                     "/readyz", "/", "/v1/events/{ident}/review"}


def test_container_headers_read_without_decoding(opencv_clips):
    from vd.serve.limits import Limits
    from vd.serve.probe import read_header
    from vd.serve.scoring import Params, check_params

    for name, container in (("mp4v.mp4", "mp4"), ("mjpg.avi", "avi")):
        h = read_header(opencv_clips[name])
        assert (h.container, h.width, h.height, h.frames) == (container, 320, 240, 50)
        assert h.fps == pytest.approx(25.0) and h.duration_s == pytest.approx(2.0)
    assert read_header(opencv_clips["truncated_moov.mp4"]) is None  # no moov: nothing to read
    h = read_header(opencv_clips["mp4v.mp4"])
    lim = Limits()
    assert check_params(Params(window=0.8, stride=0.1), h, lim) is None
    assert "window must be between 0.8 s" in check_params(Params(window=0.79), h, lim)
    assert "stride must be between 0.1 s" in check_params(Params(window=1, stride=0.05), h, lim)
    long = dataclasses.replace(h, duration_s=101.0)
    assert "makes 1001 windows" in check_params(Params(window=1.0, stride=0.1), long, lim)
    assert check_params(Params(window=1.0, stride=0.1), dataclasses.replace(h, duration_s=100.9),
                        lim) is None  # 1000 windows: the most
    assert check_params(Params(window=1.0, stride=0.1), dataclasses.replace(h, duration_s=100.95),
                        lim) is not None  # 1000 regular and one flush with the end


def test_an_escaped_exception_is_a_one_line_500_and_labels_are_bounded():
    import asyncio

    import httpx

    from vd.serve.metrics import Metrics, Observe

    async def broken(scope, receive, send):
        raise RuntimeError("secret detail\nline two")

    m = Metrics()
    app = Observe(broken, m)

    async def go():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [await c.request(method, "/x") for method in ("GET", "BREW", "XYZZY")]

    for r in asyncio.run(go()):
        assert r.status_code == 500
        assert r.json() == {"error": "internal error (see the server's log)"}
    from prometheus_client import generate_latest

    text = generate_latest(m.registry).decode()
    assert 'method="other"' in text and "BREW" not in text and "XYZZY" not in text
    assert 'route="unmatched"' in text
