"""A mitmproxy addon: dockertap's exchanges and layers in mitmweb's flow list.

Two uses, one addon (load it with `mitmweb -s "$(dockertap addon-path)"`, or run `dockertap web`):

* **Follow a running tap.** With `--set dockertap_follow=FILE`, where FILE is the session a
  `dockertap proxy --record FILE` (or `run --record`) is writing, every exchange appears in the flow
  list as it ends: route, client, the layers it reached (in the flow's comment and its
  `metadata["dockertap"]`), hijacked stdout/stderr as a readable response body. When the settle
  window adds observed evidence, the flow is updated in place.
* **Annotate your own mitmproxy.** Running mitmproxy in reverse mode in front of a TCP Docker
  endpoint (`mitmweb --mode reverse:http://127.0.0.1:2375`), every Docker API flow gets its route
  and the layers the model expects on the backend (learnt from the `/_ping` answers it sees).

The flows are built by `recordings.flows` (the same conversion as `dockertap export --flows`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.hooks import UpdateHook

from dockertap.analyzers.annotate import annotate, format_layers, layers_from_records
from dockertap.analyzers.fingerprint import BackendFingerprint, fingerprint
from dockertap.recordings.flows import exchange_to_flow
from dockertap.recordings.format import RecordedExchange

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
#: Fields a `settled` record brings to the exchange recorded earlier under the same id.
SETTLED_FIELDS = ("layers", "evidence", "mismatches")


def flow_comment(record: dict[str, Any]) -> str:
    """`POST /containers/{id}/start — docker run — dockerd✓ → containerd[…] → runc[create✓ start✓]`."""
    route = record.get("route") or f"{record.get('method', '?')} {record.get('path', '?')}"
    client = (record.get("client") or {}).get("command") or "?"
    chain = format_layers(layers_from_records(record.get("layers") or []))
    return " — ".join(part for part in (str(route), str(client), chain) if part)


def stream_text(record: dict[str, Any]) -> str:
    """Hijacked stdio as text lines (`stdout │ hi`), for the response body mitmweb shows."""
    from dockertap.recordings.format import decode_bytes

    hijack = record.get("hijack") or {}
    lines = []
    for piece in hijack.get("streams") or ():
        data = decode_bytes(piece.get("encoding", "text"), piece.get("data", ""))
        text = data.decode("utf-8", errors="replace")
        for line in text.splitlines() or [""]:
            lines.append(f"{piece.get('stream', '?'):>6} │ {line}")
    return "\n".join(lines) + ("\n" if lines else "")


class Dockertap:
    """The addon object mitmproxy loads (see the module docstring)."""

    def __init__(self) -> None:
        self._flows: dict[Any, http.HTTPFlow] = {}
        self._backend_url: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen_backend: BackendFingerprint | None = None
        self.followed = 0

    def load(self, loader: Any) -> None:
        loader.add_option(
            "dockertap_follow",
            str,
            "",
            "A dockertap session file to follow (what `dockertap proxy --record FILE` writes).",
        )

    def running(self) -> None:
        path = ctx.options.dockertap_follow
        if path:
            self._task = asyncio.get_running_loop().create_task(self._follow(path))

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- following a session file ----------------------------------------------------------

    async def _follow(self, path: str) -> None:
        while not os.path.exists(path):
            await asyncio.sleep(POLL_SECONDS)
        pending = b""
        with open(path, "rb") as session:
            while True:
                chunk = session.read(1 << 16)
                if not chunk:
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.take_line(line)

    def take_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except ValueError:
            log.warning("dockertap: skipped a line that is not JSON in the followed session")
            return
        if not isinstance(record, dict):
            return
        kind = record.get("type")
        if kind == "header":
            self._backend_url = record.get("backend_url")
        elif kind == "exchange":
            self._add(record)
        elif kind == "settled":
            self._settle(record)

    def _add(self, record: dict[str, Any]) -> None:
        flow = exchange_to_flow(RecordedExchange(record), self._backend_url)
        self._annotate(flow, record)
        if record.get("hijack") is not None and flow.response is not None:
            flow.response.content = stream_text(record).encode()
            flow.response.headers["content-type"] = "text/plain; charset=utf-8"
        self._flows[record.get("id")] = flow
        self.followed += 1
        view = ctx.master.addons.get("view")
        if view is not None:
            view.add([flow])

    def _settle(self, record: dict[str, Any]) -> None:
        flow = self._flows.get(record.get("id"))
        if flow is None:
            return
        recorded = dict(flow.metadata.get("dockertap", {}).get("record", {}))
        recorded.update({key: record[key] for key in SETTLED_FIELDS if key in record})
        self._annotate(flow, recorded)
        ctx.master.addons.trigger(UpdateHook([flow]))

    @staticmethod
    def _annotate(flow: http.HTTPFlow, record: dict[str, Any]) -> None:
        meta = dict(flow.metadata.get("dockertap") or {})
        meta.update(
            route=record.get("route"),
            client=record.get("client"),
            layers=record.get("layers") or [],
            evidence=record.get("evidence") or [],
            record={key: record.get(key) for key in ("route", "method", "path", "client", *SETTLED_FIELDS)},
        )
        flow.metadata["dockertap"] = meta
        flow.comment = flow_comment(record)

    # -- annotating flows of a mitmproxy run by the user --------------------------------------

    def response(self, flow: http.HTTPFlow) -> None:
        if "dockertap" in flow.metadata or flow.response is None:
            return
        if flow.request.path.split("?", 1)[0].endswith("/_ping"):
            self._seen_backend = fingerprint(dict(flow.response.headers), None, None)
        annotation = annotate(flow.request.method, flow.request.path, self._seen_backend)
        if not annotation.route.known:
            return  # not a Docker API call
        layers = [layer.to_dict() for layer in annotation.layers]
        record = {
            "route": annotation.route.template,
            "client": {"command": flow.request.headers.get("user-agent")},
            "layers": layers,
        }
        flow.metadata["dockertap"] = {"route": record["route"], "layers": layers, "expected_only": True}
        flow.comment = flow_comment(record) + "  (expected: mitmproxy cannot observe the host)"


addons = [Dockertap()]
