"""Runnable examples in Markdown: finding them and running them (docs/ and the README).

A fenced block preceded by an HTML comment ``<!-- test: KIND -->`` is an example that a
test runs; ``tests/test_docs.py`` says what each kind means.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

MARKER = re.compile(
    r"^<!-- test: (?P<kind>[a-z]+) -->\n```(?P<lang>[a-z]*)[^\n]*\n(?P<code>.*?)^```$",
    re.M | re.S,
)
ANY_MARKER = re.compile(r"^<!-- test: [^\n]*-->$", re.M)
KINDS = {"emulator": "python", "program": "python", "pytest": "python", "shell": "bash"}
PYTEST_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def marked_blocks(text: str, kind: str) -> list[str]:
    """The code of every block of ``text`` marked ``<!-- test: KIND -->``, in order."""
    return [match["code"] for match in MARKER.finditer(text) if match["kind"] == kind]


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment for a subprocess: no keyring, caches and HOME in ``tmp_path``, no
    Sectigo credentials except those in ``extra``, this venv's scripts first on PATH."""
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


def run_ok(where: object, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run ``argv``; fail the test with ``where`` and both outputs unless it exits 0."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_programs(where: object, codes: list[str], cwd: Path, env_dir: Path) -> int:
    """Run each code as a whole program in ``cwd``, with ``SECTIGO_ENDPOINT``,
    ``SECTIGO_USERNAME`` and ``SECTIGO_PASSWORD`` naming a fresh emulator served on
    loopback; return the number of licenses they spent."""
    from sectigo_iot.emulator import DEFAULT_USERNAME, Emulator

    with Emulator() as emulator, emulator.run_in_thread() as url:
        env = subprocess_env(
            env_dir,
            SECTIGO_ENDPOINT=url,
            SECTIGO_USERNAME=DEFAULT_USERNAME,
            SECTIGO_PASSWORD=emulator.config.users[DEFAULT_USERNAME],
        )
        for code in codes:
            run_ok(where, [sys.executable, "-c", code], cwd, env, timeout=120)
        return emulator.licenses_used


def run_pytest_modules(where: object, codes: list[str], tmp_path: Path) -> None:
    """Run the codes as test modules with pytest in a subprocess; every test must pass."""
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    for index, code in enumerate(codes):
        (tmp_path / f"test_doc_{index}.py").write_text(code)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    output = run_ok(where, argv, tmp_path, subprocess_env(tmp_path), timeout=300)
    assert " passed" in output and "failed" not in output, output
