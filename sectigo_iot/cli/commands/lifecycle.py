"""Certificates kept valid in folders: issue (one folder) and renew (many, from a timer).

Both run :mod:`sectigo_iot.lifecycle`; this module adds the folder discovery and the
options both share; the deploy hook and the report are ``_deploy_hook`` and
``_renewal_report``.
"""

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._deploy_hook import DeployHook
from .._errors import CLIError, check_id
from .._options import (
    DEFAULT_BEFORE,
    DEFAULT_TIMEOUT,
    BeforeOption,
    DeployHookOption,
    DnsNamesOption,
    DomainsOption,
    DryRunOption,
    RenewForceOption,
    RevokeReplacedOption,
    RootOption,
    WaitTimeoutOption,
    parse_duration,
    value_option,
)
from .._output import Output, isatty, make_console, note
from .._renewal_report import Report, show_report
from .._run import output_of, run

if TYPE_CHECKING:
    from ... import SectigoClient, WaitProgress
    from ...lifecycle import CertificateResult, LockHolder

__all__ = ["parse_duration", "register"]

DEFAULT_LOCK_TIMEOUT = 300.0

LockTimeoutOption = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        metavar="SECONDS",
        help="Seconds to wait for a folder that another process is working on.",
        min=0.0,
    ),
]


_JSON_SHAPE = (
    '{"folder": absolute path, "action": kept|issued|renewed|resumed|failed, "reason": '
    "valid|empty|due|names|damaged|forced|pending|error, "
    '"detail": text, "ok": false when the folder failed or its hook failed, "dryRun": bool, '
    '"serialNumber", "notAfter" and "renewalTime" (ISO 8601): the certificate in place and '
    "when it is renewed, or null, "
    '"batchId": the new batch or null, "replacedSerial": the certificate replaced or '
    'null, "revoked": bool, "hook": null (not run) or {"exitCode": int or null, "ok": '
    'bool}, "error": text or null}.'
)

_SCHEDULE = """\
Made to run from cron or a systemd timer, once or twice a day: it spends a license
only for a folder that needs a new certificate, a run that fails is simply tried again
at the next one, and an attempt cut short (crash, reboot) is finished, not repeated.
Credentials come from the environment or a .env file in the working directory.

\b
cron (crontab -e), with the credentials and SECTIGO_CERTS_ROOT in
/etc/sectigo/.env (0600) and the reload command in /etc/sectigo/deploy (0700):
  PATH=/usr/local/bin:/usr/bin:/bin
  17 3,15 * * * cd /etc/sectigo && sectigo renew --deploy-hook ./deploy

\b
systemd, /etc/systemd/system/sectigo-renew.service:
  [Unit]
  Description=Renew the Sectigo certificates that are due
  [Service]
  Type=oneshot
  EnvironmentFile=/etc/sectigo/credentials
  ExecStart=/usr/local/bin/sectigo renew \\
      --deploy-hook 'systemctl reload nginx'
and /etc/systemd/system/sectigo-renew.timer:
  [Timer]
  OnCalendar=*-*-* 03,15:17
  RandomizedDelaySec=1h
  Persistent=true
  [Install]
  WantedBy=timers.target
then: systemctl enable --now sectigo-renew.timer

Try it first with --dry-run, which sends and writes nothing.
"""


def _root_folder(root: str | None) -> Path:
    """The folder of certificate folders: ``--root``, ``$SECTIGO_CERTS_ROOT`` or the
    user data folder's ``certs``."""
    if root is not None:
        if not root.strip():
            raise CLIError("--root must not be empty")
        return Path(root).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("sectigo-iot", appauthor=False)) / "certs"


def _folder_for(directory: str) -> Path:
    if not directory.strip():
        raise CLIError('directory "" does not exist')
    return Path(directory).expanduser().absolute()


def _real(folder: Path) -> Path:
    """``folder`` with symlinks and ``..`` resolved: one name for each real folder."""
    return Path(os.path.realpath(folder))


def _found_under(root: Path) -> list[Path]:
    """The folders directly under ``root`` that hold a journal, by name."""
    from ...lifecycle import JOURNAL_NAME

    if not root.exists():
        return []
    if not root.is_dir():
        raise CLIError(f'path "{root}" is not a directory')
    try:
        # any journal.json, even one that is no file: renew says what is wrong with it
        return sorted(path for path in root.iterdir() if os.path.lexists(path / JOURNAL_NAME))
    except OSError as exc:
        raise CLIError(f"could not read {root}: {exc.strerror or exc}") from None


