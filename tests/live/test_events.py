"""The events file (whole fsynced lines) and the webhook (a real HTTP server on 127.0.0.1,
retries, a spool that outlives the process)."""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from vd.live.events import LineLog, Webhook, iso, numbered_events, read_events


class _Server:
    def __init__(self, port=0, fail_first=0):
        got, fails = [], [fail_first]

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if fails[0] > 0:
                    fails[0] -= 1
                    self.send_response(503)
                else:
                    got.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.got = got
        self.httpd = HTTPServer(("127.0.0.1", port), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _wait(cond, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not cond():
        time.sleep(0.02)
    return cond()


def test_line_log_appends_whole_lines(tmp_path):
    path = tmp_path / "ev.jsonl"
    path.write_text('{"type": "start", "id": "old"}\n')
    log = LineLog(path)
    log.write({"type": "end", "id": "x", "note": "two\nlines", "v": float("nan")})
    log.close()
    lines = path.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["old", "x"] and path.read_text().endswith("\n")
    assert iso(0.0) == "1970-01-01T00:00:00.000+00:00"


def test_read_events_skips_torn_junk_non_object_and_over_long_lines(tmp_path):
    """What a SIGKILL, an editor or an attacker leaves in the file: only whole JSON objects come
    back, each skipped line is reported with its number, and a line longer than the bound is
    read past (a chunk at a time) instead of into memory."""
    path = tmp_path / "events.jsonl"
    log = LineLog(path)
    log.write({"id": "a", "type": "start"})
    log.close()
    with open(path, "ab") as fh:
        fh.write(b"\n  \nnot json\n[1, 2]\n" + b'{"id": "' + b"x" * 5000 + b'"}\n'
                 + b"[" * 100_000 + b"\n" + b'{"id": "b", "note": "\xff"}\n{"id": "torn", "ty')
    skipped = []
    got = list(numbered_events(path, on_skip=lambda n, why: skipped.append((n, why)),
                               max_line=4096))
    assert got == [(1, {"id": "a", "type": "start"}), (8, {"id": "b", "note": "\ufffd"})]
    assert skipped == [(4, "not JSON"), (5, "not an object"), (6, "longer than 4096 bytes"),
                       (7, "longer than 4096 bytes"), (9, "not JSON")]
    assert [e["id"] for e in read_events(path)] == ["a", "x" * 5000, "b"]  # the default bound


def test_webhook_retries_a_failing_server(tmp_path):
    srv = _Server(fail_first=2)
    try:
        hook = Webhook(f"http://127.0.0.1:{srv.port}/ev", tmp_path / "spool", timeout=2.0, cap=0.5)
        hook.send({"type": "start", "id": "a"})
        hook.send({"type": "end", "id": "a"})
        assert _wait(lambda: len(srv.got) == 2)
        assert [e["type"] for e in srv.got] == ["start", "end"] and hook.failures == 2
        hook.close()
        assert hook.pending() == []
    finally:
        srv.close()


class _Lines(logging.Handler):
    """The lines the webhook logs (through ``vd.live.events``)."""

    def __init__(self, msgs):
        super().__init__()
        self.msgs = msgs

    def emit(self, record):
        self.msgs.append(record.getMessage())


def test_undelivered_events_are_sent_after_a_restart(tmp_path):
    msgs = []
    handler = _Lines(msgs)
    logging.getLogger("vd.live.events").addHandler(handler)
    dead = _Server()
    port = dead.port
    dead.close()  # nothing listens on the port now
    hook = Webhook(f"http://127.0.0.1:{port}/", tmp_path / "spool", timeout=1.0, cap=0.2)
    hook.send({"type": "start", "id": "b"})
    assert _wait(lambda: hook.failures >= 2)
    hook.close(wait=0.2)
    assert len(hook.pending()) == 1 and len(msgs) == 1 and "kept in" in msgs[0]  # said once
    srv = _Server(port=port)
    try:
        again = Webhook(f"http://127.0.0.1:{port}/", tmp_path / "spool")
        assert _wait(lambda: len(srv.got) == 1) and srv.got[0]["id"] == "b"
        again.close()
        assert again.pending() == []
    finally:
        srv.close()
        logging.getLogger("vd.live.events").removeHandler(handler)


def test_webhook_without_a_writable_spool_still_delivers(tmp_path):
    """A spool that cannot be written (here: its folder would be inside a file; a full or
    read-only disk alike) never stops the caller: the event waits in memory and is sent."""
    (tmp_path / "file").write_text("x")
    srv = _Server()
    try:
        hook = Webhook(f"http://127.0.0.1:{srv.port}/ev", tmp_path / "file" / "spool", timeout=2.0)
        hook.send({"type": "start", "id": "m"})
        assert _wait(lambda: len(srv.got) == 1) and srv.got[0]["id"] == "m"
        hook.close()
    finally:
        srv.close()


def test_kept_log_keeps_lines_while_it_cannot_write_and_writes_them_in_order(tmp_path):
    from vd.live.events import KeptLog

    path = tmp_path / "sub" / "events.jsonl"
    (tmp_path / "sub").write_text("in the way")   # the folder cannot be made: writes fail
    log = KeptLog(path, keep=3)
    for i in range(5):
        log.write({"i": i})
    assert log.pending == 3 and log.lost == 2     # bounded: the oldest given up, counted
    (tmp_path / "sub").unlink()
    log.retry()
    log.write({"i": 5})
    log.close()
    assert [json.loads(x)["i"] for x in path.read_text().splitlines()] == [2, 3, 4, 5]
