"""Shared fixtures: real engines (started once per session, per generation) and short socket dirs.

Engines (``tests/engines.py``), each from its own Debian root in its own mount + network namespace:

=================== ============================================================================
id                  engine
=================== ============================================================================
dockerd-20.10       dockerd 20.10 + containerd 1.6 + runc 1.1, overlay2 (Debian 12 "bookworm")
dockerd-28.5        dockerd 28.5 + containerd 2.1 + runc 1.3, overlay2 (Debian testing)
dockerd-28.5-c8d    the same dockerd 28.5 with the containerd image store (snapshotter)
podman-4.3          Podman 4.3 + runc (bookworm)
podman-5.8          Podman 5.8 + runc (testing)
podman-5.8-crun     Podman 5.8 + crun: only on hosts with a pure cgroup v2 layout (skipped otherwise)
=================== ============================================================================

A test asks for ``dockerd`` (runs once per dockerd id), ``podman`` (once per Podman id) or ``engine``
(all of them); the test id names the engine: ``test_x[dockerd-28.5-c8d]``.  Engines start lazily
and stay up for the session, so ordering never restarts one.

Which modules run where:
- every engine: conformance, layer annotation and evidence, recording, replay, the CLI's ``run``,
  doctor, and the engine fixtures' own tests — what they check depends on the engine's generation;
- one engine (``@pytest.mark.engines("dockerd-28.5")``): load and faults, which test dockertap's
  relay rather than the engine behind it (fuzz and socket permissions need no real engine at all).

``@pytest.mark.engines(id, ...)`` restricts a test or module to those ids (per family: a family none
of the ids names keeps all of its engines).  ``DOCKERTAP_ENGINES=dockerd-28.5,podman-5.8`` restricts a
local run the same way.

Policy: with ``DOCKERTAP_REQUIRE_ENGINES=1`` (CI sets it) an engine that cannot start FAILS every
test that needs it, so CI can never go green by skipping; otherwise (a laptop without Docker, not
root) those tests SKIP with the reason.  What a host or generation cannot do at all (crun on a hybrid
cgroup layout) is skipped with the reason in both cases.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
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

DOCKERD_IDS = ("dockerd-20.10", "dockerd-28.5", "dockerd-28.5-c8d")
PODMAN_IDS = ("podman-4.3", "podman-5.8")
ALL_ENGINE_IDS = DOCKERD_IDS + PODMAN_IDS
# Which engine ids each engine fixture runs a test on.
FIXTURE_ENGINES = {"dockerd": DOCKERD_IDS, "podman": PODMAN_IDS, "engine": ALL_ENGINE_IDS}
ENGINE_FIXTURES = ("dockerd", "podman", "engine", "target", "engine_pool")  # target: test_conformance


def engines_required() -> bool:
    return os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*ids): run this test only on these engine ids")
    with contextlib.suppress(FileNotFoundError, OSError):
        # One docker CLI for every test, also those that run `dockertap run -- docker …`: the testing
        # root's 28.5 (whatever the host has, or lacks).
        engines.put_docker_cli_on_path()


def selected_engines(candidates: tuple[str, ...], marker: pytest.Mark | None = None) -> list[str]:
    """``candidates`` narrowed by an ``engines`` marker and by ``$DOCKERTAP_ENGINES`` (each applied only
    when it names at least one of the candidates)."""
    chosen = list(candidates)
    for wanted in (marker.args if marker else (), _env_engines()):
        narrowed = [engine_id for engine_id in chosen if engine_id in wanted]
        if narrowed:
            chosen = narrowed
    return chosen


def _env_engines() -> tuple[str, ...]:
    return tuple(filter(None, os.environ.get("DOCKERTAP_ENGINES", "").split(",")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``dockerd``/``podman``/``engine`` by engine id (session scope: one engine per id)."""
    marker = metafunc.definition.get_closest_marker("engines")
    explicit = {
        name.strip()
        for mark in metafunc.definition.iter_markers("parametrize")
        for name in (mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0])
    }
    for fixture, candidates in FIXTURE_ENGINES.items():
        if fixture in metafunc.fixturenames and fixture not in explicit and _is_ours(metafunc, fixture):
            ids = selected_engines(candidates, marker)
            metafunc.parametrize(fixture, ids, indirect=True, scope="session", ids=ids)


def _is_ours(metafunc: pytest.Metafunc, fixture: str) -> bool:
    """False where a module defines a fixture of the same name (test_permissions' fake ``engine``)."""
    definitions = metafunc._arg2fixturedefs.get(fixture) or ()
    return bool(definitions) and definitions[-1].func.__module__ == __name__


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an engine fixture, so ``-m 'not engine'`` selects the pure tests."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in ENGINE_FIXTURES):
            item.add_marker(pytest.mark.engine)


def _unavailable(reason: str) -> None:
    if engines_required():
        pytest.fail(f"engine required (DOCKERTAP_REQUIRE_ENGINES=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"engine unavailable: {reason}")


class EnginePool:
    """Engines started on first use (with ``dt-busybox:latest`` imported) and stopped at session end.

    A start that failed is remembered, so every test needing that engine reports the same reason
    at once instead of retrying.
    """

    def __init__(self) -> None:
        self.running: dict[str, engines.Engine] = {}
        self.failures: dict[str, engines.EngineStartError] = {}

    def get(self, engine_id: str) -> engines.Engine:
        if engine_id in self.running:
            return self.running[engine_id]
        if engine_id not in self.failures:
            try:
                self.running[engine_id] = self._start(engine_id)
                return self.running[engine_id]
            except engines.EngineStartError as err:
                self.failures[engine_id] = err
        failure = self.failures[engine_id]
        if isinstance(failure, engines.EngineUnsupported):
            pytest.skip(f"{engine_id}: {failure}")
        _unavailable(f"{engine_id}: {failure}")
        raise AssertionError("unreachable")  # _unavailable always raises

    @staticmethod
    def _start(engine_id: str) -> engines.Engine:
        engine = engines.start_engine(engine_id, engines.short_base())
        try:
            engines.import_busybox(engine)
        except (RuntimeError, OSError) as err:
            tail = engine.log_tail()
            engine.stop()
            message = f"{engine_id} is up but importing busybox failed: {err}\n{tail}"
            raise engines.EngineStartError(message) from err
        return engine

    def stop_all(self) -> None:
        for engine in self.running.values():
            engine.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def engine_pool() -> Iterator[EnginePool]:
    """Every engine this session started, by id (for fixtures that choose engines themselves)."""
    pool = EnginePool()
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="session")
def dockerd(request: pytest.FixtureRequest, engine_pool: EnginePool) -> engines.Engine:
    """A private dockerd of one generation (``DOCKERD_IDS``), with its own containerd and busybox."""
    return engine_pool.get(getattr(request, "param", engines.DEFAULT_DOCKERD))


@pytest.fixture(scope="session")
def podman(request: pytest.FixtureRequest, engine_pool: EnginePool) -> engines.Engine:
    """A private ``podman system service`` of one generation (``PODMAN_IDS``), with busybox."""
    return engine_pool.get(getattr(request, "param", engines.DEFAULT_PODMAN))


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest, engine_pool: EnginePool) -> engines.Engine:
    """Each test runs once per engine id (``ALL_ENGINE_IDS``)."""
    return engine_pool.get(request.param)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory under /tmp for Unix sockets (pytest's tmp_path is too long for them)."""
    path = engines.short_base("dts")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
