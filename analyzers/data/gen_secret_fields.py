"""Generate `secret_fields.json`: every Engine API route that can carry a secret, and where.

Walks Moby's `api/swagger.yaml` (the same spec `gen_routes.py` reads): each route's header and
query parameters, its request body schema and its 2xx response schemas, following `$ref`,
`allOf`, array items and map values. A place is a row when

* a header is one of the redactor's `SECRET_HEADERS` (X-Registry-Auth, X-Registry-Config);
* a query parameter's name is secret, or the spec says it takes a URL (credentials in `user:pass@`);
* a body field's name is secret by `is_secret_name` (Password, IdentityToken, SigningCAKey, UnlockKey…);
* a body field is listed in `SECRET_SCHEMA_FIELDS` for its schema (SecretSpec.Data, JoinTokens.Worker…);
* a body field is `Env` (a list of `NAME=value`: values with secret names);

plus `AUTH_CONFIG_FIELDS` (the Go type has fields the spec leaves out) and the redactor's
`SECRET_BODY_ROUTES` (Podman's raw secret body). The redactor reads the `context` rows to know
which innocuous-looking keys are secret on which route; `tests/test_redact_routes.py` turns every
row into a case. A new secret field is one row in a table of `analyzers/redact.py`, then:

    python analyzers/data/gen_secret_fields.py /tmp/swagger.yaml \\
        --source "moby/moby api/swagger.yaml @ <commit>"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dockertap.analyzers.redact import (  # noqa: E402
    SECRET_BODY_ROUTES,
    SECRET_HEADERS,
    SECRET_SCHEMA_FIELDS,
    is_secret_name,
)

HTTP_METHODS = ("get", "post", "put", "delete", "head", "patch")

#: Fields of moby's `registry.AuthConfig` the spec's `AuthConfig` omits (api/types/registry/authconfig.go).
AUTH_CONFIG_FIELDS = ("auth", "identitytoken", "registrytoken")

_MAX_DEPTH = 12


def _resolve(spec: dict, schema: dict) -> tuple[str | None, dict]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        name = ref.rsplit("/", 1)[1]
        return name, spec["definitions"].get(name, {})
    return None, schema


def _walk(spec: dict, schema: Any, path: tuple[str, ...], schema_name: str | None, seen: frozenset[str]):
    """Yield (field path, schema name, field name, field schema) for every property reachable."""
    if not isinstance(schema, dict) or len(path) > _MAX_DEPTH:
        return
    name, schema = _resolve(spec, schema)
    if name is not None:
        if name in seen:
            return
        seen = seen | {name}
        schema_name = name
    for part in schema.get("allOf") or []:
        yield from _walk(spec, part, path, schema_name, seen)
    if schema.get("type") == "array" or "items" in schema:
        yield from _walk(spec, schema.get("items"), (*path, "[]"), schema_name, seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(spec, extra, (*path, "{}"), schema_name, seen)
    for field, sub in (schema.get("properties") or {}).items():
        yield (*path, field), schema_name, field, sub
        yield from _walk(spec, sub, (*path, field), None, seen)


def _body_rows(spec: dict, route: str, where: str, schema: dict, source: str) -> list[dict]:
    context = {(row["schema"], row["field"]): row["why"] for row in SECRET_SCHEMA_FIELDS}
    rows: dict[str, dict] = {}
    for path, schema_name, field, sub in _walk(spec, schema, (), None, frozenset()):
        _, sub = _resolve(spec, sub) if isinstance(sub, dict) else (None, {})
        is_string = sub.get("type") == "string"
        kind = None
        if (schema_name, field) in context and is_string:
            kind, why = "context", context[(schema_name, field)]
        elif is_secret_name(field) and is_string:
            kind, why = "name", f"field name {field!r} is secret-looking"
        elif field == "Env" and sub.get("type") == "array":
            kind, why = "assignment", "Env entries NAME=value: values of secret-looking names"
        if kind is None:
            continue
        rows[".".join(path)] = {
            "route": route,
            "where": where,
            "field": ".".join(path),
            "key": field,
            "kind": kind,
            "why": why,
            "source": f"{source}: {schema_name or 'inline'}.{field}",
        }
    return list(rows.values())


def secret_fields(spec: dict, source: str) -> list[dict]:
    headers = {row["name"] for row in SECRET_HEADERS}
    rows: list[dict] = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in HTTP_METHODS:
                continue
            route = f"{method.upper()} {path}"
            for param in op.get("parameters") or []:
                where, name = param.get("in"), param.get("name", "")
                description = str(param.get("description") or "")
                if where == "header" and name.lower() in headers:
                    rows.append(
                        {
                            "route": route,
                            "where": "header",
                            "field": name,
                            "key": name,
                            "kind": "header",
                            "why": "credential header",
                            "source": f"{source}: parameters {name}",
                        }
                    )
                elif where == "query" and (is_secret_name(name) or "URL" in description):
                    kind = "name" if is_secret_name(name) else "url"
                    rows.append(
                        {
                            "route": route,
                            "where": "query",
                            "field": name,
                            "key": name,
                            "kind": kind,
                            "why": "secret-looking name" if kind == "name" else "takes a URL (user:pass@)",
                            "source": f"{source}: parameters {name}",
                        }
                    )
                elif where == "body" and isinstance(param.get("schema"), dict):
                    schema = param["schema"]
                    rows += _body_rows(spec, route, "request", schema, source)
                    if _resolve(spec, schema)[0] == "AuthConfig":
                        for field in AUTH_CONFIG_FIELDS:
                            rows.append(
                                {
                                    "route": route,
                                    "where": "request",
                                    "field": field,
                                    "key": field,
                                    "kind": "name",
                                    "why": "registry.AuthConfig field missing from the spec",
                                    "source": "moby api/types/registry/authconfig.go: AuthConfig",
                                }
                            )
            for status, response in (op.get("responses") or {}).items():
                if str(status).startswith("2") and isinstance(response.get("schema"), dict):
                    rows += _body_rows(spec, route, "response", response["schema"], source)
    for row in SECRET_BODY_ROUTES:
        rows.append(
            {
                "route": row["route"],
                "where": "request",
                "field": "",
                "key": "",
                "kind": "body",
                "why": row["why"],
                "source": row["source"],
            }
        )
    return sorted(rows, key=lambda r: (r["route"], r["where"], r["field"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("swagger", type=Path, help="path to Moby's api/swagger.yaml")
    parser.add_argument("--source", default="moby/moby api/swagger.yaml")
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("secret_fields.json"))
    args = parser.parse_args(argv)
    from ruamel.yaml import YAML

    spec = YAML(typ="safe").load(args.swagger.read_text())
    rows = secret_fields(spec, args.source)
    doc = {
        "generated_by": "analyzers/data/gen_secret_fields.py",
        "spec_version": str(spec["info"]["version"]),
        "source": args.source,
        "fields": rows,
    }
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    routes = len({r["route"] for r in rows})
    print(f"wrote {len(rows)} secret-carrying places on {routes} routes to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
