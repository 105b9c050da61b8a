"""annotate(): route + expected chain + JSON trace fields, and the compact chain form."""

from __future__ import annotations

import json
from pathlib import Path

from dockertap.analyzers.annotate import LayerStatus, annotate, format_chain
from dockertap.analyzers.fingerprint import fingerprint

DATA = Path(__file__).parent / "data" / "fingerprint"


def _backend(name: str):
    sample = json.loads((DATA / name).read_text())
    return fingerprint(sample["ping_headers"], sample["version"], sample["info"], sample["endpoint_url"])


DOCKERD = _backend("dockerd-20.10-debian-rootful.json")
PODMAN = _backend("podman-4.3-debian-rootful.json")


def test_dockerd_start_trace_fields() -> None:
    ann = annotate("POST", "/v1.41/containers/abc/start", DOCKERD)
    data = ann.to_dict()
    assert data["route"] == "POST /containers/{id}/start"
    assert data["object_id"] == "abc"
    assert data["backend"] == {
        "family": "dockerd",
        "product": "native dockerd (rootful)",
        "engine_version": "20.10.24+dfsg1",
    }
    assert [layer["layer"] for layer in data["layers"]] == ["dockerd", "containerd", "shim", "runc", "host"]
    assert all(layer["status"] == "expected" for layer in data["layers"])
    assert data["evidence"] == []
    assert "libnetwork-setkey" in ann.chain.step("host").execs  # 20.10 engine-version extra
    json.dumps(data)


def test_podman_uses_its_runtime() -> None:
    ann = annotate("POST", "/v1.41/containers/abc/start", PODMAN)
    assert [ls.layer for ls in ann.layers] == ["compat-api", "conmon", "runc", "host"]


def test_exec_start_detach_from_body() -> None:
    ann = annotate("POST", "/v1.41/exec/e1/start", DOCKERD, body={"Detach": True, "Tty": False})
    assert "[body.Detach]" in ann.chain.rows[0]


def test_unknown_backend_defaults_to_dockerd_model() -> None:
    ann = annotate("GET", "/containers/abc/stats?stream=0", None)
    assert ann.to_dict()["backend"]["family"] == "unknown"
    assert "runc" not in [ls.layer for ls in ann.layers]


def test_format_chain_marks() -> None:
    ann = annotate("POST", "/containers/abc/start", DOCKERD)
    assert format_chain(ann).startswith("dockerd → containerd[Containers.Create Containers.Get Tasks.Create")
    containerd = ann.layer("containerd")
    containerd.status = "observed"
    runc = ann.layer("runc")
    runc.operation_status = {"create": "observed", "start": "missing"}
    ann.layers[ann.layers.index(runc)] = LayerStatus(
        runc.layer, runc.operations, "expected", runc.operation_status
    )
    text = format_chain(ann)
    assert "Tasks.Start✓]" in text
    assert "runc[create✓ start✗]" in text
    assert "dockerd → " in text and "dockerd✓" not in text
