"""Shell completion for values only dockertap knows: bundled recording names (and, for
`explain`, the routes of its model). typer installs the shell side (`--install-completion`)."""

from __future__ import annotations


def recording_names(incomplete: str) -> list[str]:
    """Bundled recordings whose name starts with what was typed; files complete as usual (the shell
    script falls back to file names when this returns nothing)."""
    from dockertap.recordings.replayable import bundled_recordings

    return sorted(name for name in bundled_recordings() if name.startswith(incomplete))


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
