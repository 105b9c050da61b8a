"""dockertap: a socket-tracing diagnostic proxy for the Docker API.

The installed package maps the repository's top-level folders under one namespace:
`dockertap/` is `dockertap` (the typer commands), `proxy/` is `dockertap.proxy`, `analyzers/` is
`dockertap.analyzers` and `recordings/` is `dockertap.recordings`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dockertap")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
