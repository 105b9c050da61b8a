"""What users install: the wheel and sdist `python -m build` makes, and `pipx install .` /
`uv tool install .` giving a working `dockertap`. Built from a copy of the tracked files, so the
checkout gets no build/ or egg-info litter and nothing untracked sneaks into a package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_PACKAGES = (
    "dockertap",
    "dockertap/proxy",
    "dockertap/proxy/evidence",
    "dockertap/analyzers",
    "dockertap/recordings",
)
# Files every installation needs beyond the Python modules.
REQUIRED_DATA = (
    "dockertap/py.typed",
    "dockertap/analyzers/data/routes.json",
    "dockertap/recordings/bundled/docker-run.jsonl",
)
NEVER_SHIPPED = (
    "__pycache__",
    ".pyc",
    ".venv",
    ".hypothesis",
    ".pytest_cache",
    "bench/results",
    ".egg-info/",
)


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False, timeout=60
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell tracked files from local litter")
    return [name for name in listed.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("src") / "dockertap"
    for name in _tracked_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    return copy


@pytest.fixture(scope="module")
def built(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source_copy)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def _module_files() -> set[str]:
    """Every module the tree maps into the package (pyproject's package-dir), as wheel paths."""
    mapping = {"dockertap": "dockertap", "dockertap/proxy": "proxy", "dockertap/analyzers": "analyzers"}
    mapping["dockertap/recordings"] = "recordings"
    mapping["dockertap/proxy/evidence"] = "proxy/evidence"
    expected = set()
    for package, folder in mapping.items():
        for module in (REPO / folder).glob("*.py"):
            expected.add(f"{package}/{module.name}")
    return expected


def test_wheel_holds_every_module_and_data_file_and_nothing_else(built: dict[str, Path]):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    assert _module_files() <= names, sorted(_module_files() - names)
    assert set(REQUIRED_DATA) <= names, sorted(set(REQUIRED_DATA) - names)
    bundled = {
        f"dockertap/recordings/bundled/{p.name}" for p in (REPO / "recordings/bundled").glob("*.jsonl")
    }
    assert bundled <= names
    payload = {n for n in names if ".dist-info/" not in n}
    unexpected = {n for n in payload if not n.startswith(tuple(f"{p}/" for p in TOP_PACKAGES))}
    assert not unexpected, f"files outside the dockertap package: {sorted(unexpected)}"
    assert not [n for n in names if any(junk in n for junk in NEVER_SHIPPED)]
    assert "dockertap = dockertap.app:main" in scripts


def test_sdist_rebuilds_the_same_wheel(built: dict[str, Path], tmp_path: Path):
    """The sdist is complete: a wheel built from it has exactly the files of the one built from git."""
    with tarfile.open(built["sdist"]) as sdist:
        members = sdist.getnames()
        sdist.extractall(tmp_path, filter="data")
    top = members[0].split("/")[0]
    assert f"{top}/pyproject.toml" in members and f"{top}/README.md" in members
    assert not [n for n in members if any(junk in n for junk in ("__pycache__", ".venv", ".hypothesis"))]
    out = tmp_path / "rebuilt"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(tmp_path / top)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(built["wheel"]) as a, zipfile.ZipFile(next(out.glob("*.whl"))) as b:
        assert sorted(n for n in a.namelist() if ".dist-info/RECORD" not in n) == sorted(
            n for n in b.namelist() if ".dist-info/RECORD" not in n
        )


def _works(dockertap: Path) -> None:
    """The installed command runs without a daemon: version, a model answer, a bundled replay."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    version = subprocess.run(
        [str(dockertap), "--version"], capture_output=True, text=True, timeout=120, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("dockertap "), version
    explained = subprocess.run(
        [str(dockertap), "explain", "POST /containers/{id}/start"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert explained.returncode == 0 and "containerd" in explained.stdout, explained
    replayed = subprocess.run(
        [str(dockertap), "replay", "docker-run", "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert replayed.returncode == 0 and "/containers/create" in replayed.stdout, replayed.stderr


@pytest.mark.slow
def test_pipx_install_gives_a_working_dockertap(source_copy: Path, tmp_path: Path):
    if shutil.which("pipx") is None and not _module_available("pipx"):
        pytest.skip("pipx is not installed")
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "."],
        cwd=source_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _works(tmp_path / "bin" / "dockertap")


@pytest.mark.slow
def test_uv_tool_install_gives_a_working_dockertap(source_copy: Path, tmp_path: Path):
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        pytest.skip("uv is not installed")
    env = {
        **os.environ,
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        "UV_CACHE_DIR": str(tmp_path / "cache"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [uv, "tool", "install", "--python", sys.executable, "."],
        cwd=source_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _works(tmp_path / "bin" / "dockertap")


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
