"""Replace a file in one step, so a reader (the docker CLI reading its config, a plugin listing)
never sees it half written."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str, text: str, mode: int) -> None:
    """Write `text` to `path` via a temporary file in the same directory (created 0755 if missing)
    and `os.replace`; the temporary file never survives a failure."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dockertap-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
