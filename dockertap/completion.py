"""Shell completion for values only dockertap knows: bundled recording names (and, for
`explain`, the routes of its model). typer installs the shell side (`--install-completion`)."""

from __future__ import annotations

import typer


def recording_names(incomplete: str) -> list[str]:
    """Bundled recordings whose name starts with what was typed; files complete as usual (the shell
    script falls back to file names when this returns nothing)."""
    from dockertap.recordings.replayable import bundled_recordings

    return sorted(name for name in bundled_recordings() if name.startswith(incomplete))


def explain_words(ctx: typer.Context, incomplete: str) -> list[str]:
    """`dockertap explain` takes a route (`GET /containers/json`) or a docker command
    (`docker run …`), as separate words: complete each word from the model's route table and its
    table of docker commands (the words typed so far are the argument's value in `ctx.params`)."""
    words = [str(w) for w in (ctx.params.get("request") or ()) if not str(w).startswith("-")]
    if not words:
        from dockertap.analyzers.routes import all_routes

        methods = sorted({spec.method for spec in all_routes()})
        return [w for w in ["docker", *methods] if w.startswith(incomplete)]
    if words[0] == "docker":
        from dockertap.analyzers.commands import known_commands

        typed = len(words) - 1
        nexts = {
            c.split()[typed]
            for c in known_commands()
            if len(c.split()) > typed and c.split()[:typed] == words[1:]
        }
        return sorted(w for w in nexts if w.startswith(incomplete))
    if len(words) == 1:
        from dockertap.analyzers.routes import all_routes

        paths = {spec.path for spec in all_routes() if spec.method == words[0].upper()}
        return sorted(p for p in paths if p.startswith(incomplete))
    return []


# compinit autoloads `_dockertap` from typer's file on the first Tab, but that file only *defines*
# the completion function, so the first Tab of every new zsh completes nothing. Complete on that
# first call too (the file's body runs as the function `_dockertap` exactly then).
_ZSH_FIRST_TAB = '\n\nif [[ "${funcstack[1]}" == "_%(prog_name)s" ]]; then\n  %(complete_func)s "$@"\nfi\n'


def complete_zsh_on_first_tab() -> None:
    """Extend typer's zsh script (a private table; left alone if typer changes it)."""
    try:
        from typer import _completion_shared as shared
    except ImportError:
        return
    scripts = getattr(shared, "_completion_scripts", None)
    if not isinstance(scripts, dict) or not isinstance(scripts.get("zsh"), str):
        return
    if _ZSH_FIRST_TAB not in scripts["zsh"]:
        scripts["zsh"] = scripts["zsh"].rstrip() + _ZSH_FIRST_TAB
