"""Start-up times of fresh processes, each against ``import httpx`` in the same install.

The baselines:

* ``import_ratio``: ``from sectigo_iot import SectigoClient, Batch`` / ``import httpx``,
  both in a *plain install*
  (what ``pip install sectigo-iot`` leaves: sectigo_iot, its runtime dependencies from
  pyproject.toml without extras, and theirs). httpx finds no click, rich or pygments
  there, so it does not load its optional command-line module, which it does in the dev
  environment.
* ``cli_start_ratio`` / ``cli_subcommand_ratio``: ``sectigo --help`` /
  ``sectigo create --help`` over ``import httpx``, all in a *[cli] install* (the plain
  one plus the ``cli`` extra: typer, rich and theirs), the environment the CLI runs in.
  ``cli_start_s`` is the wall time of ``sectigo --help`` there.

Neither install needs a network or a new venv: each is a temporary folder of symlinks to
the installed packages (and their ``.dist-info``) that the requirements reach, found
recursively with ``importlib.metadata``. Every command runs as ``python -S`` with
``PYTHONPATH`` set to that folder and no other ``PYTHON*`` variable, so nothing else of
this environment is importable (``-I`` would ignore ``PYTHONPATH``; skipping ``site``
costs both sides the same). Bytecode caches, as an installed package has them, go to a
private ``PYTHONPYCACHEPREFIX`` filled by a warm-up run of each command, so nothing is
written to the tree. The CLI runs through a copy of its console-script wrapper.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _report import Scale, log, ratio
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import sectigo_iot

__all__ = ["install_tree", "measure_startup", "requirements_closure"]

PROJECT = "sectigo-iot"
CLI_SCRIPT = "sectigo"
CLI_SUBCOMMAND = ("create", "--help")
Command = tuple[list[str], Path]  # argv, the PYTHONPATH folder

#: what a program using the SDK imports (``import sectigo_iot`` alone loads the client and
#: the models lazily, on first use, so it would measure nothing)
SDK_IMPORT = "from sectigo_iot import SectigoClient, Batch"


def requirements_closure(project: str, extras: tuple[str, ...] = ()) -> list[metadata.Distribution]:
    """``project`` and every distribution its requirements reach (markers evaluated here;
    ``extras`` of ``project`` only, and the extras that requirements name)."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(project, extra, project) for extra in extras or ("",)]
    while todo:
        name, extra, parent = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"{name} (required by {parent}) is not installed") from None
        key = canonicalize_name(dist.metadata["Name"])
        if (key, extra) in seen:
            continue
        seen.add((key, extra))
        found.setdefault(key, dist)
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                for wanted in sorted(requirement.extras) or [""]:
                    todo.append((requirement.name, wanted, key))
    return list(found.values())


def install_tree(folder: Path, dists: list[metadata.Distribution]) -> None:
    """Fill ``folder`` with symlinks to the top-level modules, packages and ``.dist-info``
    of ``dists`` (sectigo_iot itself from its import location: an editable install lists
    only a ``.pth`` file). A namespace folder shared by distributions is linked whole."""
    folder.mkdir(parents=True)
    entries: dict[str, Path] = {"sectigo_iot": Path(sectigo_iot.__file__).parent}
    for dist in dists:
        for file in dist.files or ():
            top = file.parts[0]
            if top.startswith("..") or top.endswith(".pth") or top == "__pycache__":
                continue  # scripts, path hooks, caches
            entries.setdefault(top, Path(str(dist.locate_file(top))))
    for name, target in entries.items():
        (folder / name).symlink_to(target, target_is_directory=target.is_dir())


def console_script(folder: Path, name: str) -> Path:
    """A copy of the wrapper that pip writes for the console script ``name``."""
    (entry,) = metadata.distribution(PROJECT).entry_points.select(
        group="console_scripts", name=name
    )
    folder.mkdir(parents=True)
    script = folder / name
    script.write_text(
        f"import sys\nfrom {entry.module} import {entry.attr}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n"
        f"    sys.exit({entry.attr}())\n"
    )
    return script


