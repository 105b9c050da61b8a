"""Backend fingerprinting from `/_ping`, `/version` and `/info`.

The two base samples were captured from the real dockerd 20.10 and podman 4.3 on this machine
(tests/data/fingerprint/). The VM products are those samples with the fields layer-model.md §4.2/§4.3
says each product reports; no product can be reached from this machine.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dockertap.analyzers.fingerprint import MARKERS, fingerprint

DATA = Path(__file__).parent / "data" / "fingerprint"
DOCKERD = json.loads((DATA / "dockerd-20.10-debian-rootful.json").read_text())
PODMAN = json.loads((DATA / "podman-4.3-debian-rootful.json").read_text())


def _variant(
    base: dict, *, url: str | None = None, info: dict | None = None, version: dict | None = None
) -> dict:
    sample = copy.deepcopy(base)
    sample["info"].update(info or {})
    sample["version"].update(version or {})
    if url is not None:
        sample["endpoint_url"] = url
    return sample


def _fp(sample: dict, **kw):
    return fingerprint(
        sample["ping_headers"], sample["version"], sample["info"], sample["endpoint_url"], **kw
    )


C8D_STATUS = {"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}
ROOTLESS_COMPONENTS = DOCKERD["version"]["Components"] + [
    {
        "Name": "rootlesskit",
        "Version": "2.3.4",
        "Details": {"ApiVersion": "1.1.1", "NetworkDriver": "slirp4netns"},
    }
]

PRODUCT_SAMPLES = {
    "native dockerd (rootful)": _variant(DOCKERD, url="unix:///var/run/docker.sock"),
    "native dockerd (rootless)": _variant(
        DOCKERD,
        url="unix:///run/user/1000/docker.sock",
        info={"SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless", "name=cgroupns"]},
        version={"Components": ROOTLESS_COMPONENTS},
    ),
    "Docker Desktop": _variant(
        DOCKERD,
        url="unix:///Users/me/.docker/run/docker.sock",
        info={
            "OperatingSystem": "Docker Desktop",
            "Name": "docker-desktop",
            "KernelVersion": "6.10.14-linuxkit",
            "Labels": [
                "com.docker.desktop.address=unix:///Users/me/Library/Containers/com.docker.docker/Data/docker-cli.sock"
            ],
        },
        version={"Platform": {"Name": "Docker Desktop 4.43.2 (199162)"}},
    ),
    "Rancher Desktop (moby)": _variant(
        DOCKERD,
        url="unix:///Users/me/.rd/docker.sock",
        info={"Name": "lima-rancher-desktop", "OperatingSystem": "Alpine Linux v3.20"},
    ),
    "Colima": _variant(
        DOCKERD,
        url="unix:///Users/me/.colima/default/docker.sock",
        info={"Name": "colima", "OperatingSystem": "Ubuntu 24.04.1 LTS"},
    ),
    "OrbStack": _variant(
        DOCKERD,
        url="unix:///Users/me/.orbstack/run/docker.sock",
        info={
            "OperatingSystem": "OrbStack",
            "Name": "orbstack",
            "KernelVersion": "6.15.11-orbstack-00539-g9885ebd8e3f4",
        },
    ),
    "Lima": _variant(
        DOCKERD,
        url="unix:///Users/me/.lima/docker/sock/docker.sock",
        info={"Name": "lima-docker", "SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless"]},
    ),
    "Podman (rootful)": _variant(PODMAN, url="unix:///run/podman/podman.sock"),
    "Podman (rootless)": _variant(
        PODMAN,
        url="unix:///run/user/1000/podman/podman.sock",
        info={"Rootless": True, "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"]},
    ),
    "Podman machine": _variant(
        PODMAN,
        url="unix:///var/folders/xy/T/podman/podman-machine-default-api.sock",
        info={"Name": "localhost.localdomain", "OperatingSystem": "fedora", "Rootless": False},
    ),
}


@pytest.mark.parametrize("product", list(PRODUCT_SAMPLES))
def test_each_product_is_recognised(product: str) -> None:
    fp = _fp(PRODUCT_SAMPLES[product])
    assert fp.product == product
    assert fp.family == ("podman" if product.startswith("Podman") else "dockerd")
    assert fp.reasons and any(product in r for r in fp.reasons)


@pytest.mark.parametrize(
    ("product", "location"),
    [
        ("native dockerd (rootful)", "host"),
        ("Podman (rootful)", "host"),
        ("Docker Desktop", "vm"),
        ("Colima", "vm"),
        ("OrbStack", "vm"),
        ("Lima", "vm"),
        ("Rancher Desktop (moby)", "vm"),
        ("Podman machine", "vm"),
    ],
)
def test_location(product: str, location: str) -> None:
    assert _fp(PRODUCT_SAMPLES[product]).location == location


def test_real_dockerd_capture() -> None:
    fp = _fp(DOCKERD)
    assert fp.family == "dockerd"
    assert fp.product == "native dockerd (rootful)"
    assert fp.engine_version == "20.10.24+dfsg1"
    assert fp.api_version == "1.41"
    assert fp.containerd_version == "1.6.20~ds1"
    assert fp.runc_version == "1.1.5+ds1"
    assert fp.init_version == "0.19.0"
    assert fp.default_runtime == "runc"
    assert fp.image_store == "graphdriver"
    assert fp.storage_driver == "overlay2"
    assert fp.os == "Debian GNU/Linux 12 (bookworm)"


def test_real_podman_capture() -> None:
    fp = _fp(PODMAN)
    assert fp.family == "podman"
    assert fp.product == "Podman (rootful)"
    assert fp.engine_version == "4.3.1"
    assert fp.containerd_version is None and fp.init_version is None
    assert fp.runc_version == "1.1.5+ds1"  # from "OCI Runtime (runc)": "runc version 1.1.5+ds1\ncommit: …"
    assert fp.storage_driver == "overlay"
    assert fp.image_store == "graphdriver"


def test_containerd_image_store() -> None:
    fp = _fp(_variant(DOCKERD, info=C8D_STATUS))
    assert fp.image_store == "containerd"
    assert fp.storage_driver == "overlayfs"
    assert any("io.containerd.snapshotter.v1" in r for r in fp.reasons)


def test_location_from_containerd_socket_existence() -> None:
    sample = _variant(DOCKERD, info={"Containerd": {"Address": "/run/containerd/containerd.sock"}})
    seen: list[str] = []

    def exists(path: str) -> bool:
        seen.append(path)
        return path == "/run/containerd/containerd.sock"

    assert _fp(sample, path_exists=exists).location == "host"
    assert seen == ["/run/containerd/containerd.sock"]
    assert _fp(sample, path_exists=lambda p: False).location == "vm"
    assert _fp(_variant(sample, url="tcp://10.0.0.5:2375")).location == "unknown"


def test_ping_only_is_enough_for_family() -> None:
    fp = fingerprint({"Server": "Libpod/5.8.2 (linux)", "Api-Version": "1.44"}, None, None)
    assert (fp.family, fp.product, fp.engine_version, fp.api_version) == (
        "podman",
        "Podman (rootful)",
        "5.8.2",
        "1.44",
    )
    assert fp.image_store == "unknown"


def test_nothing_known() -> None:
    fp = fingerprint(None, None, None)
    assert (fp.family, fp.product, fp.location) == ("unknown", "unknown Docker-compatible", "unknown")


def test_to_dict_is_json() -> None:
    data = _fp(DOCKERD).to_dict()
    assert json.loads(json.dumps(data))["product"] == "native dockerd (rootful)"
    assert isinstance(data["reasons"], list)


def test_every_marker_has_a_source() -> None:
    assert all(m.source and m.means and m.weight in (1, 2) for m in MARKERS)
