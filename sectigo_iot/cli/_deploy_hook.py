"""The deploy hook of issue and renew: a shell command run once per new certificate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ._output import note

if TYPE_CHECKING:
    from ..lifecycle import CertificateResult

__all__ = [
    "ENV_RENEWED_ACTION",
    "ENV_RENEWED_DIR",
    "ENV_RENEWED_SERIAL",
    "ENV_REPLACED_SERIAL",
    "DeployHook",
    "HookOutcome",
]

#: the hook's environment: the folder, what happened, the new and the replaced serial
ENV_RENEWED_DIR = "SECTIGO_RENEWED_DIR"
ENV_RENEWED_ACTION = "SECTIGO_RENEWED_ACTION"
ENV_RENEWED_SERIAL = "SECTIGO_RENEWED_SERIAL"
ENV_REPLACED_SERIAL = "SECTIGO_REPLACED_SERIAL"
#: never handed to a hook: it has no use for the API or PKCS#12 passwords
_HIDDEN_FROM_HOOK = frozenset({"SECTIGO_PASSWORD", "SECTIGO_PKCS12_PASSWORD"})


class HookOutcome(NamedTuple):
    """How a deploy hook ended: its exit status (None: it did not start)."""

    exit_code: int | None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class DeployHook:
    """The ``on_change`` callback: runs the command once per new certificate, one at a
    time, and records how it ended (it never raises, so the renewal stands)."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.outcomes: dict[Path, HookOutcome] = {}
        self._lock: Any = None

    async def __call__(self, result: CertificateResult) -> None:
        import anyio

        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            self.outcomes[result.folder] = await self._run(result)

    async def _run(self, result: CertificateResult) -> HookOutcome:
        import anyio

        env = {key: value for key, value in os.environ.items() if key not in _HIDDEN_FROM_HOOK}
        env[ENV_RENEWED_DIR] = str(result.folder)
        env[ENV_RENEWED_ACTION] = result.action
        env[ENV_RENEWED_SERIAL] = result.bundle.serial_number if result.bundle else ""
        env[ENV_REPLACED_SERIAL] = result.replaced_serial or ""
        # the hook writes straight to our stderr (stdout is the report), so a daemon it
        # starts that keeps the stream open cannot hold us up; captured only where
        # stderr is no file (in-process runs under tests)
        sys.stderr.flush()
        target = _fileno(sys.stderr)
        try:
            done = await anyio.run_process(
                self.command,  # a command line from the operator: run by the shell
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if target is None else target,
                stderr=subprocess.STDOUT,
                check=False,
                env=env,
            )
        except OSError as exc:
            note(f"warning: the deploy hook for {result.folder} did not start: {exc}")
            return HookOutcome(None)
        output = (done.stdout or b"").decode(errors="replace")
        if output:
            sys.stderr.write(output if output.endswith("\n") else output + "\n")
            sys.stderr.flush()
        if done.returncode != 0:
            note(
                f"warning: the deploy hook for {result.folder} exited with status "
                f"{done.returncode}; the new certificate stays in place"
            )
        return HookOutcome(done.returncode)


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return None
