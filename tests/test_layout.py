"""The package's layout and layering (CONTRIBUTING.md):

* an API area has one name in the SDK, the emulator, the CLI and their tests;
* the emulator's ``_app.py`` only assembles the areas' routes (no handler in it);
* resources use the Session object, never the helpers of ``_session`` or ``_response``;
* imports only go down: no import cycle anywhere, counting imports inside functions and
  TYPE_CHECKING blocks; CLI commands independent of each other; no subpackage reaching
  into another's private modules;
* bench/ uses only public names of the package.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import sectigo_iot

ROOT = Path(sectigo_iot.__file__).parent
CLI_DIR = ROOT / "cli"
TESTS = Path(__file__).resolve().parent
BENCH = TESTS.parent / "bench"
#: the API areas the SDK, the emulator and the CLI share, each under one name
SHARED_AREAS = ("account", "auth", "batches", "certificates")
#: areas of one layer only: the emulator's control routes; the CLI's local commands
EMULATOR_ONLY_AREAS = {"control"}
CLI_ONLY_AREAS = {"completion", "emulator", "files", "fleet", "inventory", "lifecycle"}
#: private modules bench/ may import, and why: none but the store the scale benchmark seeds
#: 10,000 batches into (through the API that would take minutes)
BENCH_PRIVATE = {"sectigo_iot.emulator._store"}
#: private modules of a subpackage that another may import: none
#: private modules another subpackage may import, and why: the fleet runs the lifecycle's
#: one state machine (its steps, its renewal policy's defaults, the watch of a
#: certificate's milestones, and the folder layout its FolderSink writes); shared
#: machinery of the two, not public API
ALLOWED_PRIVATE = {
    "sectigo_iot.lifecycle._steps",
    "sectigo_iot.lifecycle._folder",
    "sectigo_iot.lifecycle._policy",
    "sectigo_iot.lifecycle._events",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions, TYPE_CHECKING blocks)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            if node.module:  # `from . import x` imports x, not the package again
                found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from . import x`` counts as x only)."""
    modules = {_module_name(path): path for path in ROOT.rglob("*.py")}
    return {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph``, or []."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node], _ = "open", stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node], _ = "done", stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle_in_the_package() -> None:
    graph = _graph()
    assert "sectigo_iot.cli.commands.batches" in graph["sectigo_iot.cli.commands"]
    assert "sectigo_iot._session" in graph["sectigo_iot.resources.batches"]
    assert _cycle(graph) == []


def test_a_cycle_would_be_found() -> None:
    graph = _graph()
    graph["sectigo_iot._session"].add("sectigo_iot.resources.batches")
    assert _cycle(graph)


def test_commands_import_no_other_command_module() -> None:
    for name, targets in _graph().items():
        if ".cli.commands." in name:
            assert not {t for t in targets if ".cli.commands." in t or t.endswith("._app")}


def _private_part(name: str) -> str | None:
    """``sectigo_iot.x._y`` for a name under a private module of subpackage ``x``."""
    parts = name.split(".")
    if len(parts) < 3 or parts[1].startswith("_"):
        return None
    for index, part in enumerate(parts[2:], 2):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[: index + 1])
    return None


def test_no_subpackage_imports_private_modules_of_another() -> None:
    found = set()
    for path in ROOT.rglob("*.py"):
        own = _module_name(path).split(".")[1:2]
        for name in _imports(path):
            private = _private_part(name)
            if private is not None and private.split(".")[1:2] != own:
                found.add(private)
    assert found <= ALLOWED_PRIVATE


# -- one name per API area ---------------------------------------------------------------


def _sdk_area(area: str) -> Path:
    """The SDK's module of ``area``: its resource namespace, or for ``auth`` the token
    layer (logging in is the client's own, not a namespace's)."""
    return ROOT / "auth" if area == "auth" else ROOT / "resources" / f"{area}.py"


@pytest.mark.parametrize("area", SHARED_AREAS)
def test_an_area_has_one_name_in_every_layer(area: str) -> None:
    places = [
        _sdk_area(area),
        ROOT / "emulator" / "api" / f"{area}.py",
        CLI_DIR / "commands" / f"{area}.py",
        *(TESTS / layer / f"test_{area}.py" for layer in ("sdk", "emulator", "cli")),
    ]
    assert [place for place in places if not place.exists()] == []


def _public_modules(folder: Path) -> set[str]:
    return {path.stem for path in folder.glob("*.py") if not path.stem.startswith("_")}


def test_every_area_module_is_a_known_area() -> None:
    assert _public_modules(ROOT / "resources") == set(SHARED_AREAS) - {"auth"}
    assert _public_modules(ROOT / "emulator" / "api") == set(SHARED_AREAS) | EMULATOR_ONLY_AREAS
    assert _public_modules(CLI_DIR / "commands") == set(SHARED_AREAS) | CLI_ONLY_AREAS


# -- the emulator's app only assembles routes ---------------------------------------------


def test_the_emulator_app_defines_no_handler() -> None:
    tree = ast.parse((ROOT / "emulator" / "_app.py").read_text())
    handlers = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and "request" in {arg.arg for arg in (*node.args.posonlyargs, *node.args.args)}
    ]
    assert handlers == []


# -- resources use the Session object -----------------------------------------------------


def _type_checking_nodes(tree: ast.Module) -> set[ast.AST]:
    """Every node inside an ``if TYPE_CHECKING:`` block of the module."""
    return {
        inner
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }


@pytest.mark.parametrize("path", sorted((ROOT / "resources").glob("*.py")), ids=lambda p: p.name)
def test_resources_import_no_session_or_response_helper(path: Path) -> None:
    tree = ast.parse(path.read_text())
    typing_only = _type_checking_nodes(tree)
    found = [
        (node.module, alias.name, node in typing_only)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").rpartition(".")[2] in ("_session", "_response")
        for alias in node.names
    ]
    assert [item for item in found if item[1:] != ("Session", True)] == []


# -- bench/ uses the public API -------------------------------------------------------------


def _bench_imports() -> set[tuple[str, str | None]]:
    """(module, name) of every import of the package in bench/ (name None: the module)."""
    found: set[tuple[str, str | None]] = set()
    for path in BENCH.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update((alias.name, None) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.update((node.module, alias.name) for alias in node.names)
    return {(module, name) for module, name in found if module.split(".")[0] == "sectigo_iot"}


def test_bench_imports_only_public_names() -> None:
    private = []
    for module, name in sorted(_bench_imports(), key=str):
        if module in BENCH_PRIVATE:
            continue
        exported = getattr(importlib.import_module(module), "__all__", ())
        if any(part.startswith("_") for part in module.split(".")) or (
            name is not None and name not in exported
        ):
            private.append(f"{module}:{name}")
    assert private == []
