"""Debian roots that carry one engine generation each, built with ``mmdebstrap`` and cached.

The tests run every engine from its own suite's packages, not from the host's, so the same checkout
gives the same engines on a Debian 12 or a Debian 13 machine:

- ``bookworm``: dockerd 20.10, containerd 1.6, Podman 4.3, docker-compose v1 (1.29);
- ``testing``: dockerd 28.5, containerd 2.1, runc 1.3, buildx 0.29, compose v2 2.40, Podman 5.8, crun.

A root lives in ``/var/cache/dockertap/roots/<suite>`` (``$DOCKERTAP_ROOTS_CACHE`` overrides the
parent) with a stamp naming the recipe's hash and the installed package versions; a root whose
stamp does not match the recipe is rebuilt, so a warm machine reuses it and a fresh one builds it.
Engines never write into a root: each one runs on an overlay of it (see ``engines.py``).

Run ``python tests/engine_roots.py build`` (``.ci/run`` does) or ``... show``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
STAMP_NAME = ".dockertap-root.json"
# runc cannot raise RLIMIT_NPROC/NOFILE above this VM's hard limits, and podman copies the service's
# limits into every container unless containers.conf sets defaults.
CONTAINERS_CONF = """\
# Written by dockertap's tests/engine_roots.py.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "netavark"
"""
_COMMON_PACKAGES = (
    "docker.io", "containerd", "runc", "podman", "crun", "conmon", "catatonit", "netavark",
    "aardvark-dns", "fuse-overlayfs", "iptables", "nftables", "procps", "uidmap", "busybox-static",
    "docker-compose",
)  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """What goes into one root; any change here changes ``digest`` and so forces a rebuild."""

    suite: str
    packages: tuple[str, ...]
    apt_options: tuple[str, ...] = ()
    # Package versions the stamp records (and ``show`` prints).
    reported: tuple[str, ...] = ("docker.io", "containerd", "runc", "podman", "crun", "docker-compose")

    @property
    def digest(self) -> str:
        text = json.dumps([self.suite, sorted(self.packages), self.apt_options, CONTAINERS_CONF, MIRROR])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


RECIPES: dict[str, Recipe] = {
    # bookworm's docker.io still ships the CLI; docker-compose there is compose v1 (Python).
    "bookworm": Recipe("bookworm", _COMMON_PACKAGES),
    # testing's docker CLI is its own package; docker-compose there is compose v2 (the Go plugin).
    # Its Release file is past Valid-Until on the archive reached from here.
    "testing": Recipe(
        "testing",
        (*_COMMON_PACKAGES, "docker-cli", "docker-buildx"),
        apt_options=('Acquire::Check-Valid-Until "false"',),
        reported=(
            "docker.io",
            "docker-cli",
            "containerd",
            "runc",
            "docker-buildx",
            "docker-compose",
            "podman",
            "crun",
            "netavark",
        ),
    ),  # fmt: skip
}


class RootBuildError(RuntimeError):
    """mmdebstrap failed; the message carries its output tail."""


def cache_dir() -> Path:
    return Path(os.environ.get("DOCKERTAP_ROOTS_CACHE") or "/var/cache/dockertap/roots")


def root_path(suite: str) -> Path:
    return cache_dir() / suite


def read_stamp(suite: str) -> dict | None:
    try:
        return json.loads((root_path(suite) / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def is_current(suite: str) -> bool:
    stamp = read_stamp(suite)
    return stamp is not None and stamp.get("digest") == RECIPES[suite].digest


@contextlib.contextmanager
def _locked(suite: str) -> Iterator[None]:
    """One builder per suite on this machine (several test sessions may ask at once)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{suite}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_root(suite: str, log: bool = False) -> Path:
    """The root for ``suite``, built first if missing or built from another recipe."""
    if is_current(suite):
        return root_path(suite)
    with _locked(suite):
        if not is_current(suite):  # another process may have built it while we waited
            build_root(suite, log=log)
    return root_path(suite)


def build_root(suite: str, log: bool = False) -> Path:
    """Build ``suite``'s root next to the cached one, then swap it in (never a half-built root)."""
    if os.geteuid() != 0:
        raise RootBuildError(f"building the {suite} root needs root (euid is {os.geteuid()})")
    if shutil.which("mmdebstrap") is None:
        raise RootBuildError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    recipe = RECIPES[suite]
    target = root_path(suite)
    staging = target.with_name(f".{suite}.new")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        "mmdebstrap", "--mode=root", "--variant=apt", "--quiet",
        f"--include={','.join(recipe.packages)}",
        *[f"--aptopt={option}" for option in recipe.apt_options],
        # Documentation is dead weight in a root that only runs daemons.
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        recipe.suite, str(staging), MIRROR,
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise RootBuildError(f"mmdebstrap {suite} failed ({result.returncode}):\n{tail}")
    conf = staging / "etc/containers/containers.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(CONTAINERS_CONF)
    stamp = {
        "suite": suite,
        "digest": recipe.digest,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - started, 1),
        "versions": installed_versions(staging, recipe.reported),
    }
    (staging / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")
    old = target.with_name(f".{suite}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    if log:
        print(f"built {suite} root in {stamp['seconds']} s: {target}", file=sys.stderr)
    return target


def installed_versions(root: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """``{package: version}`` as the root's own dpkg database says."""
    argv = ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Package} ${Version}\n", *packages]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "show"
    suites = argv[2:] or list(RECIPES)
    if command not in ("build", "show") or any(s not in RECIPES for s in suites):
        print(f"usage: {argv[0]} build|show [{'|'.join(RECIPES)} ...]", file=sys.stderr)
        return 2
    for suite in suites:
        if command == "build":
            state = "cached" if is_current(suite) else "building"
            print(f"{suite}: {state} ({root_path(suite)})", flush=True)
            try:
                ensure_root(suite, log=True)
            except RootBuildError as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
        stamp = read_stamp(suite) or {}
        current = "current" if is_current(suite) else "missing or stale"
        versions = " ".join(f"{name}={version}" for name, version in stamp.get("versions", {}).items())
        print(f"{suite}: {current}; {versions}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
