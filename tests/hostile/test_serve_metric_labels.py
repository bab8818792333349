"""`vd serve`: requests cannot add Prometheus series. The latency histogram's labels come only
from the app's own routes and the usual methods (anything else is ``unmatched`` / ``other``).
Before: 3,000 requests with made-up methods and no token grew /metrics from 36 KB to 5.4 MB.
"""

import random
import socket
import string
import threading

import pytest

from serveproc import metric, read_reply, shared_server

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, opencv_clips):
    return shared_server(request, tmp_path_factory, opencv_clips)


def _junk(port: int, n: int, seed: int, statuses: list):
    rng = random.Random(seed)
    paths = ["/v1/predict", "/metrics", "/v1/events", "/healthz", "/nope", "/v1/events/x/clip"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for _ in range(n):
            method = "".join(rng.choices(string.ascii_uppercase, k=12))
            path = rng.choice(paths + ["/" + "".join(rng.choices(string.ascii_lowercase, k=10))])
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, _ = read_reply(s)
            statuses.append(status)


def test_3000_made_up_requests_add_no_series(server):
    before = server.http.get("/metrics").text
    statuses = []
    threads = [threading.Thread(target=_junk, args=(server.port, 750, i, statuses))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == 3000 and set(statuses) <= {401, 404, 405}, set(statuses)
    after = server.http.get("/metrics").text
    print(f"/metrics {len(before)} -> {len(after)} bytes after 3000 junk requests")
    assert len(after) - len(before) < 16 * 1024, (len(before), len(after))
    assert metric(after, "vd_http_request_seconds_count", route="unmatched", method="other",
                  status="404") > 0
    junk = {ln.split("method=")[1].split(",")[0] for ln in after.splitlines() if "method=" in ln}
    assert junk <= {'"GET"', '"POST"', '"HEAD"', '"other"'}, junk
