"""Shared fixtures: real engines (started once per session) and short socket directories.

Policy for engines: with ``DOCKERTAP_REQUIRE_ENGINES=1`` (CI sets it) an engine that cannot start
FAILS every test that needs it, so CI can never go green by skipping; otherwise (a laptop without
Docker, not root) those tests SKIP with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `import engines` from tests and from conftest alike

import engines  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Fuzz profiles (tests/test_fuzz.py): "ci" = 2,600 cases per property (4 properties: > 10,000 in all,
# ~1 min); "deep" for local soaks. Pick one with HYPOTHESIS_PROFILE.
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=2_600, deadline=None, suppress_health_check=_FUZZ_HEALTH)
settings.register_profile("deep", max_examples=100_000, deadline=None, suppress_health_check=_FUZZ_HEALTH)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ENGINE_FIXTURES = ("dockerd", "podman", "engine", "target")  # target: test_conformance


def engines_required() -> bool:
    return os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an engine fixture, so ``-m 'not engine'`` selects the pure tests."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in ENGINE_FIXTURES):
            item.add_marker(pytest.mark.engine)


def _unavailable(reason: str) -> None:
    if engines_required():
        pytest.fail(f"engine required (DOCKERTAP_REQUIRE_ENGINES=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"engine unavailable: {reason}")


def _engine_session(starter: Callable[[str], engines.Engine]) -> Iterator[engines.Engine]:
    try:
        engine = starter(str(engines.short_base()))
    except engines.EngineStartError as err:
        _unavailable(str(err))
    try:
        try:
            engines.import_busybox(engine)
        except (RuntimeError, OSError) as err:
            _unavailable(f"{engine.name} is up but importing busybox failed: {err}\n{engine.log_tail()}")
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def dockerd() -> Iterator[engines.Engine]:
    """A private dockerd (with its own containerd) and ``dt-busybox:latest`` imported."""
    yield from _engine_session(engines.start_dockerd)


@pytest.fixture(scope="session")
def podman() -> Iterator[engines.Engine]:
    """A private ``podman system service`` and ``dt-busybox:latest`` imported."""
    yield from _engine_session(engines.start_podman)


@pytest.fixture(params=["dockerd", "podman"])
def engine(request: pytest.FixtureRequest) -> engines.Engine:
    """Each test runs once per engine."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory under /tmp for Unix sockets (pytest's tmp_path is too long for them)."""
    path = engines.short_base("dts")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
