"""The documentation cannot rot: its runnable examples run, its tables match the CLI.

A fenced block in ``docs/`` preceded by an HTML comment ``<!-- test: KIND -->`` is run:

* ``emulator``: Python with top-level ``await``. The blocks of one page run in order in
  one namespace holding ``emulator`` (a fresh in-memory ``Emulator``) and ``client``
  (``emulator.client()``), in a fresh working directory.
* ``program``: a whole Python program, run in a subprocess with ``SECTIGO_ENDPOINT``,
  ``SECTIGO_USERNAME`` and ``SECTIGO_PASSWORD`` pointing at an emulator served on
  loopback (and no keyring: tokens go to a file in the temporary folder).
* ``pytest``: a test module, run by pytest in a subprocess (the plugin's fixtures come
  from the installed entry point).
* ``shell``: bash lines, run with ``set -e`` in a temporary folder, the ``sectigo``
  command of this environment first on the PATH and ``SECTIGO_EMULATOR_DB`` there.

The MkDocs build itself (``mkdocs build --strict`` in ``.ci/run``) checks links, the API
reference and the docstrings.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

from tests._docblocks import (
    ANY_MARKER,
    KINDS,
    MARKER,
    marked_blocks,
    run_ok,
    run_programs,
    run_pytest_modules,
    subprocess_env,
)
from tests.support import load_module

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: the package under test (the installed one when the tests run from the sdist)
PACKAGE = Path(importlib.import_module("sectigo_iot").__file__ or "").parent


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def _blocks(kind: str) -> list[tuple[Path, list[str]]]:
    found = []
    for page in _pages():
        codes = marked_blocks(page.read_text(), kind)
        if codes:
            found.append((page, codes))
    return found


def _ids(items: list[tuple[Path, list[str]]]) -> list[str]:
    return [str(page.relative_to(DOCS)) for page, _ in items]


# -- the markers themselves ------------------------------------------------------------


def test_every_marker_is_known_and_followed_by_a_block_of_its_language() -> None:
    total = 0
    for page in _pages():
        text = page.read_text()
        matched = list(MARKER.finditer(text))
        assert len(matched) == len(ANY_MARKER.findall(text)), f"{page}: a marker without a block"
        for match in matched:
            assert match["kind"] in KINDS, f"{page}: unknown kind {match['kind']!r}"
            assert match["lang"] == KINDS[match["kind"]], f"{page}: {match['kind']} block"
            total += 1
    assert total >= 20  # the guides keep their examples runnable


# -- runnable blocks ---------------------------------------------------------------------


@pytest.mark.parametrize(("page", "codes"), _blocks("emulator"), ids=_ids(_blocks("emulator")))
async def test_emulator_blocks_run(
    page: Path, codes: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sectigo_iot.emulator import Emulator

    monkeypatch.chdir(tmp_path)
    with Emulator() as emulator:
        async with emulator.client() as client:
            namespace: dict[str, Any] = {"emulator": emulator, "client": client}
            for index, code in enumerate(codes, 1):
                name = f"{page.relative_to(DOCS)}[{index}]"
                compiled = compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                result = eval(compiled, namespace)  # noqa: S307 (our own documentation)
                if inspect.iscoroutine(result):
                    await result


@pytest.mark.parametrize(("page", "codes"), _blocks("program"), ids=_ids(_blocks("program")))
def test_program_blocks_run(page: Path, codes: list[str], tmp_path: Path) -> None:
    assert run_programs(page, codes, tmp_path, tmp_path) >= len(codes)


@pytest.mark.parametrize(("page", "codes"), _blocks("pytest"), ids=_ids(_blocks("pytest")))
def test_pytest_blocks_pass(page: Path, codes: list[str], tmp_path: Path) -> None:
    run_pytest_modules(page, codes, tmp_path)


@pytest.mark.parametrize(("page", "codes"), _blocks("shell"), ids=_ids(_blocks("shell")))
def test_shell_blocks_run(page: Path, codes: list[str], tmp_path: Path) -> None:
    env = subprocess_env(tmp_path, SECTIGO_EMULATOR_DB=str(tmp_path / "emulator.sqlite3"))
    for code in codes:
        run_ok(page, ["bash", "-e", "-o", "pipefail", "-c", code], tmp_path, env, timeout=300)


# -- tables that must match the command --------------------------------------------------


def _cli_commands() -> dict[tuple[str, ...], set[str]]:
    """Every command path (hidden aliases included) and the flags it accepts."""
    from typer.main import get_command

    from sectigo_iot.cli import app

    found: dict[tuple[str, ...], set[str]] = {}

    def walk(command: Any, ctx: Any, path: tuple[str, ...]) -> None:
        found[path] = {
            opt
            for param in command.get_params(ctx)
            for opt in [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
            if opt.startswith("-")
        }
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                walk(sub, sub.context_class(sub, info_name=name, parent=ctx), (*path, name))

    root = get_command(app)
    walk(root, root.context_class(root, info_name="sectigo", **root.context_settings), ())
    return found


def test_the_go_migration_table_names_only_real_commands_and_flags() -> None:
    commands = _cli_commands()
    rows = 0
    for line in (DOCS / "from-go.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`sectigo"):
            continue
        words = cells[1].split("`")[1].split()[1:]
        path = tuple(word for word in words if not word.startswith("-"))
        assert path in commands, f"no command {' '.join(path)!r}: {line}"
        for word in words:
            if word.startswith("-"):
                for flag in word.split("/"):
                    assert flag in commands[path], f"{' '.join(path)} has no {flag}: {line}"
        rows += 1
    assert rows >= 40


def _hook() -> Any:
    """docs/_hooks/cli_reference.py, the MkDocs hook, as a module."""
    return load_module("cli_reference", DOCS / "_hooks" / "cli_reference.py")


def test_the_reference_check_reads_each_modules_all_from_its_source() -> None:
    # The hook reads __all__ without importing (a [docs]-only venv has no pytest for
    # sectigo_iot.testing): what it reads must be what Python exports.
    hook = _hook()
    for module in hook.REFERENCE_MODULES:
        exported = importlib.import_module(module).__all__
        assert hook.public_names(PACKAGE.parent, module) == list(exported), module


def test_the_generated_cli_reference_covers_every_visible_command() -> None:
    markdown = _hook().render_reference()
    commands = _cli_commands()
    visible = [path for path in commands if f"`sectigo {' '.join(path)}`" in markdown]
    assert len(visible) >= 16
    for path, flags in commands.items():
        if path in visible:
            assert all(f"`{flag}`" in markdown for flag in flags)
    assert "`sectigo create`" in markdown and "`--authority`, `-a`" in markdown


def test_every_error_attribute_is_documented_where_the_class_declares_it() -> None:
    # The reference renders an attribute set only in __init__ as `operation = operation`;
    # declared in the class body with a docstring, it reads as documentation.
    source = (PACKAGE / "errors.py").read_text()
    classes = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    checked = 0
    for cls in classes:
        documented = {
            node.target.id
            for node, after in zip(cls.body, cls.body[1:], strict=False)
            if isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        }
        assigned = {
            target.attr
            for function in cls.body
            if isinstance(function, ast.FunctionDef) and function.name == "__init__"
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
        }
        assert assigned <= documented, f"{cls.name}: undocumented {assigned - documented}"
        checked += len(assigned)
    assert checked >= 20
