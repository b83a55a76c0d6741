"""Layer boundaries (DESIGN.md): each folder imports only the layers below it.

Two kinds of proof: a static scan of every ``import`` in every module of a layer against
that layer's forbidden list, and fresh interpreters that import a layer and report which
heavy dependencies it loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import jwtlite

PACKAGE_DIR = Path(jwtlite.__file__).parent
#: The library is every module at the package root (``__main__`` is Python's ``-m`` hook,
#: which only calls the command line) and the resource-server tools in ``resource/``.
LIBRARY_MODULES = sorted(
    path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem not in {"__init__", "__main__"}
)
DRIVERS = {"sqlite3", "psycopg", "psycopg_pool"}
SERVERS = {"falcon", "waitress"}
#: Only ``jwtlite.web.metrics`` may import it, and only an app with METRICS on imports that.
METRICS = {"prometheus_client"}
SERVICE_DEPENDENCIES = SERVERS | DRIVERS | METRICS

# What each layer must never import: third-party top-level names, and our own modules (a
# name forbids it and everything under it).
FORBIDDEN: dict[str, tuple[set[str], set[str]]] = {
    "library": (
        SERVICE_DEPENDENCIES,
        {
            "jwtlite.store",
            "jwtlite.service",
            "jwtlite.web",
            "jwtlite.demo",
            "jwtlite.cli",
            "jwtlite.cli.serve",
        },
    ),
    "store": (
        SERVERS | METRICS,
        {
            "jwtlite.service",
            "jwtlite.web",
            "jwtlite.demo",
            "jwtlite.cli",
            "jwtlite.cli.serve",
            "jwtlite.keys",
            "jwtlite.jws",
            "jwtlite.jwt",
            "jwtlite.algorithms",
        },
    ),
    "service": (
        SERVICE_DEPENDENCIES,
        {
            "jwtlite.web",
            "jwtlite.demo",
            "jwtlite.cli",
            "jwtlite.cli.serve",
            "jwtlite.store.sqlite",
            "jwtlite.store.postgres",
        },
    ),
    "web": (
        DRIVERS,
        {
            "jwtlite.demo",
            "jwtlite.cli",
            "jwtlite.cli.serve",
            "jwtlite.store.sqlite",
            "jwtlite.store.postgres",
            "jwtlite.service.credentials.passwords",
        },
    ),
    "demo": (
        DRIVERS | METRICS | {"falcon"},
        {"jwtlite.store", "jwtlite.service", "jwtlite.web", "jwtlite.cli", "jwtlite.cli.serve"},
    ),
}
FORBIDDEN["resource"] = FORBIDDEN["library"]
# The launchers stand on every layer; like the service, they never talk to a driver.
FORBIDDEN["cli"] = (DRIVERS, {"jwtlite.store.sqlite", "jwtlite.store.postgres"})
SUBPACKAGES = ["resource", "store", "service", "web", "demo", "cli"]


def layer_files(layer: str) -> list[Path]:
    if layer == "library":
        return [PACKAGE_DIR / f"{name}.py" for name in [*LIBRARY_MODULES, "__init__"]]
    if layer == "cli":
        return [PACKAGE_DIR / "__main__.py", *sorted((PACKAGE_DIR / "cli").rglob("*.py"))]
    return sorted((PACKAGE_DIR / layer).rglob("*.py"))


LAYER_FILES = [
    pytest.param(layer, path, id=f"{layer}:{path.name}")
    for layer in FORBIDDEN
    for path in layer_files(layer)
]
LIBRARY_NAMES = list(jwtlite.__all__)


def run_fresh(code: str) -> Any:
    """Run ``code`` in a new interpreter; it must print one JSON document as its last line."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=PACKAGE_DIR.parent,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


