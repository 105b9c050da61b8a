"""Tell which backend sits behind a Docker API socket from `/_ping` headers, `/version` and `/info`.

The facts are a declarative marker table (layer-model.md §4.1–§4.3, each row with its source); the code only
evaluates markers and combines them. Every conclusion carries a human-readable reason, because users need to
see *why* dockertap thinks their socket is, say, Colima rather than native dockerd.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Family = Literal["dockerd", "podman", "unknown"]
ImageStore = Literal["graphdriver", "containerd", "unknown"]
Location = Literal["host", "vm", "unknown"]


@dataclass(frozen=True, slots=True)
class Marker:
    """One observable fact and what it says about the backend."""

    #: "ping" (a response header), "version", "info" (dotted JSON field), "endpoint" (the URL) or
    #: "component" (a `/version` Components[].Name).
    where: str
    field: str
    #: "eq", "prefix", "suffix", "contains", "present", "regex", "item" (list contains an item),
    #: "item_contains" (some list item contains the value).
    test: str
    value: str
    #: What it indicates: "family:dockerd", "family:podman", "product:<name>", "rootless", "machine".
    means: str
    #: Strong markers (2) outvote weak ones (1), e.g. OS name beats a kernel-suffix guess.
    weight: int
    source: str


_DESKTOP = "observed public `docker info`/`docker version` outputs (layer-model.md §4.2)"

#: Markers from layer-model.md §4. Order breaks ties between equally weighted products.
MARKERS: tuple[Marker, ...] = (
    # --- family -----------------------------------------------------------------------------------
    Marker(
        "ping",
        "Server",
        "prefix",
        "Docker/",
        "family:dockerd",
        2,
        "moby daemon/server/middleware/version.go (Server header on every response)",
    ),
    Marker(
        "ping",
        "Server",
        "prefix",
        "Libpod/",
        "family:podman",
        2,
        "podman pkg/api/server/handler_api.go: apiWrapper (Server header)",
    ),
    Marker(
        "ping",
        "Libpod-Api-Version",
        "present",
        "",
        "family:podman",
        2,
        "podman pkg/api/handlers/compat/ping.go: Ping",
    ),
    Marker(
        "ping",
        "Swarm",
        "present",
        "",
        "family:dockerd",
        1,
        "moby daemon/server/router/system/system_routes.go: pingHandler",
    ),
    Marker("component", "Name", "eq", "Engine", "family:dockerd", 2, "moby daemon/info.go: SystemVersion"),
    Marker(
        "component",
        "Name",
        "eq",
        "Podman Engine",
        "family:podman",
        2,
        "podman pkg/api/handlers/compat/version.go",
    ),
    Marker(
        "component", "Name", "eq", "Conmon", "family:podman", 1, "podman pkg/api/handlers/compat/version.go"
    ),
    Marker(
        "info", "BuildahVersion", "present", "", "family:podman", 1, "podman pkg/api/handlers/compat/info.go"
    ),
    # --- VM products (dockerd inside a VM, reached through a forwarded socket) ----------------------
    Marker(
        "info",
        "OperatingSystem",
        "eq",
        "Docker Desktop",
        "product:Docker Desktop",
        2,
        _DESKTOP + "; testcontainers-go internal/core/docker_host.go",
    ),
    Marker("version", "Platform.Name", "prefix", "Docker Desktop", "product:Docker Desktop", 2, _DESKTOP),
    Marker("info", "Name", "eq", "docker-desktop", "product:Docker Desktop", 2, _DESKTOP),
    Marker("info", "KernelVersion", "suffix", "-linuxkit", "product:Docker Desktop", 1, _DESKTOP),
    Marker(
        "info", "KernelVersion", "contains", "microsoft-standard-WSL2", "product:Docker Desktop", 1, _DESKTOP
    ),
    Marker(
        "info",
        "Labels",
        "item_contains",
        "com.docker.desktop.address=",
        "product:Docker Desktop",
        2,
        _DESKTOP,
    ),
    Marker(
        "endpoint",
        "",
        "contains",
        "/.docker/desktop/docker.sock",
        "product:Docker Desktop",
        2,
        "testcontainers-go internal/core/docker_rootless.go (layer-model.md §4.3)",
    ),
    Marker(
        "endpoint",
        "",
        "contains",
        "/.docker/run/docker.sock",
        "product:Docker Desktop",
        2,
        "layer-model.md §4.3 (Docker Desktop macOS socket)",
    ),
    Marker("info", "OperatingSystem", "eq", "OrbStack", "product:OrbStack", 2, _DESKTOP),
    Marker("info", "Name", "eq", "orbstack", "product:OrbStack", 2, _DESKTOP),
    Marker("info", "KernelVersion", "contains", "orbstack", "product:OrbStack", 1, _DESKTOP),
    Marker(
        "endpoint", "", "contains", "/.orbstack/", "product:OrbStack", 2, "layer-model.md §4.3 (observed)"
    ),
    Marker(
        "info",
        "Name",
        "eq",
        "lima-rancher-desktop",
        "product:Rancher Desktop (moby)",
        2,
        "rancher-desktop backend/lima.ts (VM hostname)",
    ),
    Marker(
        "info",
        "SecurityOptions",
        "item_contains",
        "/etc/rancher-desktop/",
        "product:Rancher Desktop (moby)",
        1,
        _DESKTOP,
    ),
    Marker(
        "endpoint",
        "",
        "contains",
        "/.rd/docker.sock",
        "product:Rancher Desktop (moby)",
        2,
        "rancher-desktop utils/dockerDirManager.ts (~/.rd/docker.sock)",
    ),
    Marker(
        "info",
        "Name",
        "regex",
        r"^colima(-.+)?$",
        "product:Colima",
        2,
        "colima environment/vm/lima/yaml.go (hostname = profile ID)",
    ),
    Marker(
        "endpoint",
        "",
        "regex",
        r"/\.?colima/[^/]+/docker\.sock$",
        "product:Colima",
        2,
        "colima environment/container/docker/context.go",
    ),
    Marker(
        "info",
        "Name",
        "prefix",
        "lima-",
        "product:Lima",
        1,
        "lima pkg/instance/hostname/hostname.go: FromInstName",
    ),
    Marker("endpoint", "", "contains", "/.lima/", "product:Lima", 2, "lima templates/docker.yaml"),
    # --- rootless / podman machine --------------------------------------------------------------------
    Marker(
        "info",
        "SecurityOptions",
        "item",
        "name=rootless",
        "rootless",
        2,
        "moby daemon/info.go: fillSecurityOptions; podman compat/info.go",
    ),
    Marker(
        "component",
        "Name",
        "eq",
        "rootlesskit",
        "rootless",
        2,
        "moby daemon/info_unix.go: fillRootlessVersion",
    ),
    Marker(
        "info", "Rootless", "eq", "True", "rootless", 2, "podman pkg/api/handlers/compat/info.go (Rootless)"
    ),
    Marker(
        "endpoint",
        "",
        "regex",
        r"podman-machine-[^/]*-api\.sock$|/podman/[^/]+-api\.sock$",
        "machine",
        2,
        "podman pkg/machine/shim/networking_unix.go: setupForwardingLinks",
    ),
    Marker(
        "endpoint",
        "",
        "contains",
        "/containers/podman/machine/",
        "machine",
        2,
        "podman pkg/machine/shim/networking_unix.go: setupForwardingLinks",
    ),
    Marker("info", "Name", "eq", "localhost.localdomain", "machine", 1, "podman issue #20179 (observed)"),
)

#: Products whose daemon runs inside a VM the user does not see.
VM_PRODUCTS = frozenset(
    {"Docker Desktop", "OrbStack", "Rancher Desktop (moby)", "Colima", "Lima", "Podman machine"}
)


@dataclass(frozen=True, slots=True)
class BackendFingerprint:
    """What the backend is and where it runs, with the reasons shown to the user."""

    family: Family
    product: str
    engine_version: str | None
    api_version: str | None
    containerd_version: str | None
    runc_version: str | None
    init_version: str | None
    default_runtime: str | None
    image_store: ImageStore
    storage_driver: str | None
    containerd_address: str | None
    location: Location
    os: str | None
    name: str | None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def _dig(doc: Mapping[str, Any] | None, dotted: str) -> Any:
    value: Any = doc
    for key in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _test(marker: Marker, value: Any) -> bool:
    if value is None:
        return False
    if marker.test == "present":
        return True
    if marker.test in ("item", "item_contains"):
        items = value if isinstance(value, list) else []
        if marker.test == "item":
            return marker.value in items
        return any(marker.value in str(item) for item in items)
    text = str(value)
    match marker.test:
        case "eq":
            return text == marker.value
        case "prefix":
            return text.startswith(marker.value)
        case "suffix":
            return text.endswith(marker.value)
        case "contains":
            return marker.value in text
        case "regex":
            return re.search(marker.value, text) is not None
    raise ValueError(f"unknown marker test {marker.test!r}")


def _observed(
    marker: Marker, ping: Mapping[str, str], version: dict | None, info: dict | None, url: str
) -> Any:
    if marker.where == "ping":
        return ping.get(marker.field.lower())
    if marker.where == "version":
        return _dig(version, marker.field)
    if marker.where == "info":
        return _dig(info, marker.field)
    if marker.where == "endpoint":
        return url or None
    if marker.where == "component":
        names = [c.get("Name") for c in (version or {}).get("Components") or [] if isinstance(c, Mapping)]
        return next((n for n in names if _test(marker, n)), None)
    raise ValueError(f"unknown marker location {marker.where!r}")


def _describe(marker: Marker, observed: Any) -> str:
    where = {"ping": "/_ping header", "version": "/version", "info": "/info", "endpoint": "endpoint"}.get(
        marker.where, "/version component"
    )
    shown = marker.value if marker.test in ("item", "item_contains") else observed
    label = f"{where} {marker.field}".strip()
    return f"{label} = {shown!r} → {marker.means.split(':')[-1]} ({marker.source})"


def _component(version: dict | None, *names: str) -> dict | None:
    for comp in (version or {}).get("Components") or []:
        if isinstance(comp, Mapping) and comp.get("Name") in names:
            return dict(comp)
    return None


def _runtime_version(version: dict | None, default_runtime: str | None) -> str | None:
    """dockerd names the component after the default runtime; Podman calls it `OCI Runtime (<name>)`."""
    names = [n for n in (default_runtime, "runc") if n]
    comp = _component(version, *names, *(f"OCI Runtime ({n})" for n in names))
    if comp is None:
        return None
    text = str(comp.get("Version") or "")
    m = re.search(r"version\s+(\S+)", text)
    return m.group(1) if m else (text or None)


def fingerprint(
    ping_headers: Mapping[str, str] | None,
    version: dict | None,
    info: dict | None,
    endpoint_url: str | None = None,
    path_exists: Callable[[str], bool] | None = None,
) -> BackendFingerprint:
    """Classify a backend. `path_exists` (e.g. `os.path.exists`) is the only I/O, and it is optional."""
    ping = {k.lower(): v for k, v in (ping_headers or {}).items()}
    url = endpoint_url or ""
    scores: dict[str, int] = {}
    reasons: list[str] = []
    for marker in MARKERS:
        observed = _observed(marker, ping, version, info, url)
        if _test(marker, observed):
            scores[marker.means] = scores.get(marker.means, 0) + marker.weight
            reasons.append(_describe(marker, observed))

    family: Family = "unknown"
    if scores.get("family:podman", 0) > scores.get("family:dockerd", 0):
        family = "podman"
    elif scores.get("family:dockerd", 0) > 0:
        family = "dockerd"

    rootless = scores.get("rootless", 0) > 0
    vm_product = max(
        (m.means.split(":", 1)[1] for m in MARKERS if m.means.startswith("product:") and scores.get(m.means)),
        key=lambda p: scores["product:" + p],
        default=None,
    )
    if family == "podman":
        product = (
            "Podman machine"
            if scores.get("machine")
            else "Podman (rootless)"
            if rootless
            else "Podman (rootful)"
        )
    elif family == "dockerd":
        product = vm_product or ("native dockerd (rootless)" if rootless else "native dockerd (rootful)")
    else:
        product = vm_product or "unknown Docker-compatible"
    reasons.append(f"product: {product}")

    default_runtime = _dig(info, "DefaultRuntime")
    if not default_runtime and version:
        # Podman names its runtime as a /version component `OCI Runtime (crun|runc)` (compat/version.go).
        for component in version.get("Components") or []:
            name = str(component.get("Name", ""))
            if name.startswith("OCI Runtime (") and name.endswith(")"):
                default_runtime = name[len("OCI Runtime (") : -1]
    storage_driver = _dig(info, "Driver")
    image_store, why_store = _image_store(family, info)
    reasons.append(why_store)
    containerd_address = _dig(info, "Containerd.Address")
    location, why_location = _location(product, url, containerd_address, path_exists)
    reasons.append(why_location)

    server = ping.get("server", "")
    engine_version = _dig(version, "Version") or _dig(info, "ServerVersion")
    if not engine_version and (m := re.match(r"(?:Docker|Libpod)/(\S+)", server)):
        engine_version = m.group(1)
    containerd = _component(version, "containerd")
    init = _component(version, "docker-init")
    return BackendFingerprint(
        family=family,
        product=product,
        engine_version=engine_version,
        api_version=ping.get("api-version") or _dig(version, "ApiVersion"),
        containerd_version=(containerd or {}).get("Version"),
        runc_version=_runtime_version(version, default_runtime),
        init_version=(init or {}).get("Version"),
        default_runtime=default_runtime,
        image_store=image_store,
        storage_driver=storage_driver,
        containerd_address=containerd_address,
        location=location,
        os=_dig(info, "OperatingSystem"),
        name=_dig(info, "Name"),
        reasons=tuple(reasons),
    )


#: C8D mode reports exactly this DriverStatus (moby daemon/containerd/service.go: LayerStoreStatus).
_SNAPSHOTTER_STATUS = ["driver-type", "io.containerd.snapshotter.v1"]


def _image_store(family: Family, info: dict | None) -> tuple[ImageStore, str]:
    if info is None:
        return "unknown", "image store: unknown (no /info)"
    status = info.get("DriverStatus") or []
    if family == "podman":
        return "graphdriver", (
            "image store: graphdriver — Podman keeps images in containers/storage (graph drivers), "
            "no containerd"
        )
    if _SNAPSHOTTER_STATUS in status:
        return "containerd", (
            "image store: containerd — /info DriverStatus is [driver-type, io.containerd.snapshotter.v1] "
            "(moby daemon/containerd/service.go: LayerStoreStatus)"
        )
    if info.get("Driver"):
        return "graphdriver", (
            f"image store: graphdriver — /info Driver {info['Driver']!r} without the snapshotter driver-type "
            "(moby daemon/graphdriver)"
        )
    return "unknown", "image store: unknown (no Driver in /info)"


def _location(
    product: str, url: str, containerd_address: str | None, path_exists: Callable[[str], bool] | None
) -> tuple[Location, str]:
    if product in VM_PRODUCTS:
        return "vm", f"location: vm — {product} runs its daemon inside a VM"
    is_unix = url.startswith(("unix://", "/"))
    if not is_unix:
        return "unknown", f"location: unknown — endpoint {url or '(none)'} is not a local Unix socket"
    if containerd_address and path_exists is not None:
        if path_exists(containerd_address):
            return "host", f"location: host — containerd socket {containerd_address} exists on this host"
        return "vm", (
            f"location: vm — the daemon's containerd socket {containerd_address} does not exist here, "
            "so the Unix socket is forwarded from elsewhere"
        )
    return "host", "location: host — local Unix socket and no VM product markers"
