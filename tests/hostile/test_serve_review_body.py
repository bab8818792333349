"""`vd serve`: a request body other than an upload (the review's JSON) is read with a cap of
64 KiB, never whole: a declared 200 MB body is refused before it is read, a streamed one (no
length) is cut off at the cap; 413 with a one-line error, and the server's memory does not
move. Before: the review endpoint read a 200 MB body whole (+390 MB)."""

import json
import select
import socket

import pytest

from serveproc import TOKEN, read_reply, shared_server

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def _stream(port: int, head: str, total: int) -> tuple[int, bytes, int]:
    """Send ``total`` bytes of chunked body until the server answers; (status, reply, sent)."""
    piece = b"\x20" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head.encode() + b"\r\n\r\n")
        while sent < total:
            if select.select([s], [], [], 0)[0]:
                break  # the server answered
            try:
                s.sendall(chunk)
            except OSError:
                break
            sent += len(piece)
        status, reply = read_reply(s)
    return status, reply, sent


def test_a_200_mb_review_body_is_refused_without_reading_it(server):
    ident = "good-1"
    base = server.reset_peak()
    common = (f"POST /v1/events/{ident}/review HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall((common + f"\r\nContent-Length: {200 * 2 ** 20}\r\n\r\n").encode() + b"{" * 4096)
        status, reply = read_reply(s)
    assert status == 413, reply
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body == {"error": "upload larger than the limit of 65536 bytes"}

    status, reply, sent = _stream(server.port, common + "\r\nTransfer-Encoding: chunked",
                                  200 * 2 ** 20)
    assert status == 413, reply
    assert sent < 200 * 2 ** 20  # cut off, not read to the end
    print(f"200 MB review bodies: peak growth {server.peak_growth_mb(base):.1f} MB, "
          f"{sent / 2 ** 20:.1f} MB sent before the 413")
    assert server.peak_growth_mb(base) < 32
    # a small one still works (the clip is a regular file in the folder)
    r = server.http.post(f"/v1/events/{ident}/review", json={"label": "violent"})
    assert r.status_code == 200 and r.json()["label"] == "violent", r.text