USE_THE_LIBRARY = """
import json, sys
import jwtlite
from jwtlite import jws, Key, KeySet
secret = b"s" * 32
token = jwtlite.encode({"sub": "1", "exp": 4102444800}, secret)
assert jwtlite.decode(token, secret, ["HS256"]) == {"sub": "1", "exp": 4102444800}
key = Key.generate("ES256")
keyset = KeySet([key])
token = jwtlite.encode({"sub": "2"}, keyset)
assert jwtlite.decode_complete(token, keyset, ["ES256"])["payload"] == {"sub": "2"}
assert jwtlite.get_unverified_header(token)["kid"] == key.kid
assert jws.decode(jws.encode(b"raw", key), key.public_key(), ["ES256"]) == b"raw"
guard = jwtlite.BearerAuth(lambda environ, start: [b""], key, algorithms=["ES256"])
answers = []
access = jwtlite.encode({"sub": "3", "exp": 4102444800}, keyset)
guard({"HTTP_AUTHORIZATION": "Bearer " + access}, lambda status, headers: answers.append(status))
guard({}, lambda status, headers: answers.append(status))
assert answers == ["401 Unauthorized"], answers
jwtlite.JWKSClient("https://issuer.example/.well-known/jwks.json")
try:
    jwtlite.decode("not.a.token", secret, ["HS256"])
except jwtlite.JWTError:
    pass
loaded = sorted(name for name in ("falcon", "waitress", "sqlite3") if name in sys.modules)
print(json.dumps({"loaded": loaded}))
"""


def test_using_the_library_loads_no_service_dependency() -> None:
    assert run_fresh(USE_THE_LIBRARY) == {"loaded": []}


def test_importing_jwtlite_loads_no_service_module() -> None:
    code = (
        "import json, sys\n"
        "import jwtlite\n"
        "modules = sorted(name for name in sys.modules if name.startswith('jwtlite.'))\n"
        "print(json.dumps({'modules': modules}))"
    )
    loaded = {name.split(".")[1] for name in run_fresh(code)["modules"]}
    allowed = {*LIBRARY_MODULES, "resource"}
    assert loaded <= allowed, sorted(loaded - allowed)


@pytest.mark.parametrize("name", LIBRARY_NAMES)
def test_public_names_resolve(name: str) -> None:
    assert getattr(jwtlite, name) is not None


def test_public_names_cover_the_documented_api() -> None:
    documented = {
        "encode",
        "decode",
        "decode_complete",
        "get_unverified_header",
        "Key",
        "KeySet",
        "JWTError",
        "MalformedTokenError",
        "InvalidSignatureError",
        "AlgorithmNotAllowedError",
        "InvalidKeyError",
        "ExpiredTokenError",
        "ImmatureTokenError",
        "InvalidAudienceError",
        "InvalidIssuerError",
        "MissingClaimError",
        "InvalidClaimError",
        "JWKSClient",
        "JWKSFetchError",
        "KeySource",
        "BearerAuth",
        "CLAIMS_ENVIRON_KEY",
    }
    assert documented <= set(jwtlite.__all__)
    assert len(jwtlite.__all__) == len(set(jwtlite.__all__))


def test_exceptions_share_the_jwt_error_root() -> None:
    for name in LIBRARY_NAMES:
        value = getattr(jwtlite, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, jwtlite.JWTError), name


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = (
        "import json, sys\n"
        "import jwtlite\n"
        "missing = [n for n in jwtlite.__all__ if getattr(jwtlite, n, None) is None]\n"
        "loaded = sorted(n for n in ('falcon', 'waitress', 'sqlite3') if n in sys.modules)\n"
        "print(json.dumps({'missing': missing, 'loaded': loaded}))"
    )
    assert run_fresh(code) == {"missing": [], "loaded": []}


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        jwtlite.no_such_name  # noqa: B018


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement in ``path`` names, resolved against jwtlite."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                base = "jwtlite" + (f".{node.module}" if node.module else "")
                names.add(base)
                names.update(f"jwtlite.{alias.name}" for alias in node.names if not node.module)
            elif node.module:
                names.add(node.module)
                if node.module == "jwtlite":
                    names.update(f"jwtlite.{alias.name}" for alias in node.names)
    return names


def test_the_layer_table_covers_every_module() -> None:
    every = set(PACKAGE_DIR.rglob("*.py"))
    covered = {path for layer in FORBIDDEN for path in layer_files(layer)}
    assert every - covered == set()
    assert set(SUBPACKAGES) <= {p.name for p in PACKAGE_DIR.iterdir()}


