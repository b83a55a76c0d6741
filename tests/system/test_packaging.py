"""The package builds into a wheel and an sdist that install in a fresh virtualenv and serve.

``python -m build`` runs on a copy of the checkout's files; each artifact is installed in a
virtualenv of its own, first alone (the token library, which must not pull in the server's
dependencies) and then with the ``server`` extra, and ``python -m jwtlite serve`` from that
virtualenv answers real HTTP. The bundled data and its licence notices must be inside.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from support import FAST_HASH_ENV, ROOT, ServerProcess, clean_environ, http

pytestmark = pytest.mark.slow

DATA = [
    "jwtlite/service/credentials/data/common-passwords.txt.gz",
    "jwtlite/service/credentials/data/confusables.txt.gz",
    "jwtlite/service/credentials/data/README.md",
    "jwtlite/web/openapi.json",
    "jwtlite/demo/index.html",
    "jwtlite/py.typed",
]
LIBRARY_ONLY = """
import importlib.util, jwtlite
key = jwtlite.Key.generate("ES256")
assert jwtlite.decode(jwtlite.encode({"sub": "1"}, key), key, algorithms=["ES256"]) == {"sub": "1"}
print([name for name in ("falcon", "waitress") if importlib.util.find_spec(name)])
"""


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, built from a copy of the checkout's files."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the checkout's files")
    source = tmp_path_factory.mktemp("source")
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in listed.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, source)
    return out


def only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_wheel_carries_the_data_and_the_notices(dist: Path) -> None:
    names = set(zipfile.ZipFile(only(dist, "*.whl")).namelist())
    assert set(DATA) <= names
    licence = next(name for name in names if name.endswith(".dist-info/licenses/LICENSE"))
    text = zipfile.ZipFile(only(dist, "*.whl")).read(licence).decode()
    assert "MIT License" in text
    assert "Django Software Foundation" in text
    assert "Unicode" in text


def test_the_sdist_carries_the_sources_the_data_and_the_notices(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "serve.py", "docs/index.md", "pyproject.toml"} <= names
    assert set(DATA) <= names


@pytest.mark.parametrize("artifact", ["*.whl", "*.tar.gz"], ids=["wheel", "sdist"])
def test_an_artifact_installs_and_serves(dist: Path, artifact: str, tmp_path: Path) -> None:
    built = only(dist, artifact)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", built)
    assert run(python, "-c", LIBRARY_ONLY, cwd=tmp_path).strip() == "[]"  # no server deps

    run(python, "-m", "pip", "install", "-q", f"jwtlite[server] @ {built.as_uri()}")
    server = ServerProcess(
        database=tmp_path / "jwtlite.sqlite3",
        env=FAST_HASH_ENV,
        command=[str(python), "-m", "jwtlite", "serve"],
    ).start(timeout=30)
    try:
        alice = {"username": "alice", "password": "correct-horse-7"}
        assert http("POST", f"{server.url}/accounts/register/", alice).status == 201
        login = http("POST", f"{server.url}/accounts/token/", alice)
        assert login.status == 200
        assert set(login.json()) == {"access", "refresh"}
        assert http("GET", f"{server.url}/health").status == 200
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()