class _Renewal:
    """The options issue and renew share, declared once here (both commands end with
    them), and what both do with them: the deploy hook and the report."""

    def __init__(
        self,
        root: RootOption = None,
        before: BeforeOption = DEFAULT_BEFORE,
        revoke_replaced: RevokeReplacedOption = False,
        deploy_hook: DeployHookOption = None,
        dry_run: DryRunOption = False,
        force: RenewForceOption = False,
        timeout: WaitTimeoutOption = DEFAULT_TIMEOUT,
        lock_timeout: LockTimeoutOption = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.root = root
        self.dry_run = dry_run
        self.hook = DeployHook(deploy_hook) if deploy_hook else None
        self.folders: list[Path] = []  # set by the command: told about on Ctrl-C
        self._before = before
        self._status: Any = None  # the progress display on a terminal, while one shows
        self._options = {
            "revoke_replaced": revoke_replaced,
            "force": force,
            "dry_run": dry_run,
            "on_change": self._deploy if self.hook else None,
            "wait_timeout": timeout,
            "lock_timeout": lock_timeout,
            "on_lock_wait": _say_waiting,
            "on_progress": self._show_progress,
        }

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``ensure_certificate`` and ``renew_due`` (checks
        --before)."""
        return {"renew_before": parse_duration(self._before), **self._options}

    def report(self, results: "list[CertificateResult]") -> Report:
        return Report(results, self.hook.outcomes if self.hook else {})

    def run(
        self,
        ctx: typer.Context,
        action: "Callable[[SectigoClient], Awaitable[Report]]",
        *,
        single: bool,
    ) -> None:
        """Run ``action``, show its report, then exit 1 when a folder or a hook failed.

        On Ctrl-C, each folder left with an attempt under way is named with its batch
        and how to resume it."""
        reports: list[Report] = []

        def show(out: Output, report: Report) -> None:
            reports.append(report)
            show_report(out, report, single=single)

        async def shown_while_waiting(client: "SectigoClient") -> Report:
            with self._progress_display():
                return await action(client)

        try:
            run(ctx, shown_while_waiting, show)
        except KeyboardInterrupt:
            _tell_how_to_resume(ctx, self.folders)
            raise
        reports[0].raise_for_problems()

    @contextlib.contextmanager
    def _progress_display(self) -> Iterator[None]:
        """A status line on stderr while batches are waited for (on a terminal only)."""
        if not isatty(sys.stderr):
            yield
            return
        with make_console(sys.stderr).status("") as status:
            status.stop()  # shown from the first poll on
            self._status = status
            try:
                yield
            finally:
                self._status = None

    async def _deploy(self, result: "CertificateResult") -> None:
        """The deploy hook, with the progress display stopped: its output is its own."""
        assert self.hook is not None
        if self._status is not None:
            self._status.stop()
        await self.hook(result)

    def _show_progress(self, folder: Path, update: "WaitProgress") -> None:
        if self._status is not None:
            from .._output import printable

            self._status.update(printable(f"{folder}: {update}"))
            self._status.start()


def _say_waiting(folder: Path, holder: "LockHolder") -> None:
    """Said at once when a folder is locked by another process."""
    note(f"waiting for {folder}: locked by {holder}")


def _tell_how_to_resume(ctx: typer.Context, folders: list[Path]) -> None:
    """After Ctrl-C: the batch each folder waits for, and the commands that go on."""
    from ...lifecycle import LifecycleError, read_journal

    command = " ".join(ctx.command_path.split()[1:]) or "renew"
    for folder in folders:
        try:
            journal = read_journal(folder)
        except LifecycleError:
            continue
        pending = journal.pending if journal is not None else None
        if pending is None:
            continue
        if pending.batch_id is None:
            what = f"the create of batch {pending.batch_name!r} may have been sent"
            fetch = ""
        else:
            what = f"batch {pending.batch_id} was created and is not in place yet"
            fetch = f", or fetch it yourself with 'sectigo download -i {pending.batch_id}'"
        note(
            f"interrupted: for {folder}, {what}. Run the same 'sectigo {command}' again to "
            f"resume it (its journal.json records the attempt; no second license is "
            f"spent){fetch}"
        )


def _with_renewal(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with the options of :class:`_Renewal` added after its own parameters;
    it gets them as one ``renewal`` argument."""
    shared = inspect.signature(_Renewal).parameters
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "renewal"]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        renewal = _Renewal(**{name: kwargs.pop(name) for name in shared})
        command(renewal=renewal, **kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *shared.values()])  # type: ignore[attr-defined]
    return wrapper


