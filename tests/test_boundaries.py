"""The package's import boundaries, read from its source with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bsg_sync"

# Which of the package's modules may import which libraries. A module outside the set that
# imports one of the names (or a submodule of it) breaks the boundary.
CLIENT = frozenset({"bsg_sync.client", "bsg_sync.wire"})
STATE = frozenset({
    "bsg_sync.state",
    # the web page's own small file (mappings per header set, upload names per run), which
    # reads the run history through StateStore and never opens the state store itself
    "bsg_sync.web.store",
})
CLI = frozenset({"bsg_sync.cli"})
EMULATOR_USERS = frozenset({"bsg_sync.cli", "bsg_sync.demo"})
RULES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "requests/tenacity/urllib3 only in the client": (
        frozenset({"requests", "tenacity", "urllib3"}), CLIENT),
    "sqlite3 only in the state store": (frozenset({"sqlite3"}), STATE),
    "click only in the CLI": (frozenset({"click"}), CLI),
}


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from … import` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    keep = len(base) - node.level + (1 if is_package else 0)
    return ".".join(base[:keep] + ([node.module] if node.module else []))


def imported_names(source: str, module: str, is_package: bool = False) -> Iterator[str]:
    """Every module a source imports: plain and `from` imports at any depth (lazy ones in a
    function too), relative ones resolved, `importlib.import_module("x")` / `__import__("x")`
    with a literal name, and `from pkg import sub` as both `pkg` and `pkg.sub`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def package_imports(package: Path) -> dict[str, set[str]]:
    """Module name -> the modules it imports, for every .py file under the package."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        source = path.read_text(encoding="utf-8")
        found[name] = set(imported_names(source, name, path.name == "__init__.py"))
    return found


def _within(name: str, roots: frozenset[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def breaches(imports: dict[str, set[str]], libraries: frozenset[str],
             allowed: frozenset[str]) -> dict[str, list[str]]:
    """Modules outside `allowed` that import one of `libraries`, with what they import."""
    return {module: sorted(n for n in names if _within(n, libraries))
            for module, names in imports.items()
            if not _within(module, allowed) and any(_within(n, libraries) for n in names)}


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    found = package_imports(PACKAGE)
    assert "bsg_sync.client" in found and "bsg_sync.cli" in found, sorted(found)
    return found


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_library_is_imported_only_where_its_boundary_allows(
        imports: dict[str, set[str]], rule: str) -> None:
    libraries, allowed = RULES[rule]
    assert breaches(imports, libraries, allowed) == {}
    assert any(_within(n, libraries) for m in allowed for n in imports.get(m, ())), \
        f"no allowed module imports {sorted(libraries)}: is the rule still needed?"


def _emulator_breaches(imports: dict[str, set[str]]) -> dict[str, list[str]]:
    allowed = EMULATOR_USERS | {"bsg_sync.emulator"}
    return breaches(imports, frozenset({"bsg_sync.emulator"}), allowed)


def test_the_emulator_is_imported_only_by_the_cli_and_the_demo(
        imports: dict[str, set[str]]) -> None:
    assert _emulator_breaches(imports) == {}  # the web page included


# ------------------------------------------------------------ the scanner itself

FAKE = {
    "__init__.py": "from . import emulator\n",
    "client.py": "import requests\nfrom tenacity import retry\n",
    "reader.py": "def later():\n    import click\n",
    "web/__init__.py": "from ..emulator.server import is_loopback\n",
    "web/app.py": "from .. import state\nimport importlib\nimportlib.import_module('sqlite3')\n",
    "web/jobs.py": "from bsg_sync import emulator as emu\n__import__('urllib3.util')\n",
    "emulator/__init__.py": "from .server import Emulator\n",
    "emulator/server.py": "import socket\n",
}


@pytest.fixture
def fake_package(tmp_path: Path) -> Path:
    package = tmp_path / "bsg_sync"
    for name, source in FAKE.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(source, encoding="utf-8")
    return package


def test_the_scanner_finds_lazy_relative_aliased_and_dynamic_imports(fake_package: Path) -> None:
    found = package_imports(fake_package)
    assert _emulator_breaches(found) == {
        "bsg_sync": ["bsg_sync.emulator"],
        "bsg_sync.web": ["bsg_sync.emulator.server", "bsg_sync.emulator.server.is_loopback"],
        "bsg_sync.web.jobs": ["bsg_sync.emulator"],
    }
    assert breaches(found, frozenset({"click"}), CLI) == {"bsg_sync.reader": ["click"]}
    assert breaches(found, frozenset({"sqlite3"}), STATE) == {"bsg_sync.web.app": ["sqlite3"]}
    assert breaches(found, frozenset({"requests", "tenacity", "urllib3"}), CLIENT) == {
        "bsg_sync.web.jobs": ["urllib3.util"]}
    assert "bsg_sync.state" in found["bsg_sync.web.app"]


def test_a_module_named_like_a_library_is_not_that_library() -> None:
    names = set(imported_names("import requests_toolbelt\nimport clickhouse\n", "bsg_sync.x"))
    assert breaches({"bsg_sync.x": names}, frozenset({"requests", "click"}), CLI) == {}
