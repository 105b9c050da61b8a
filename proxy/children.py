"""Helper processes (`ctr events`, the exec reader) that live exactly as long as the tap.

A `kill -9` of dockertap runs no clean-up code, so the kernel must end the children: Linux's
PR_SET_PDEATHSIG sends them SIGKILL when the thread that spawned them exits. They also get a
session of their own, so the terminal's Ctrl-C reaches dockertap (which stops them in order)
and not them (a child killed first would print its own traceback).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def tied_to_us() -> dict[str, Any]:
    """Keyword arguments for `asyncio.create_subprocess_exec` / `subprocess.Popen`."""
    options: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with(os.getpid())
    return options
