"""The pipeline stage that decodes BuildKit's h2c streams into gRPC calls, off the relay path.

The relay hands every byte of an `h2c`-upgraded stream to a `StreamTap` and announces it with a
`stream` event; here those chunks go into one `GrpcDecoder` per exchange. The decoded calls are put
on the exchange's annotation (trace, recording, live view) and its chain is re-keyed on the methods,
so the layer model and the evidence correlator see `Control/Solve` rather than an opaque `POST /grpc`.
"""

from __future__ import annotations

from dockertap.analyzers.annotate import Annotation, with_grpc_methods
from dockertap.analyzers.grpc_h2 import GrpcDecoder
from dockertap.proxy.exchange import Exchange

#: Routes whose gRPC error texts (`grpc-message`) may be shown: `/session` errors can quote what
#: the client served (secrets, credentials), so they are never kept.
_MESSAGES_KEPT = frozenset({"POST /grpc"})


class GrpcCalls:
    """Pipeline processor: runs after `Analysis` (which creates the annotation)."""

    def __init__(self) -> None:
        self._decoders: dict[int, GrpcDecoder] = {}
        self.decoded = 0

    def __call__(self, kind: str, ex: Exchange) -> None:
        hijack = ex.hijack
        annotation = ex.annotation
        if hijack is None or hijack.tap is None or not isinstance(annotation, Annotation):
            return
        decoder = self._decoders.get(ex.id)
        if decoder is None:
            keep = annotation.route.template in _MESSAGES_KEPT
            decoder = self._decoders[ex.id] = GrpcDecoder(keep_messages=keep)
        tap = hijack.tap
        for when, side, chunk in tap.take():
            decoder.feed(side, chunk, when)
        decoder.lost("client", tap.lost_client)
        decoder.lost("backend", tap.lost_backend)
        if kind == "end":
            del self._decoders[ex.id]
            self.decoded += 1
        describe(annotation, decoder, ex.started)


def describe(annotation: Annotation, decoder: GrpcDecoder, base: float) -> None:
    """Put what `decoder` has seen on the annotation; a failed decoder leaves the opaque chain."""
    calls = [call.to_dict(base) for call in decoder.snapshot()]
    notes = []
    if decoder.failure:
        notes.append(f"gRPC decoding stopped: {decoder.failure}")
    if decoder.omitted:
        notes.append(f"{decoder.omitted} more calls only counted: {decoder.method_counts}")
    annotation.grpc = calls
    annotation.grpc_note = "; ".join(notes) or None
    # After a failure the methods seen may be only some of them: back to the opaque route's chain.
    with_grpc_methods(annotation, None if decoder.failure else decoder.methods)
