"""The package's layering: no import cycle anywhere, counting imports inside functions and
TYPE_CHECKING blocks; CLI commands independent of each other; no subpackage reaching into
another's private modules from the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import sectigo_iot

ROOT = Path(sectigo_iot.__file__).parent
CLI_DIR = ROOT / "cli"
#: private modules of other subpackages the CLI may import: none
ALLOWED_PRIVATE: set[str] = set()


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
    """``sectigo_iot.x._y`` for a name under a private module of another subpackage."""
    parts = name.split(".")
    if parts[:2] == ["sectigo_iot", "cli"]:
        return None
    for index, part in enumerate(parts[2:], 2):
        if part.startswith("_"):
            return ".".join(parts[: index + 1])
    return None


def test_cli_imports_only_public_modules_of_other_subpackages() -> None:
    found = {_private_part(name) for path in CLI_DIR.rglob("*.py") for name in _imports(path)}
    assert found - {None} <= ALLOWED_PRIVATE
