"""The independent ground-truth recorder and scorer (bench/ground_truth.py, bench/score_evidence.py).

The relay runs for real in front of a small fake server on a Unix socket; the scorer is fed
hand-made windows and records, so its arithmetic is checked on cases whose answer is known.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from fakesock import FakeServer, docker_like, short_tmpdir  # noqa: E402
from ground_truth import Relay, Window  # noqa: E402
from score_evidence import ground_truth, score  # noqa: E402


def _exchange(sock: socket.socket, target: str) -> bytes:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    return data


def test_the_relay_copies_bytes_and_logs_one_window_per_request() -> None:
    directory = short_tmpdir()
    with FakeServer(f"{directory}/engine.sock", docker_like()) as server:
        relay = Relay(f"{directory}/gt.sock", server.path)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(relay.listen)
                answer = _exchange(client, "/_ping")
            assert answer.startswith(b"HTTP/1.1 200 OK")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(relay.listen)
                _exchange(client, "/version")
            deadline = 50
            while deadline and not all(w.ended for w in relay.windows):
                time.sleep(0.05)
                deadline -= 1
        finally:
            relay.close()
    assert [w.request_line for w in relay.windows] == ["GET /_ping HTTP/1.1", "GET /version HTTP/1.1"]
    assert all(w.ended is not None and w.ended >= w.started for w in relay.windows)
    assert server.requests[0].startswith(b"GET /_ping HTTP/1.1\r\n")  # bytes passed unchanged


def test_each_happening_goes_to_the_newest_open_request_and_the_score_counts_it() -> None:
    windows = [
        Window(1, "POST /v1.51/containers/c/wait HTTP/1.1", 10.0, 20.0),
        Window(2, "POST /v1.51/containers/c/start HTTP/1.1", 10.5, 11.0),
        Window(3, "GET /v1.51/containers/json HTTP/1.1", 12.0, 12.1),
    ]
    happenings = [
        {"time": 10.6, "layer": "runc", "what": "runc create"},  # start is newer than wait
        {"time": 10.7, "layer": "containerd", "what": "/tasks/start"},
        {"time": 15.0, "layer": "containerd", "what": "/tasks/exit"},  # only the wait is open
        {"time": 30.0, "layer": "runc", "what": "runc delete"},  # no request open: not scored
    ]
    truth = ground_truth(windows, happenings)
    assert truth == {
        1: {"runc": ["runc create"], "containerd": ["/tasks/start"]},
        0: {"containerd": ["/tasks/exit"]},
    }

    def record(key: int, method: str, target: str, started: str, layers: dict[str, str]) -> dict:
        return {
            "id": key, "method": method, "target": target, "started": started, "route": target,
            "layers": [{"layer": name, "status": status} for name, status in layers.items()],
        }  # fmt: skip

    records = [
        record(1, "POST", "/v1.51/containers/c/wait", "1970-01-01T00:00:10Z", {"dockerd": "observed"}),
        record(2, "POST", "/v1.51/containers/c/start", "1970-01-01T00:00:10.5Z",
               {"dockerd": "observed", "containerd": "observed", "runc": "missing", "host": "observed"}),
        record(3, "GET", "/v1.51/containers/json", "1970-01-01T00:00:12Z", {"dockerd": "observed"}),
        {"type": "background", "kind": "container-exit", "observed_by": [1],
         "items": [{"source": "containerd", "topic": "/tasks/exit"}]},
    ]  # fmt: skip
    result = score(windows, records, truth)
    assert result["exchanges"] == 3
    assert (result["ran"], result["observed"], result["both"]) == (3, 2, 1)  # host observed, never ran
    assert result["missing_that_ran"] == ["/v1.51/containers/c/start runc"]
    assert result["recall_exits_credited"] == 2 / 3  # the wait's exit, credited to it