@pytest.mark.parametrize(("layer", "path"), LAYER_FILES)
def test_module_imports_only_what_its_layer_may(layer: str, path: Path) -> None:
    packages, ours = FORBIDDEN[layer]
    imports = imported_modules(path)
    assert not {name.split(".")[0] for name in imports} & packages
    bad = {n for n in imports for f in ours if n == f or n.startswith(f + ".")}
    assert not bad, sorted(bad)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_subpackage_says_what_it_owns_and_must_never_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE_DIR / package / "__init__.py").read_text()))
    assert doc is not None
    assert "owns" in doc.lower() or "holds" in doc.lower()
    assert "never" in doc


def test_only_the_store_speaks_sql() -> None:
    for path in PACKAGE_DIR.rglob("*.py"):
        if path.parent.name == "store":
            continue
        text = path.read_text(encoding="utf-8")
        for statement in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE"):
            assert statement not in text, (path.name, statement)


LOADED = "print(json.dumps(sorted(n for n in {names!r} if n in sys.modules)))"


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("jwtlite", SERVICE_DEPENDENCIES),
        ("jwtlite.store", SERVERS | {"psycopg", "psycopg_pool"}),
        ("jwtlite.service", SERVERS | {"psycopg", "psycopg_pool"}),
        ("jwtlite.web", {"psycopg", "psycopg_pool"}),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(module: str, must_not_load: set[str]) -> None:
    code = f"import json, sys\nimport {module}\n" + LOADED.format(names=sorted(must_not_load))
    assert run_fresh(code) == []


@pytest.mark.parametrize(
    ("driver", "backend"),
    [
        ({"sqlite3"}, {"sqlite.py", "_sqlite_file.py"}),
        ({"psycopg", "psycopg_pool"}, {"postgres.py", "_postgres_pool.py"}),
    ],
    ids=["sqlite3", "psycopg"],
)
def test_each_driver_is_imported_only_by_its_backend(driver: set[str], backend: set[str]) -> None:
    importers = {
        path.relative_to(PACKAGE_DIR).as_posix()
        for path in PACKAGE_DIR.rglob("*.py")
        if {name.split(".")[0] for name in imported_modules(path)} & driver
    }
    assert importers == {f"store/{module}" for module in backend}


def test_opening_the_default_store_loads_no_postgres_driver(tmp_path: Path) -> None:
    code = (
        "import json, sys\nfrom jwtlite.store import open_store\n"
        f"open_store({str(tmp_path / 'db.sqlite3')!r}).close()\n"
        + LOADED.format(names=["psycopg", "psycopg_pool", "falcon", "waitress"])
    )
    assert run_fresh(code) == []


def test_errors_and_encoding_import_nothing_from_jwtlite() -> None:
    for module in ("errors", "_encoding"):
        imports = imported_modules(PACKAGE_DIR / f"{module}.py")
        assert not {name for name in imports if name.startswith("jwtlite")}, module


def test_import_scanner_sees_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import falcon\n"
        "import waitress.server as w\n"
        "from sqlite3 import connect\n"
        "from . import store\n"
        "from .service import Service\n"
        "def f():\n"
        "    import falcon.testing\n"
        "if True:\n"
        "    from jwtlite import app\n",
        encoding="utf-8",
    )
    names = imported_modules(sample)
    assert {"falcon", "waitress.server", "sqlite3", "falcon.testing"} <= names
    assert {"jwtlite.store", "jwtlite.service", "jwtlite.app"} <= names


def test_only_the_metrics_module_imports_prometheus_client() -> None:
    importers = {
        path.relative_to(PACKAGE_DIR).as_posix()
        for path in PACKAGE_DIR.rglob("*.py")
        if {name.split(".")[0] for name in imported_modules(path)} & METRICS
    }
    assert importers == {"web/metrics.py"}


APP_WITH_METRICS = """
import json, sys
from jwtlite.service.settings import Settings
from jwtlite.web.app import create_app
create_app(Settings(database={database!r}, metrics={metrics!r}))
print(json.dumps(sorted(n for n in ("prometheus_client",) if n in sys.modules)))
"""


@pytest.mark.parametrize(("metrics", "loaded"), [(False, []), (True, ["prometheus_client"])])
def test_an_app_loads_prometheus_client_only_with_metrics_on(
    tmp_path: Path, metrics: bool, loaded: list[str]
) -> None:
    code = APP_WITH_METRICS.format(database=str(tmp_path / "db.sqlite3"), metrics=metrics)
    assert run_fresh(code) == loaded