#: issue's longer options, declared apart to keep ``issue`` short
IssueAuthorityOption = Annotated[
    int,
    value_option(
        "--authority -a",
        "ID",
        "Id of the issuing authority (the id that 'sectigo authorities' lists; "
        "revoking the replaced certificate needs it).",
    ),
]
FolderArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="[DIR]",
        help="The certificate's folder (created, 0700, if missing; default: "
        "ROOT/COMMON_NAME, which 'sectigo renew' finds).",
        show_default=False,
    ),
]


@_with_renewal
def issue(
    ctx: typer.Context,
    renewal: _Renewal,
    authority: IssueAuthorityOption = 0,
    domains: DomainsOption = None,
    dns_names: DnsNamesOption = None,
    organization: Annotated[
        str,
        value_option(
            "--organization -o",
            "ORG",
            "Organization name (sent as the organizationName profile parameter).",
        ),
    ] = "",
    directory: FolderArgument = None,
) -> None:
    """Put a certificate in DIR, or keep the one there while it is valid.

    The first run issues (Sectigo generates the key) and writes DIR/cert.pem, chain.pem,
    fullchain.pem and key.pem (links into DIR/live/, switched together) and
    DIR/journal.json, which records what was asked for. Later runs keep the certificate
    while it has the same names and more than --before is left, and renew it otherwise
    (or with --force). Exit status 0 when a valid certificate is in place; 1 when the
    deploy hook failed (the certificate stays).
    """
    if not domains:
        raise CLIError("must specify domain name of cert subject (-d DOMAIN)")
    check_id(authority, "authority ID", "must specify authority ID (-a ID)")
    options = renewal.options()
    from ...lifecycle import CertificateSpec, ensure_certificate

    spec = CertificateSpec(
        authority_id=authority,
        common_name=domains[0],
        dns_names=(*domains[1:], *(dns_names or [])),
        params={"organizationName": organization} if organization else None,
    )
    if directory is not None:
        folder = _folder_for(directory)
    else:
        folder = _root_folder(renewal.root) / spec.common_name.replace("*", "_wildcard", 1)

    renewal.folders = [folder]

    async def action(client: "SectigoClient") -> Report:
        return renewal.report([await ensure_certificate(client, spec, folder, **options)])

    renewal.run(ctx, action, single=True)


@_with_renewal
def renew(
    ctx: typer.Context,
    renewal: _Renewal,
    directories: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[DIR]...",
            help="Certificate folders (default: every folder directly under ROOT that "
            "holds a journal.json).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Renew the certificates that are due, in every folder 'sectigo issue' made.

    Each folder is kept, renewed (due, names changed, files damaged, or --force) or
    resumed (an attempt cut short is finished), with what its journal.json asks for; a
    folder that fails does not stop the others. Exit status 0 when every folder holds a
    valid certificate and every hook succeeded, 1 otherwise (an error line names them).
    """
    options = renewal.options()
    if directories:
        given = [_folder_for(directory) for directory in directories]
    else:
        base = _root_folder(renewal.root)
        given = _found_under(base)
        if not given:
            note(f"no certificate folders under {base} (make one with 'sectigo issue')")
            show_report(output_of(ctx), Report([], {}), single=False)
            return
    folders = list(dict.fromkeys(_real(folder) for folder in given))  # each real one once
    renewal.folders = folders

    from ...lifecycle import JOURNAL_NAME, renew_due

    present = [folder for folder in folders if os.path.lexists(folder / JOURNAL_NAME)]

    async def action(client: "SectigoClient") -> Report:
        results = await renew_due(client, present, **options)
        by_folder = dict(zip(present, results, strict=True))
        return renewal.report(
            [by_folder.get(folder) or _no_journal(folder, renewal.dry_run) for folder in folders]
        )

    renewal.run(ctx, action, single=False)


def _no_journal(folder: Path, dry_run: bool) -> "CertificateResult":
    """The failed result of a folder given on the command line that holds no journal
    (left untouched: renew never makes a folder)."""
    from ...lifecycle import JOURNAL_NAME, CertificateResult, JournalError

    if not folder.is_dir():
        detail = f"{folder} is not a directory"
    else:
        detail = f"{folder} holds no {JOURNAL_NAME}; make it with 'sectigo issue'"
    return CertificateResult.failure(folder, JournalError(detail), dry_run=dry_run)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    json_intro = "JSON (when stdout is not a terminal, or with --json): "
    app.command("issue", epilog=json_intro + "one object, " + _JSON_SHAPE)(issue)
    app.command(
        "renew", epilog=f"{_SCHEDULE}\n{json_intro}a list, one object per folder, " + _JSON_SHAPE
    )(renew)
