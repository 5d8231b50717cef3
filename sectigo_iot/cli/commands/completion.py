"""``sectigo completion``: the shell completion script."""

import sys
from typing import Annotated

import typer

from .._errors import CLIError

__all__ = ["register"]

_SHELLS = ("bash", "zsh", "fish")


def completion(
    shell: Annotated[
        str,
        typer.Argument(metavar="SHELL", help="bash, zsh or fish.", show_default=False),
    ],
) -> None:
    """Print the shell completion script for sectigo.

    Load it in the current shell with, for bash: source <(sectigo completion bash);
    for zsh: source <(sectigo completion zsh); for fish:
    sectigo completion fish | source. Add that line to ~/.bashrc, ~/.zshrc or
    ~/.config/fish/config.fish to have it in every new shell.
    """
    from typer._completion_shared import get_completion_script

    from .._group import COMPLETE_VAR

    if shell not in _SHELLS:
        raise CLIError(f"unknown shell {shell!r}: give bash, zsh or fish")
    script = get_completion_script(prog_name="sectigo", complete_var=COMPLETE_VAR, shell=shell)
    sys.stdout.write(script + "\n")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("completion")(completion)
