"""The examples run against the emulator: the scripts (imported and run, or run as the
docs say) and the notebook's code cells (with top-level await, in one shared namespace)."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_issue_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = load("issue_certificate")
    out = tmp_path / "certs"
    assert (
        example.main(
            [
                "example.com",
                "--emulator",
                "--out",
                str(out),
                "--dns-name",
                "www.example.com",
                "--processing-delay",
                "0.5",
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "PROCESSING" in printed.err and "READY_FOR_DOWNLOAD" in printed.err
    roles = dict(line.split(": ", 1) for line in printed.out.splitlines())
    assert set(roles) == {"cert", "chain", "fullchain", "key"}
    key = Path(roles["key"])
    assert key.stat().st_mode & 0o777 == 0o600
    from sectigo_iot.certs import load_pem_bundle

    bundle = load_pem_bundle(Path(roles["fullchain"]).read_bytes() + key.read_bytes())
    assert bundle.sans == ("example.com", "www.example.com")
    assert bundle.private_key is not None


def test_directory_service_runs_end_to_end_as_documented() -> None:
    """`python examples/directory_service.py --emulator`, exactly: issue, deliver to a
    folder and a webhook, renew, revoke on deregistration; it checks itself and exits 0."""
    done = subprocess.run(
        [sys.executable, "examples/directory_service.py", "--emulator"],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, second, hook = done.stdout.splitlines()
    serial = "([0-9A-F]+)"
    one = re.fullmatch(f"vasp-01: VALID, {serial} then {serial}", first)
    two = re.fullmatch(f"vasp-02: REVOKED, {serial} then {serial}", second)
    assert one and two and one[1] != one[2] and two[1] != two[2]
    assert hook == f"webhook: 4 deliveries, one per certificate; revoked: {two[2]}"
    assert "PRIVATE KEY" not in done.stdout + done.stderr


def test_directory_service_stays_a_sketch_of_at_most_100_lines() -> None:
    lines = (EXAMPLES / "directory_service.py").read_text().splitlines()
    assert len([line for line in lines if line.strip()]) <= 100


async def run_cell(source: str, name: str, namespace: dict[str, Any]) -> tuple[Any, bool]:
    """Run a cell as IPython does: its statements, then its last expression's value.
    Returns the value (or None) and whether the cell awaited."""
    tree = ast.parse(source)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        del tree.body[-1]
    else:
        last = None
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    awaited = False
    result = eval(compile(tree, name, "exec", flags=flags), namespace)  # noqa: S307
    if inspect.iscoroutine(result):
        awaited = True
        await result
    if last is None:
        return None, awaited
    expression = ast.Expression(last.value)
    value = eval(compile(expression, name, "eval", flags=flags), namespace)  # noqa: S307
    if inspect.iscoroutine(value):
        awaited = True
        value = await value
    return value, awaited


async def test_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cells run in order in one namespace; each result is rendered as Jupyter
    would (``_repr_html_`` when it has one)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setitem(sys.modules, "IPython", None)  # progress falls back to stderr
    notebook = nbformat.read(EXAMPLES / "explore.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code_cells) >= 8
    uses_await = False
    tables: list[str] = []
    for number, cell in enumerate(code_cells, 1):
        value, awaited = await run_cell(cell.source, f"<cell {number}>", namespace)
        uses_await |= awaited
        if hasattr(value, "_repr_html_"):
            tables.append(value._repr_html_())
    assert uses_await
    assert namespace["batch"].status == "READY_FOR_DOWNLOAD"
    assert namespace["bundle"].common_name == "notebook.example.com"
    assert namespace["balances"] == {1: 10}
    assert namespace["sync_batch"].status == "READY_FOR_DOWNLOAD"
    assert [item.common_name for item in namespace["sync_found"]] == ["sync.example.com"]
    captions = [table.split("</caption>")[0].split("<caption>")[1] for table in tables]
    for shown in ("Authority", "Licenses", "Batch", "CertificateBundle", "FoundCertificates"):
        assert shown in captions
    assert not any("PRIVATE KEY" in table for table in tables)
    progress = capsys.readouterr().err.splitlines()
    assert any("PROCESSING" in line for line in progress)
    assert sum("READY_FOR_DOWNLOAD" in line for line in progress) == 2
