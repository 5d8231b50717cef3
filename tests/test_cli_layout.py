"""The CLI's modules: no import cycles, and only public names of the other subpackages."""

from __future__ import annotations

import ast
from pathlib import Path

import sectigo_iot.cli

CLI_DIR = Path(sectigo_iot.cli.__file__).parent
#: private modules of other subpackages the CLI may import: none
ALLOWED_PRIVATE: set[str] = set()


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions, TYPE_CHECKING blocks)."""
    package = "sectigo_iot.cli"
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
    modules = {f"sectigo_iot.cli.{path.stem}": path for path in CLI_DIR.glob("*.py")}
    modules["sectigo_iot.cli"] = modules.pop("sectigo_iot.cli.__init__")
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


def test_cli_modules_import_no_cycle() -> None:
    graph = _graph()
    assert "sectigo_iot.cli._commands_batches" in graph["sectigo_iot.cli._app"]
    assert _cycle(graph) == []


def test_commands_import_no_other_command_module() -> None:
    for name, targets in _graph().items():
        if ".cli._commands_" in name:
            assert not {t for t in targets if ".cli._commands_" in t or t.endswith("._app")}


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
    found = {_private_part(name) for path in CLI_DIR.glob("*.py") for name in _imports(path)}
    assert found - {None} <= ALLOWED_PRIVATE
