"""The report of issue and renew: one entry per folder, as JSON or as a table, and the
exit status when a folder or its deploy hook failed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ._deploy_hook import HookOutcome
from ._errors import CLIError, ExitCode
from ._output import Output
from ._secrets import scrub_text

if TYPE_CHECKING:
    from ..lifecycle import CertificateResult

__all__ = ["Report", "show_report"]


class Report(NamedTuple):
    """The results of a run, with the hook outcomes by folder."""

    results: list[CertificateResult]
    hooks: dict[Path, HookOutcome]

    def entries(self) -> list[dict[str, Any]]:
        return [_entry(result, self.hooks.get(result.folder)) for result in self.results]

    def problems(self) -> list[str]:
        """One phrase per failed folder or failed hook."""
        found = []
        for result in self.results:
            hook = self.hooks.get(result.folder)
            if result.action == "failed":
                found.append(f"{result.folder} failed ({scrub_text(result.detail)})")
            elif hook is not None and not hook.ok:
                status = "did not start" if hook.exit_code is None else f"exit {hook.exit_code}"
                found.append(f"the deploy hook for {result.folder} failed ({status})")
        return found

    def raise_for_problems(self) -> None:
        """Exit status 1 (after the report) when a folder or a hook failed."""
        problems = self.problems()
        if problems:
            raise CLIError(
                f"{len(problems)} of {len(self.results)} folder(s) not in order: "
                + "; ".join(problems),
                ExitCode.ERROR,
            )


def _entry(result: CertificateResult, hook: HookOutcome | None) -> dict[str, Any]:
    bundle = result.bundle
    failed = result.action == "failed"
    detail = scrub_text(result.detail)
    return {
        "folder": str(result.folder),
        "action": result.action,
        "reason": result.reason,
        "detail": detail,
        "ok": not failed and (hook is None or hook.ok),
        "dryRun": result.dry_run,
        "serialNumber": bundle.serial_number if bundle is not None else None,
        "notAfter": bundle.not_after.isoformat() if bundle is not None else None,
        "renewalTime": result.renewal_time.isoformat() if result.renewal_time else None,
        "batchId": result.batch.batch_id if result.batch is not None else None,
        "replacedSerial": result.replaced_serial,
        "revoked": result.revoked,
        "hook": None if hook is None else {"exitCode": hook.exit_code, "ok": hook.ok},
        "error": detail if failed else None,
    }


def show_report(out: Output, report: Report, *, single: bool) -> None:
    """The report as JSON (one object for a single folder) or as a table."""
    entries = report.entries()
    if out.json:
        out.emit_json(entries[0] if single and len(entries) == 1 else entries)
        return
    rows = [
        [
            entry["folder"],
            f"{entry['action']} ({entry['reason']})",
            entry["serialNumber"],
            (entry["notAfter"] or "")[:10],
            (entry["renewalTime"] or "")[:10],
            _note(entry),
        ]
        for entry in entries
    ]
    title = "dry run: nothing was sent or written" if any(e["dryRun"] for e in entries) else None
    out.table(
        ["folder", "action", "serial", "expires", "renews", "detail"],
        rows,
        title=title,
        whole=("folder", "action", "serial"),
    )


def _note(entry: dict[str, Any]) -> str:
    """The detail column: what happened, the certificate replaced, the hook."""
    parts = [entry["detail"]]
    if entry["replacedSerial"]:
        revoked = " (revoked)" if entry["revoked"] else ""
        verb = "would replace" if entry["dryRun"] else "replaced"
        parts.append(f"{verb} {entry['replacedSerial']}{revoked}")
    hook = entry["hook"]
    if hook is not None:
        code = hook["exitCode"]
        parts.append("hook ok" if hook["ok"] else f"hook FAILED (exit {code})")
    return "; ".join(parts)
