"""The README works as pasted: its Python examples run, and it names only files that exist.

Every fenced Python block of README.md is marked ``<!-- test: program -->`` (a whole
program, run in a fresh empty folder against a fresh emulator served on loopback, with
``SECTIGO_USERNAME``, ``SECTIGO_PASSWORD`` and ``SECTIGO_ENDPOINT`` set, as a reader
would) or ``<!-- test: pytest -->`` (a test module, run by pytest with the plugin); the
markers are those of ``tests/test_docs.py``.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests._docblocks import MARKER, marked_blocks, run_programs, run_pytest_modules

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text()
FENCE = re.compile(r"^```(?P<lang>[^\n`]*)\n(?P<code>.*?)^```$", re.M | re.S)
PYTHON = {"python", "py", "python3", "pycon"}
PROGRAMS = marked_blocks(TEXT, "program")


def _line(code: str) -> int:
    return TEXT[: TEXT.index(code)].count("\n") + 1


# -- every Python block runs ------------------------------------------------------------


def test_every_python_block_is_marked_to_run() -> None:
    python = [m["code"] for m in FENCE.finditer(TEXT) if (m["lang"].split() or [""])[0] in PYTHON]
    marked = {m["code"] for m in MARKER.finditer(TEXT) if m["kind"] in ("program", "pytest")}
    unmarked = [f"README.md:{_line(code)}" for code in python if code not in marked]
    assert not unmarked, f"Python blocks no test runs: {unmarked}"
    assert len(python) >= 5


@pytest.mark.parametrize("code", PROGRAMS, ids=[f"README.md:{_line(c)}" for c in PROGRAMS])
def test_program_block_runs_as_pasted(code: str, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()  # empty, as a reader's new folder: nothing prepared for the example
    spent = run_programs(f"README.md:{_line(code)}", [code], folder, tmp_path)
    assert spent <= 1  # no example spends two licenses


def test_the_first_sdk_example_leaves_the_archive_and_the_pem_files(tmp_path: Path) -> None:
    first = PROGRAMS[0]
    assert "client.batches.create(" in first and "write_pem(" in first
    folder = tmp_path / "work"
    folder.mkdir()
    assert run_programs("README.md, the first SDK example", [first], folder, tmp_path) == 1
    certs = folder / "certs"
    assert len(list(certs.glob("*.zip"))) == 1
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700  # download made the folder, private
    pem = certs / "api.example.com"
    assert sorted(p.name for p in pem.iterdir()) == [
        "cert.pem",
        "chain.pem",
        "fullchain.pem",
        "key.pem",
    ]
    assert stat.S_IMODE((pem / "key.pem").stat().st_mode) == 0o600


def test_pytest_blocks_pass(tmp_path: Path) -> None:
    codes = marked_blocks(TEXT, "pytest")
    assert codes
    run_pytest_modules("README.md", codes, tmp_path)


# -- it names only what exists ----------------------------------------------------------

LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
SOURCE_SUFFIXES = (".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ".cfg", ".sh")


def _prose() -> str:
    """The README without its fenced blocks (commands there name the reader's files)."""
    return FENCE.sub("", TEXT)


def _tracked() -> set[str]:
    done = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode == 0 and done.stdout:
        return set(done.stdout.split("\n")) - {""}
    return {str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()}  # an sdist


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", markdown), re.M)
    return {_slug(re.sub(r"\s*\{#[^}]*\}$", "", h)) for h in headings}


def test_relative_links_point_at_files_and_headings_that_exist() -> None:
    checked = 0
    for match in LINK.finditer(_prose()):
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / path) if path else README
        assert file.exists(), f"README links to {target}, which is not in the repository"
        if anchor:
            assert anchor in _anchors(file.read_text()), f"no heading #{anchor} in {file.name}"
        checked += 1
    assert checked >= 4


def _looks_like_a_repo_path(span: str, top_level: set[str]) -> bool:
    if " " in span or span.startswith(("/", "~", "$")) or "=" in span or "(" in span:
        return False
    first = span.split("/", 1)[0]
    return (
        span.startswith(("./", "../"))
        or ("/" in span and first in top_level)
        or span.endswith(SOURCE_SUFFIXES)
    )


def test_every_path_in_backticks_that_names_a_repo_file_exists() -> None:
    tracked = _tracked()
    folders = {str(Path(f).parent) for f in tracked}
    top_level = {f.split("/", 1)[0] for f in tracked}
    names = {Path(f).name for f in tracked}
    checked = 0
    for span in CODE_SPAN.findall(_prose()):
        if not _looks_like_a_repo_path(span, top_level):
            continue
        path = span.rstrip("/").removeprefix("./")
        # a bare file name (`issue_certificate.py` after `examples/`) may be in any folder
        known = tracked | folders if "/" in span else names
        assert path in known, f"README names `{span}`, which is not in the repository"
        checked += 1
    assert checked >= 15


def test_the_exit_status_table_lists_every_status_of_the_command() -> None:
    from sectigo_iot.cli._errors import EXIT_CODES

    rows = re.findall(r"^\| (\d+) \| [^|\n]+ \|$", TEXT, re.M)
    assert sorted(int(code) for code in rows) == sorted(EXIT_CODES)
