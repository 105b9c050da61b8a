"""`dockertap explain` through the real typer app."""

from __future__ import annotations

from typer.testing import CliRunner

from dockertap.app import app

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, ["explain", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_template_on_dockerd() -> None:
    out = run("POST /containers/{id}/start")
    assert "POST /containers/{id}/start" in out
    assert "Tasks.Create" in out and "runc create" in out and "containerd-shim-runc-v2" in out
    assert "daemon/start.go" in out


def test_concrete_request_on_podman_in_japanese() -> None:
    out = run(
        "POST /v1.41/containers/abc/start", "--backend-family", "podman", "--lang", "ja", "--runtime", "runc"
    )
    assert "conmon" in out and "runc start" in out
    assert "containerd" not in out.split("chain:")[0]
    assert "直接実行" in out


def test_top_and_containerd_store() -> None:
    assert "ps" in run("GET /containers/{id}/top").split("host", 1)[1]
    out = run("POST /containers/create", "--image-store", "containerd")
    assert "Snapshots.Prepare" in out and "/snapshot/commit" in out


def test_hijack_hint_and_unknown_route() -> None:
    assert "hijack: tcp" in run("POST /v1.41/containers/abc/attach?stream=1")
    unknown = runner.invoke(app, ["explain", "GET /not/a/route"])
    assert unknown.exit_code == 2 and "unknown route" in unknown.output


def test_all_lists_the_table() -> None:
    out = run("--all")
    assert "POST /containers/{id}/start" in out and "group default" in out and "noSwarm" in out


def test_bad_request() -> None:
    result = runner.invoke(app, ["explain", "POST"])
    assert result.exit_code != 0


def test_grpc_methods_key_the_buildkit_chain() -> None:
    out = run("POST /grpc", "--grpc", "/moby.buildkit.v1.Control/ListWorkers")
    assert "chain: dockerd\n" in out and "runc" not in out  # runs nothing below dockerd
    out = run("POST /grpc", "--grpc", "/moby.buildkit.v1.Control/Solve", "--image-store", "containerd")
    assert "runc run" in out and "runc init" in out and "/snapshot/prepare" in out
    assert "control.go: Solve" in out and "executor_linux.go" in out
    assert "gRPC /moby.buildkit.v1.Control/Solve" in run("--all")
    bad = runner.invoke(app, ["explain", "GET /_ping", "--grpc", "/x.Y/Z"], env={"COLUMNS": "200"})
    assert bad.exit_code == 2 and "--grpc applies to POST /grpc and POST /session" in bad.output
