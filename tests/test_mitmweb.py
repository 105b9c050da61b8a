"""mitmweb as dockertap's web UI: a real mitmweb following a real tap, looked at in a real headless
Chromium; and the same addon annotating a user's own mitmproxy in reverse mode."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import engines
import pytest

from dockertap.web_cmds import addon_file

IMAGE = engines.BUSYBOX_TAG
pytestmark = pytest.mark.engines("dockerd-28.5")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered at {url}")


def _flows(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/flows", timeout=5) as answer:
        return json.load(answer)


def _chromium(*args: str) -> subprocess.CompletedProcess:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    profile = tempfile.mkdtemp(prefix="dtchrome")
    try:
        return subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=8000",
                "--window-size=1800,800",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_mitmweb_shows_a_docker_run_while_the_tap_runs(dockerd, short_tmp: Path):
    session = short_tmp / "s.jsonl"
    (short_tmp / "tap").mkdir()
    tap = engines.start_tap(dockerd.url, short_tmp / "tap", "--record", str(session))
    port = _free_port()
    web = subprocess.Popen(
        [*engines.dockertap_command(), "web", str(session), "--port", str(port), "--no-browser"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        ran = engines.docker(tap.url, "run", "--rm", IMAGE, "echo", "hi")
        assert ran.returncode == 0 and ran.stdout == "hi\n", ran.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            flows = _flows(port)
            start = [f for f in flows if f["request"]["path"].endswith("/start")]
            if start and "runc[" in start[0].get("comment", "") and len(flows) >= 5:
                break
            time.sleep(0.3)
        paths = [f["request"]["path"] for f in flows]
        assert any(p.endswith("/containers/create") for p in paths), paths
        attach = next(f for f in flows if "/attach" in f["request"]["path"])
        assert attach["response"]["status_code"] == 101
        assert start and start[0]["comment"].startswith("POST /containers/{id}/start — ")
        assert "docker run --rm" in start[0]["comment"]
        assert "dockerd" in start[0]["comment"] and "runc[" in start[0]["comment"]
        # What a person sees: the flow list, rendered by mitmweb's own JavaScript in Chromium.
        dom = _chromium("--dump-dom", f"http://127.0.0.1:{port}/").stdout
        assert "/containers/create" in dom and "/attach" in dom, dom[:2000]
        assert "POST /containers/{id}/start — " in dom and "runc[" in dom
        assert tap.process.poll() is None, "the tap must still be running: the UI follows it live"
    finally:
        web.terminate()
        web.wait(timeout=30)
        tap.stop()


def test_the_addon_annotates_a_users_own_mitmproxy_in_reverse_mode(dockerd, short_tmp: Path):
    """mitmdump in reverse mode in front of a TCP endpoint (socat onto the engine's socket): flows get
    their route and expected layers, saved in a flow file mitmproxy itself reads back."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    tcp_port, proxy_port = _free_port(), _free_port()
    forward = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{tcp_port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{dockerd.socket}"]
    )
    flows_file = short_tmp / "out.flows"
    mitmdump = str(Path(sys.executable).with_name("mitmdump"))
    proxy = subprocess.Popen(
        [
            mitmdump,
            "-q",
            "-s",
            addon_file(),
            "--mode",
            f"reverse:http://127.0.0.1:{tcp_port}",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(proxy_port),
            "-w",
            str(flows_file),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while engines.docker(f"tcp://127.0.0.1:{proxy_port}", "version").returncode != 0:
            assert time.monotonic() < deadline, "mitmdump never relayed to the engine"
            time.sleep(0.5)
        listed = engines.docker(f"tcp://127.0.0.1:{proxy_port}", "ps")
        assert listed.returncode == 0, listed.stderr
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        forward.terminate()
        forward.wait(timeout=30)
    from mitmproxy import io

    with open(flows_file, "rb") as fh:
        read = list(io.FlowReader(fh).stream())
    listing = [f for f in read if f.request.path.split("?")[0].endswith("/containers/json")]
    assert listing, [f.request.path for f in read]
    assert listing[0].metadata["dockertap"]["route"] == "GET /containers/json"
    assert listing[0].comment.startswith("GET /containers/json")
    assert "dockerd" in listing[0].comment and "expected" in listing[0].comment


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.org", "::"])
def test_web_refuses_a_non_loopback_ui_address(host: str, short_tmp: Path):
    """mitmweb's UI has no authentication: a non-loopback address would publish the session."""
    result = subprocess.run(
        [*engines.dockertap_command(), "web", str(short_tmp / "s.jsonl"), "--host", host, "--no-browser"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert "use a loopback address" in result.stderr and "Traceback" not in result.stderr
