"""`vd serve`: clients that trickle an upload body hold no scoring place, and are cut off.

The body must arrive whole within 120 s and, after its first 10 s, at an average of at least
32 KiB/s (not an idle timer that restarts on every byte); a request takes its place in the
scoring gate (1 worker + 2 queue places here) only once its body is on disk. Before: five
clients sending one byte every 5 s held every worker and queue place, and 12 of 12 real
uploads got 503 for a minute.
"""

import socket
import threading
import time

import pytest

from serveproc import TOKEN, read_reply, shared_server, upload

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def _trickle(port: int, replies: list, stop: threading.Event):
    s = socket.create_connection(("127.0.0.1", port), timeout=180)
    s.sendall((f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
               f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
               f"--b\r\n").encode())

    def drip():
        while not stop.wait(5.0):
            try:
                s.sendall(b"x")  # one byte every 5 s
            except OSError:
                return
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    replies.append(read_reply(s))
    s.close()


def test_five_tricklers_do_not_keep_twelve_uploads_out(server, opencv_clips):
    replies, stop = [], threading.Event()
    threads = [threading.Thread(target=_trickle, args=(server.port, replies, stop), daemon=True)
               for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # they are connected and have sent their headers
    try:
        codes = [upload(server.http, opencv_clips["mp4v.mp4"], tta="false").status_code
                 for _ in range(12)]
        assert codes == [200] * 12
        for t in threads:
            t.join(150)
    finally:
        stop.set()
    assert sorted(status for status, _ in replies) == [408] * 5, replies
    assert all(b"did not arrive in time" in body for _, body in replies)
    assert not server.leftovers()
