"""dockertap's relay with no sink pipeline at all: the floor the full proxy can reach.

    .venv/bin/python bench/relay_only.py --listen /tmp/x/r.sock --backend /tmp/x/backend.sock

Same listener, RelayConfig, uvloop and Tap as `dockertap proxy`, but the event hub has no
handler, so no exchange is materialised, analysed or written. run.py shows it as a diagnostic
column next to dockertap: the difference between the two is what the sinks cost.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from dockertap.proxy.endpoints import parse_endpoint
from dockertap.proxy.relay import RelayConfig
from dockertap.session import Pipeline, Tap, install_fast_loop, open_listener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    listening = open_listener(f"unix://{args.listen}")
    tap = Tap(listening, RelayConfig(backend=parse_endpoint(f"unix://{args.backend}")), Pipeline())
    tap.hub.set_handler(None)  # emit() returns at once: no event is queued or delivered

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await tap.start()
        await stop.wait()
        await tap.stop()

    with asyncio.Runner(loop_factory=install_fast_loop()) as runner:
        runner.run(serve())


if __name__ == "__main__":
    main()
