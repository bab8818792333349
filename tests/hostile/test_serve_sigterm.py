"""`vd serve` on SIGTERM: scoring and uploads in progress are given up (their clients get a
503 or the connection closes), the process exits promptly and leaves no ``vd-serve-*``
folder. Before: the server took 8 s and left ``/tmp/vd-serve-*/upload.mp4`` behind; here it
exits 0.4–1.9 s after the signal."""

import signal
import socket
import threading
import time

import pytest

from serveproc import TOKEN, Serve, metric, read_reply, untrained_run, wait_for
from test_serve_disconnect import multipart

pytest.importorskip("httpx")
pytestmark = pytest.mark.slow  # a server of its own (~40 s to start and warm up here)


def test_sigterm_cancels_work_and_removes_every_temporary_folder(tmp_path_factory, long_clip):
    path, _ = long_clip
    srv = Serve(untrained_run(tmp_path_factory), tmp_path_factory.mktemp("sigterm"))
    try:
        srv.wait_ready()
        body, ctype = multipart(path, window="0.8", stride="0.1", tta="true")
        head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {{}}\r\n\r\n")
        replies = []

        def client(data: bytes, declared: int):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as s:
                s.sendall(head.format(declared).encode() + data)
                replies.append(read_reply(s))

        scoring = threading.Thread(target=client, args=(body, len(body)))
        scoring.start()
        assert wait_for(lambda: metric(srv.http.get("/metrics").text, "vd_scoring_queue") == 1,
                        60), srv.text()
        half = threading.Thread(target=client, args=(body[: len(body) // 2], len(body)))
        half.start()  # an upload still arriving (its file is on disk, partly)
        time.sleep(1.0)
        assert len(srv.leftovers()) == 2
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(30)
        took = time.monotonic() - t0
        scoring.join(30)
        half.join(30)
    finally:
        srv.stop()
    print(f"exit {rc} after SIGTERM in {took:.2f} s")
    assert rc in (0, -signal.SIGTERM)
    assert srv.leftovers() == []
    assert sorted(status for status, _ in replies) == [503, 503], [r[:400] for _, r in replies]
    assert all(b"the server is stopping" in reply for _, reply in replies)
