"""The root command: runs a command line and turns every failure into one ``error:`` line
and an exit status."""

from __future__ import annotations

import os
import sys
from typing import Any

from typer.core import TyperGroup

from ._dotenv import dotenv_applied
from ._errors import report_error
from ._secrets import forget_secrets

__all__ = ["SectigoGroup"]


class SectigoGroup(TyperGroup):
    """Runs the command and turns every failure into one ``error:`` line and a status."""

    #: set by the global ``--verbose``: print tracebacks of unexpected errors
    verbose = False

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        SectigoGroup.verbose = False
        forget_secrets()
        with dotenv_applied():
            code = self._run(args, prog_name or "sectigo", complete_var, **extra)
        if standalone_mode:
            raise SystemExit(code)
        return code

    def _run(self, args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except BrokenPipeError:  # e.g. `sectigo find -n x | head -1`
            _silence_stdout()
            return 1
        except SystemExit:
            raise
        except BaseException as exc:  # every failure ends here, once
            return report_error(exc, verbose=SectigoGroup.verbose)
        return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests)
        pass
