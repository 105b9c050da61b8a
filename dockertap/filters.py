"""`--filter`: which exchanges the display shows (recordings always keep everything).

Each filter is `KEY=VALUE`; several filters must all match:

* `route=GLOB`  — the templated route, e.g. `route='POST /containers/*'` (a bare value means this);
* `status=CLASS` — `2xx`, `4xx`, `5xx`, an exact code (`404`), or `error` (failed/synthetic);
* `client=GLOB` — the client's command line or its client column, e.g. `client='docker compose*'`,
  `client='sdk python*'`.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from dockertap.proxy.exchange import Exchange


class FilterError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ExchangeFilter:
    key: str
    value: str

    def matches(self, ex: Exchange) -> bool:
        if self.key == "route":
            route = getattr(getattr(ex.annotation, "route", None), "template", None)
            method, target = ex.method_and_target
            candidates = [route] if route else []
            candidates.append(f"{method} {target.split('?', 1)[0]}")
            return any(fnmatch.fnmatchcase(c, self.value) for c in candidates)
        if self.key == "status":
            status = ex.status
            if self.value == "error":
                return ex.synthetic or ex.error is not None or (status or 0) >= 400
            if status is None:
                return False
            if len(self.value) == 3 and self.value.endswith("xx"):
                return str(status)[0] == self.value[0]
            return str(status) == self.value
        if self.key == "client":
            command = ex.peer.command or ""
            words = command.split()
            short = " ".join([os.path.basename(words[0]), *words[1:]]) if words else ""
            if fnmatch.fnmatchcase(command, self.value) or fnmatch.fnmatchcase(short, self.value):
                return True
            from dockertap.trace_view import client_of  # the client column: `compose up`, `sdk python`

            return fnmatch.fnmatchcase(client_of(ex), self.value)
        return False


def _valid_status(value: str) -> bool:
    if value == "error":
        return True
    return len(value) == 3 and value[0].isdigit() and (value[1:].isdigit() or value[1:] == "xx")


def parse_filters(specs: list[str] | None) -> list[ExchangeFilter]:
    filters = []
    for spec in specs or ():
        key, sep, value = spec.partition("=")
        if not sep or key not in ("route", "status", "client"):
            key, value = "route", spec
        if not value:
            raise FilterError(f"empty filter {spec!r}")
        if key == "status" and not _valid_status(value):
            raise FilterError(f"status filter takes 2xx/4xx/5xx, a code like 404, or 'error', not {value!r}")
        filters.append(ExchangeFilter(key, value))
    return filters


def matches_all(filters: list[ExchangeFilter], ex: Exchange) -> bool:
    return all(f.matches(ex) for f in filters)
