"""``import sectigo_iot`` stays cheap: heavy dependencies load where they are used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("keyring", "cryptography", "rich", "starlette", "uvicorn", "typer", "click", "cattrs")


def test_import_loads_no_heavy_dependency() -> None:
    code = f"import sys, sectigo_iot\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_httpx_cli_module_is_available_after_import() -> None:
    code = "import sectigo_iot, sys; import httpx._main; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
