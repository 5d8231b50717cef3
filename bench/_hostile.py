"""Times the toolkit on every case of the hostile-input catalogue (tests/certs/hostile_inputs.py).

Run by ``bench/run.py`` as ``python bench/_hostile.py``; prints one JSON line::

    {"worst_s": 0.21, "slowest": "p12-at-the-iteration-cap", "cases": {"...": 0.0001}}

Each case is timed ``ROUNDS`` times and its fastest run kept (the cost of the input, not
the noise of a busy machine); ``worst_s`` is the slowest case. A case whose outcome is not
the catalogue's expected one fails the run.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from types import ModuleType

__all__ = ["ROUNDS", "run_catalogue"]

ROUNDS = 3
CATALOGUE = Path(__file__).resolve().parent.parent / "tests" / "certs" / "hostile_inputs.py"


def _load_catalogue() -> ModuleType:
    if str(CATALOGUE.parent) not in sys.path:
        sys.path.insert(0, str(CATALOGUE.parent))
    return importlib.import_module(CATALOGUE.stem)


def run_catalogue(rounds: int = ROUNDS) -> tuple[float, dict[str, float]]:
    """Return the worst case's seconds and the seconds of each case, by name."""
    times: dict[str, float] = {}
    for case in _load_catalogue().catalogue():
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            try:
                case.entry(case.data)
            except Exception as exc:
                outcome: type[BaseException] | None = type(exc)
            else:
                outcome = None
            best = min(best, time.perf_counter() - started)
            if outcome is not case.expected:
                raise RuntimeError(
                    f"hostile input {case.name!r}: expected "
                    f"{getattr(case.expected, '__name__', 'success')}, got "
                    f"{getattr(outcome, '__name__', 'success')}"
                )
        times[case.name] = best
    return max(times.values()), times


def main() -> None:
    worst, times = run_catalogue()
    slowest = max(times, key=lambda name: times[name])
    print(json.dumps({"worst_s": worst, "slowest": slowest, "cases": times}))


if __name__ == "__main__":
    main()