def _time_command(command: Command, cwd: Path, env: dict[str, str]) -> float | None:
    """Wall time of one run (None when it fails). ``wait()`` without a timeout blocks in
    ``waitpid`` until the exit; with one it polls, sleeping up to 50 ms between checks,
    which rounded every time up to a 50 ms step. A timer kills a run that hangs."""
    argv, path = command
    start = time.perf_counter()
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        returncode = process.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - start
    return elapsed if returncode == 0 else None


def _cli_commands(root: Path) -> dict[str, Command]:
    """The [cli] install's commands (none when the CLI or its extra is not installed)."""
    try:
        tree = root / "cli"
        install_tree(tree, requirements_closure(PROJECT, ("cli",)))
        script = [sys.executable, "-S", str(console_script(root / "bin", CLI_SCRIPT))]
    except (RuntimeError, ValueError) as exc:
        log(f"no [cli] install to measure the CLI in: {exc}")
        return {}
    return {
        "cli_httpx": ([sys.executable, "-S", "-c", "import httpx"], tree),
        "cli": ([*script, "--help"], tree),
        "cli_sub": ([*script, *CLI_SUBCOMMAND], tree),
    }


def measure_startup(scale: Scale, notes: dict[str, str] | None = None) -> dict[str, float | None]:
    """Fresh-process wall times (median of alternating runs) as ``import_ratio``,
    ``cli_start_s``, ``cli_start_ratio`` and ``cli_subcommand_ratio``; the CLI values
    are None when the CLI is missing or fails."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    with tempfile.TemporaryDirectory(prefix="sectigo-bench-") as tmp:
        root, cwd = Path(tmp), Path(tmp, "cwd")  # cwd: an empty folder, first on sys.path
        cwd.mkdir()
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        plain = root / "plain"
        install_tree(plain, requirements_closure(PROJECT))
        commands: dict[str, Command] = {
            "httpx": ([sys.executable, "-S", "-c", "import httpx"], plain),
            "sdk": ([sys.executable, "-S", "-c", SDK_IMPORT], plain),
        }
        if scale.details:
            commands["python"] = ([sys.executable, "-S", "-c", "pass"], plain)
        commands.update(_cli_commands(root))  # last: dropped together if the CLI fails
        for name, command in list(commands.items()):  # warm up: bytecode caches
            if _time_command(command, cwd, env) is not None:
                continue
            if not name.startswith("cli"):
                raise RuntimeError(f"{' '.join(command[0])} failed")
            log(f"the CLI failed to start ({' '.join(command[0])}); reporting null")
            commands = {key: value for key, value in commands.items() if not key.startswith("cli")}
            break
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for run_ in range(scale.import_runs):
            shift = run_ % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed = _time_command(commands[name], cwd, env)
                if elapsed is None:
                    raise RuntimeError(f"{' '.join(commands[name][0])} failed")
                times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items()}
    if notes is not None:
        _describe(median, notes)
    cli = "cli" in median
    return {
        "import_ratio": ratio(median["sdk"], median["httpx"]),
        "cli_start_s": median["cli"] if cli else None,
        "cli_start_ratio": ratio(median["cli"], median["cli_httpx"]) if cli else None,
        "cli_subcommand_ratio": ratio(median["cli_sub"], median["cli_httpx"]) if cli else None,
    }


def _describe(median: dict[str, float], notes: dict[str, str]) -> None:
    """The start-up times behind the ratios, in milliseconds."""
    ms = {name: f"{1000 * value:.0f} ms" for name, value in median.items()}
    python = f"python -S -c pass {ms['python']}; " if "python" in ms else ""
    notes["import_ratio"] = (
        f"plain install (no extras): {python}import httpx {ms['httpx']}; {SDK_IMPORT} {ms['sdk']}"
    )
    if "cli" in ms:
        notes["cli_start_ratio"] = (
            f"[cli] install: import httpx {ms['cli_httpx']}; sectigo --help {ms['cli']}; "
            f"sectigo {' '.join(CLI_SUBCOMMAND)} {ms['cli_sub']}"
        )
