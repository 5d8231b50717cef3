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
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARKER = re.compile(
    r"^<!-- test: (?P<kind>[a-z]+) -->\n```(?P<lang>[a-z]*)[^\n]*\n(?P<code>.*?)^```$",
    re.M | re.S,
)
ANY_MARKER = re.compile(r"^<!-- test: [^\n]*-->$", re.M)
KINDS = {"emulator": "python", "program": "python", "pytest": "python", "shell": "bash"}


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def _blocks(kind: str) -> list[tuple[Path, list[str]]]:
    found = []
    for page in _pages():
        codes = [m["code"] for m in MARKER.finditer(page.read_text()) if m["kind"] == kind]
        if codes:
            found.append((page, codes))
    return found


def _ids(items: list[tuple[Path, list[str]]]) -> list[str]:
    return [str(page.relative_to(DOCS)) for page, _ in items]


def _subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path / "home"),
        COLUMNS="100",
        **extra,
    )
    for name in ("SECTIGO_USERNAME", "SECTIGO_PASSWORD", "SECTIGO_ENDPOINT", "SECTIGO_PROFILE"):
        if name not in extra:
            env.pop(name, None)
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def _run_ok(page: Path, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run ``argv``; fail the test with the page and both outputs unless it exits 0."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


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
    from sectigo_iot.emulator import DEFAULT_USERNAME, Emulator

    with Emulator() as emulator, emulator.run_in_thread() as url:
        env = _subprocess_env(
            tmp_path,
            SECTIGO_ENDPOINT=url,
            SECTIGO_USERNAME=DEFAULT_USERNAME,
            SECTIGO_PASSWORD=emulator.config.users[DEFAULT_USERNAME],
        )
        for code in codes:
            _run_ok(page, [sys.executable, "-c", code], tmp_path, env, timeout=120)
        assert emulator.licenses_used >= len(codes)


@pytest.mark.parametrize(("page", "codes"), _blocks("pytest"), ids=_ids(_blocks("pytest")))
def test_pytest_blocks_pass(page: Path, codes: list[str], tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    for index, code in enumerate(codes):
        (tmp_path / f"test_doc_{index}.py").write_text(code)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    output = _run_ok(page, argv, tmp_path, _subprocess_env(tmp_path), timeout=300)
    assert " passed" in output and "failed" not in output


@pytest.mark.parametrize(("page", "codes"), _blocks("shell"), ids=_ids(_blocks("shell")))
def test_shell_blocks_run(page: Path, codes: list[str], tmp_path: Path) -> None:
    env = _subprocess_env(tmp_path, SECTIGO_EMULATOR_DB=str(tmp_path / "emulator.sqlite3"))
    for code in codes:
        _run_ok(page, ["bash", "-e", "-o", "pipefail", "-c", code], tmp_path, env, timeout=300)


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


def test_the_generated_cli_reference_covers_every_visible_command() -> None:
    sys.path.insert(0, str(DOCS / "_hooks"))
    try:
        import cli_reference
    finally:
        sys.path.remove(str(DOCS / "_hooks"))
    markdown = cli_reference.render_reference()
    commands = _cli_commands()
    visible = [path for path in commands if f"`sectigo {' '.join(path)}`" in markdown]
    assert len(visible) >= 16
    for path, flags in commands.items():
        if path in visible:
            assert all(f"`{flag}`" in markdown for flag in flags)
    assert "`sectigo create`" in markdown and "`--authority`, `-a`" in markdown
