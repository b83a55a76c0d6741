"""Layer boundaries: the token library never loads the service's dependencies."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import jwtlite

PACKAGE_DIR = Path(jwtlite.__file__).parent
LIBRARY_MODULES = ["_encoding", "algorithms", "keys", "jws", "jwt", "errors"]
SERVICE_DEPENDENCIES = {"falcon", "waitress", "sqlite3"}
# Modules of the service layer (DESIGN.md): the library layer must not import them.
SERVICE_MODULES = {
    "app",
    "cli",
    "cors",
    "passwords",
    "resources",
    "server",
    "service",
    "settings",
    "store",
    "validators",
    "_origins",
}
LIBRARY_NAMES = [name for name in jwtlite.__all__ if name != "create_app"]


def run_fresh(code: str) -> dict[str, object]:
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
    document: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


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
    loaded = {name.split(".", 1)[1] for name in run_fresh(code)["modules"]}
    assert not loaded & SERVICE_MODULES, sorted(loaded & SERVICE_MODULES)


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
        "create_app",
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
        "library = [n for n in jwtlite.__all__ if n != 'create_app']\n"
        "missing = [n for n in library if getattr(jwtlite, n, None) is None]\n"
        "before = sorted(n for n in ('falcon', 'waitress', 'sqlite3') if n in sys.modules)\n"
        "app = jwtlite.create_app\n"
        "print(json.dumps({'missing': missing, 'before': before, 'app': callable(app)}))"
    )
    assert run_fresh(code) == {"missing": [], "before": [], "app": True}


def test_create_app_is_resolved_lazily() -> None:
    code = (
        "import json, sys\n"
        "import jwtlite\n"
        "lazy = 'jwtlite.app' not in sys.modules and 'falcon' not in sys.modules\n"
        "jwtlite.create_app\n"
        "print(json.dumps({'lazy': lazy, 'loaded': 'jwtlite.app' in sys.modules}))"
    )
    assert run_fresh(code) == {"lazy": True, "loaded": True}


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


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_library_module_imports_no_service_dependency(module: str) -> None:
    imports = imported_modules(PACKAGE_DIR / f"{module}.py")
    top_level = {name.split(".")[0] for name in imports}
    assert not top_level & SERVICE_DEPENDENCIES, sorted(top_level & SERVICE_DEPENDENCIES)


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_library_module_imports_no_service_module(module: str) -> None:
    imports = imported_modules(PACKAGE_DIR / f"{module}.py")
    ours = {name.split(".")[1] for name in imports if name.startswith("jwtlite.")}
    assert not ours & SERVICE_MODULES, sorted(ours & SERVICE_MODULES)


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
