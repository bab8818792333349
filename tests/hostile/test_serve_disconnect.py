"""`vd serve`: a client that goes away cancels its scoring (at the next backbone batch), frees
its scoring place and leaves no temporary file. Before: scoring went on to the end after the
client disconnected."""

import socket
import time

import pytest

from serveproc import TOKEN, metric, shared_server, wait_for

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def multipart(path, **fields) -> tuple[bytes, str]:
    b = "vdhostileboundary"
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="long.mp4"\r\n'
                 f"Content-Type: video/mp4\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    return b"".join(parts) + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def _metrics(server):
    return server.http.get("/metrics").text


def test_scoring_stops_when_the_client_goes_away(server, long_clip):
    path, _ = long_clip  # 12 s, 320x240: with TTA and a 0.1 s stride, ~1500 backbone frames
    body, ctype = multipart(path, window="0.8", stride="0.1", tta="true")
    before = metric(_metrics(server), "vd_predict_clips_total", outcome="cancelled")
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall((f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
               f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    assert wait_for(lambda: metric(_metrics(server), "vd_scoring_queue") == 1, 60)  # admitted
    time.sleep(1.0)  # scoring
    s.close()
    assert wait_for(lambda: metric(_metrics(server), "vd_predict_clips_total", outcome="cancelled")
                 == before + 1, 120), server.text()
    assert wait_for(lambda: metric(_metrics(server), "vd_scoring_queue") == 0, 30)
    assert wait_for(lambda: not server.leftovers(), 30), server.leftovers()
