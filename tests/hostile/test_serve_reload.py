"""`vd serve --config cameras.yaml` rereads the file on SIGHUP (uvicorn handles only SIGINT and
SIGTERM): a broken edit is one logged line and the server and its cameras go on; a good one
starts the added cameras and stops the removed ones, and ``/v1/sources`` follows. A real
server process."""

import signal

import pytest

from serveproc import Serve, untrained_run, wait_for

pytest.importorskip("httpx")


def _names(srv) -> list:
    return [s["name"] for s in srv.http.get("/v1/sources").json()["sources"]]


def test_sighup_reloads_the_cameras_of_a_running_server(tmp_path_factory, long_clip):
    run = untrained_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("serve-reload")
    cfg = root / "cameras.yaml"
    cam = lambda name, thr: f"  - name: {name}\n    url: {long_clip[0]}\n    threshold: {thr}\n"  # noqa: E731
    cfg.write_text("cameras:\n" + cam("door", 1.0))
    srv = Serve(run, root, "--config", cfg, "--timeout", "5", "--backoff-cap", "2", "--realtime")
    try:
        srv.wait_ready()
        assert _names(srv) == ["door"]
        cfg.write_text("cameras: [oops\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload refused" in srv.text(), 30), srv.text()
        assert srv.http.get("/v1/sources").status_code == 200 and _names(srv) == ["door"]
        cfg.write_text("cameras:\n" + cam("yard", 0.0))
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: _names(srv) == ["yard"], 60), srv.text()
        yard = lambda: srv.http.get("/v1/sources").json()["sources"][0]  # noqa: E731
        assert wait_for(lambda: (yard().get("windows") or 0) >= 2, 90), srv.text()
        assert yard()["threshold"] == 0.0 and yard()["connections"] == 1
        assert wait_for(lambda: srv.http.get("/v1/events", params={"source": "yard"})
                        .json()["events"], 60), srv.text()  # threshold 0: an incident
        assert not srv.http.get("/v1/events", params={"source": "door"}).json()["events"]
        text = srv.text()
        assert "cameras added: yard; removed: door" in text and srv.proc.poll() is None, text
    finally:
        assert srv.stop() in (0, -signal.SIGTERM), srv.text()
