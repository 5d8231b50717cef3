"""``import sectigo_iot`` stays cheap: heavy dependencies load where they are used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("keyring", "cryptography", "rich", "starlette", "uvicorn", "typer", "click", "cattrs")


def _heavy_loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_import_loads_no_heavy_dependency() -> None:
    """Nothing beyond what ``import httpx`` itself loads (httpx loads click and rich for
    its own command line whenever they are installed, as with our [cli] extra)."""
    assert _heavy_loaded_by("import sectigo_iot") <= _heavy_loaded_by("import httpx")
    assert not _heavy_loaded_by("import sectigo_iot") & {
        "keyring",
        "cryptography",
        "starlette",
        "uvicorn",
        "typer",
        "cattrs",
    }


def test_httpx_cli_module_is_available_after_import() -> None:
    code = "import sectigo_iot, sys; import httpx._main; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
