"""Shell completion as a user gets it: `dockertap --install-completion` in a real bash and zsh, then
Tab pressed in an interactive shell running in tmux."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import engines
import pytest
from tmuxterm import TmuxTerminal

SHELLS = ("bash", "zsh")


def _needs(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _user_env(home: Path, shell: str) -> dict[str, str]:
    """A fresh user of SHELL: its own HOME, and the installed `dockertap` first on PATH."""
    bin_dir = str(Path(engines.dockertap_command()[0]).parent)
    return {
        "HOME": str(home),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "SHELL": shutil.which(shell) or shell,
    }


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_of_commands_options_recordings_and_explain_words(shell: str, short_tmp: Path):
    _needs("tmux", shell)
    home = short_tmp / "home"
    home.mkdir(mode=0o700)
    env = _user_env(home, shell)
    # `; true` keeps the shell alive as dockertap's parent (a lone command would be exec'd), as when
    # a user types it at a prompt: typer asks the parent process which shell to install for.
    installed = subprocess.run(
        [shell, "-c", "dockertap --install-completion; true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stderr
    assert f"{shell} completion installed" in installed.stdout
    term = TmuxTerminal([shutil.which(shell) or shell], env=env, width=200, height=50)
    try:
        term.keys("PS1='ready> '; PROMPT='ready> '; clear", "Enter")
        term.wait_for("ready>")
        term.keys("dockertap rep", "Tab")
        term.wait_for("dockertap replay")  # capture-pane drops the trailing space
        term.keys("docker-r", "Tab")
        term.wait_for("dockertap replay docker-run")
        term.keys("C-u", "dockertap run --for", "Tab")
        term.wait_for("dockertap run --format")
        term.keys("C-u", "dockertap explain docker comp", "Tab")
        term.wait_for("dockertap explain docker compose")
        term.keys("C-u", "dockertap explain GET /containers/js", "Tab")
        term.wait_for("dockertap explain GET /containers/json")
        term.keys("C-u", "dockertap plugin ", "Tab", "Tab")
        screen = term.wait_for("install")
        assert "remove" in screen
    finally:
        term.close()
