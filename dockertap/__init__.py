"""dockertap: a socket-tracing diagnostic proxy for the Docker API.

The installed package maps the repository's top-level folders under one namespace:
`dockertap/` is `dockertap` (the typer commands), `proxy/` is `dockertap.proxy`, `analyzers/` is
`dockertap.analyzers` and `recordings/` is `dockertap.recordings`.
"""

import os as _os

# Run from a source checkout (`python -m pytest` puts the checkout first on sys.path), this folder is
# found as `dockertap` before any installed copy: let its subpackages resolve to the top-level folders,
# as pyproject's package-dir maps them when installed. An installed package has no pyproject beside it.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "pyproject.toml")) and _os.path.isdir(
    _os.path.join(_checkout, "proxy")
):
    __path__.append(_checkout)


def __getattr__(name: str) -> str:
    """`__version__`, looked up on first use: importlib.metadata costs ~20 ms at every start."""
    if name != "__version__":
        raise AttributeError(f"module 'dockertap' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    global __version__
    try:
        __version__ = version("dockertap")
    except PackageNotFoundError:  # running from a source tree that was never installed
        __version__ = "0.0.0+unknown"
    return __version__
