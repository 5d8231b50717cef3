"""The examples run against the emulator: the two scripts (imported and run) and the
notebook's code cells (with top-level await, in one shared namespace)."""

from __future__ import annotations

import ast
import importlib.util
import inspect
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


def test_directory_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = load("directory_service")
    status = example.main(
        [
            "--emulator",
            "--members",
            "10",
            "--concurrency",
            "4",
            "--interval",
            "0.2",
            "--processing-delay",
            "0.3",
            "--out",
            str(tmp_path),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert len(lines) == 10
    assert all(" COMPLETED " in line for line in lines)
    serials = {line.split("serial ")[1].split(",")[0] for line in lines}
    assert len(serials) == 10
    for number in range(1, 11):
        folder = tmp_path / f"member-{number:02d}.example.com"
        assert (folder / "key.pem").stat().st_mode & 0o777 == 0o600


async def test_directory_service_authority_choice_and_rejection(tmp_path: Path) -> None:
    """The first authority with a balance is used; a rejected batch ends CR_REJECTED."""
    from sectigo_iot.emulator import Emulator
    from sectigo_iot.models import Authority

    example = load("directory_service")
    empty = Authority(id=7, profile_id=70, profile_name="Empty", balance=0, enabled=True)
    full = Authority(id=8, profile_id=80, profile_name="Full", balance=5, enabled=True)
    with Emulator(authorities=[empty, full]) as emulator:
        async with emulator.client() as client:
            manager = example.CertificateManager(client, tmp_path)
            assert await manager.pick_authority() == 8
            good = manager.add("good.example.com")
            bad = manager.add("bad_name.example.com")  # the SDK refuses it: retried
            await manager.run(0.05, max_ticks=5)
    assert good.state == "COMPLETED" and good.authority_id == 8
    assert bad.state == "READY_TO_SUBMIT" and "underscore" in bad.error


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
