"""``sectigo fleet run --metrics-port/--metrics-host/--metrics-textfile``: the fleet's
Prometheus metrics served over HTTP while it runs, or written after each pass for
node_exporter's textfile collector."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._errors import CLIError, ExitCode
from ._output import note

if TYPE_CHECKING:
    from .. import SectigoClient
    from ..metrics import Metrics, MetricsServer

__all__ = ["DEFAULT_HOST", "MetricsExport", "metrics_export"]

#: where --metrics-port listens unless --metrics-host says otherwise: this machine only
DEFAULT_HOST = "127.0.0.1"
#: a running fleet reads the authorities' balances after each pass that worked on
#: records, and at least this often (seconds)
BALANCE_INTERVAL = 300.0


class MetricsExport:
    """A Metrics and where it goes: served (entered: the server runs until the exit) and
    a textfile written by :meth:`after_pass`."""

    def __init__(self, port: int | None, host: str, textfile: Path | None) -> None:
        from ..metrics import Metrics

        self.metrics: Metrics = Metrics()
        self.port = port
        self.host = host
        self.textfile = textfile
        self._server: MetricsServer | None = None
        self._worked: Any = None  # an anyio.Event: set after a pass that worked on records

    def __enter__(self) -> MetricsExport:
        if self.port is not None:
            try:
                self._server = self.metrics.serve(self.port, self.host)
            except OSError as exc:
                raise CLIError(
                    f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc} "
                    "(choose another --metrics-port or --metrics-host)",
                    ExitCode.ERROR,
                ) from None
            note(f"serving metrics at {self._server.url}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def read_balances(self, client: SectigoClient) -> None:
        """Read the authorities' balances; a failure is said and the fleet goes on."""
        from ..errors import SectigoError

        try:
            await self.metrics.update_balances(client)
        except SectigoError as exc:
            note(f"warning: the authorities' balances could not be read: {exc}")

    async def keep_balances(self, client: SectigoClient) -> None:
        """Read the balances now, after each pass that worked on records (which may
        have spent licenses) and at least every BALANCE_INTERVAL seconds, until
        cancelled."""
        import anyio

        while True:
            self._worked = anyio.Event()
            await self.read_balances(client)
            with anyio.move_on_after(BALANCE_INTERVAL):
                await self._worked.wait()

    def after_pass(self, *, worked: bool = False) -> None:
        """After a pass (``worked``: it worked on records): write the textfile, if one
        was asked for (a failure is said and the fleet goes on: node_exporter shows the
        file's age), and have the balances read again."""
        if worked and self._worked is not None:
            self._worked.set()
        if self.textfile is None:
            return
        try:
            self.metrics.write_textfile(self.textfile)
        except (OSError, ValueError) as exc:
            note(f"warning: metrics not written to {self.textfile}: {exc}")


def metrics_export(
    port: int | None, host: str | None, textfile: str | None, *, once: bool
) -> MetricsExport | None:
    """The export the options ask for (None without any), every option checked before
    anything is opened or sent."""
    if host is not None and port is None:
        raise CLIError("--metrics-host needs --metrics-port (the address it listens on)")
    if port is not None and once:
        raise CLIError(
            "--metrics-port serves while 'fleet run' runs; with --once write the metrics "
            "with --metrics-textfile PATH.prom"
        )
    path = None if textfile is None else _textfile(textfile)
    if port is None and path is None:
        return None
    if host is not None and not host.strip():
        raise CLIError("--metrics-host is empty: give an address such as 127.0.0.1")
    return MetricsExport(port, DEFAULT_HOST if host is None else host.strip(), path)


def _textfile(text: str) -> Path:
    from .._files import check_target

    path = Path(text)
    if path.suffix != ".prom":
        raise CLIError(
            f"--metrics-textfile {text!r} must end in .prom (node_exporter's textfile "
            "collector reads only those)"
        )
    if not path.parent.is_dir():
        raise CLIError(f"--metrics-textfile: the folder {str(path.parent)!r} does not exist")
    check_target(path, overwrite=True)  # not a symlink, not a folder
    return path
