"""A real terminal for tests: a detached tmux session to type into and read the screen of."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence


class TmuxTerminal:
    """`command` (default: tmux's shell) in a WIDTH×HEIGHT tmux session."""

    def __init__(
        self,
        command: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        width: int = 160,
        height: int = 40,
        name: str | None = None,
    ) -> None:
        if shutil.which("tmux") is None:
            raise FileNotFoundError("tmux is not installed")
        self.name = name or f"dt-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), *command],
            env=None if env is None else dict(env),
            check=True,
            timeout=30,
        )

    def keys(self, *keys: str) -> None:
        """tmux key names (`Tab`, `Enter`, `C-u`) or literal text."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True, timeout=30)

    def type(self, text: str) -> None:
        """A line, then Enter."""
        self.keys(text, "Enter")

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True, timeout=30
        ).stdout

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on the terminal:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=30)
