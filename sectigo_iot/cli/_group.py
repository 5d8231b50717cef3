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

__all__ = ["COMPLETE_VAR", "SectigoGroup"]

#: the variable a shell's completion script sets when it asks for completions
COMPLETE_VAR = "_SECTIGO_COMPLETE"


class SectigoGroup(TyperGroup):
    """Runs the command and turns every failure into one ``error:`` line and a status.

    Every command also takes ``--json``/``--table`` after its name, as the root does
    before it; ``_SECTIGO_COMPLETE`` in the environment answers a shell's completion
    request (``sectigo completion SHELL`` prints the script that sends them).
    """

    #: set by the global ``--verbose``: print tracebacks of unexpected errors
    verbose = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in _every_command(self):
            command.params.append(_output_option())

    def _main_shell_completion(
        self, ctx_args: Any, prog_name: str, complete_var: Any = None
    ) -> None:
        if os.environ.get(COMPLETE_VAR):
            from typer._completion_classes import completion_init

            completion_init()  # typer's shell protocol (its scripts), not click's
        super()._main_shell_completion(ctx_args, prog_name, COMPLETE_VAR)

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


def _every_command(group: Any) -> list[Any]:
    """The commands of ``group`` and of its sub-groups (the sub-groups too)."""
    found = []
    for command in getattr(group, "commands", {}).values():
        found.append(command)
        found.extend(_every_command(command))
    return found


def _output_option() -> Any:
    """``--json/--table`` for one command: the same as the global option."""
    from typer.core import TyperOption

    return TyperOption(
        param_decls=["--json/--table", "output_json"],
        default=None,
        is_flag=True,
        expose_value=False,
        callback=_set_output,
        help="Force JSON or human output (also accepted before the command).",
    )


def _set_output(ctx: Any, _param: Any, value: bool | None) -> None:
    from ._settings import Settings

    settings = ctx.find_root().obj
    if value is not None and isinstance(settings, Settings):
        settings.json = value
