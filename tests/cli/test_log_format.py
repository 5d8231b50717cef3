"""sectigo --log-format json: one JSON object a log line, with the operation, batch id
and record key when known, and no secret."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.helpers import CLI
from tests.support import rewrite_replies


def _log_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON log objects on stderr (other lines are the command's own notes)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_verbose_json_lines_carry_the_operation_and_batch_id(cli: CLI) -> None:
    password = "Echoed-Json-Pa55word"

    def reject(batch: dict[str, Any]) -> None:
        batch.update(status="REJECTED", active=False, rejectReason=f"pkcs12Password {password}")

    cli.hooks.append(lambda e: e.inject("GET", "/api/v1/batches/*", "error", status=503))
    cli.hooks.append(lambda e: rewrite_replies(e, "GET", r"/api/v1/batches/\d+", reject))
    result = cli.emu(
        "--verbose", "--log-format", "json", "create", "-a", "1", "-d", "example.com",
        "-p", password, "--wait",
    )  # fmt: skip
    assert result.exit_code == 5  # rejected
    lines = _log_lines(result.stderr)
    assert len(lines) >= 4
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert line["logger"].startswith("sectigo_iot")
    [retry] = [line for line in lines if "retrying in" in line["message"]]
    assert retry["level"] == "INFO"
    assert retry["operation"] == "batches.get"
    assert isinstance(retry["batch_id"], int)
    assert retry["message"].startswith(f"batches.get: GET /api/v1/batches/{retry['batch_id']} ")
    assert "attempt 1 of 3 failed (http_503)" in retry["message"]
    assert {line.get("operation") for line in lines} >= {"auth.login", "batches.create"}
    assert all("key" not in line for line in lines)  # no fleet record here
    assert password not in result.output


def test_without_verbose_only_warnings_are_printed_as_json(cli: CLI) -> None:
    result = cli.emu("--log-format", "json", "authorities")
    assert result.exit_code == 0
    assert _log_lines(result.stderr) == []


def test_an_unknown_log_format_is_a_usage_error(cli: CLI) -> None:
    result = cli.emu("--log-format", "xml", "authorities")
    assert result.exit_code == 2
    assert "--log-format" in result.stderr
