"""bench/run.py works: one tiny round of every measurement, and its report's shape.

No timing is asserted: the numbers of a tiny round on a busy CI box mean nothing, only
that every measurement runs and yields a value of the right kind.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from sectigo_iot.fleet import RecordState, SQLiteStore
from tests.support import load_module

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_module("sectigo_bench_run", BENCH)


@pytest.fixture(scope="module")
def report(bench: ModuleType) -> Any:
    """One tiny run: 5 sequential calls, 20 concurrent, 1 MiB, 2 import runs, 3 certs."""
    return bench.run(quick=True, scale=bench.TINY)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_measurement_ran(report: Any) -> None:
    assert report.errors == {}


def test_ratios_are_positive(report: Any) -> None:
    for key in ("call_overhead_ratio", "concurrent_ratio", "download_ratio", "import_ratio"):
        assert _positive(report.values[key]), (key, report.values[key])


def test_find_ratio_is_measured_on_10000_certificates(report: Any) -> None:
    assert _positive(report.values["find_ratio"])
    assert report.notes["find_ratio"].startswith("10,000 certificates: SDK ")


def test_one_refresh_per_burst(report: Any) -> None:
    assert report.values["concurrent_refreshes"] == 1


def test_download_memory_is_measured(report: Any) -> None:
    value = report.values["download_peak_rss_mb"]
    assert isinstance(value, float)
    assert 0 <= value < 1024


def test_bombs_are_refused_and_measured(report: Any) -> None:
    # measure_bomb_rss raises (an error in the report) unless both bombs were refused
    value = report.values["bomb_peak_rss_mb"]
    assert isinstance(value, float)
    assert 0 <= value < 1024


def test_lifecycle_keep_is_measured(report: Any) -> None:
    # the measurement raises (an error in the report) unless the folder was kept each time
    assert _positive(report.values["lifecycle_keep_ratio"])


def test_cli_start_is_measured(report: Any) -> None:
    # the CLI is part of the [dev] install this test suite runs in
    assert _positive(report.values["cli_start_s"])
    assert _positive(report.values["cli_start_ratio"])
    assert _positive(report.values["cli_subcommand_ratio"])


def _importable(folder: Path, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` a ``python -S`` with only ``folder`` on its path can import."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    probe = f"import importlib.util as u; print(*[n for n in {names!r} if u.find_spec(n)])"
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={**env, "PYTHONPATH": str(folder)},
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.parametrize(
    ("extras", "present", "absent"),
    [
        ((), ["sectigo_iot", "httpx", "keyring"], ["typer", "rich", "click", "pytest"]),
        (("cli",), ["sectigo_iot", "httpx", "typer", "rich"], ["pytest", "uvicorn"]),
    ],
)
def test_startup_baselines_see_only_an_install(
    bench: ModuleType,
    tmp_path: Path,
    extras: tuple[str, ...],
    present: list[str],
    absent: list[str],
) -> None:
    # the dev environment has click, rich, pytest...: the start-up baselines must not
    startup = sys.modules[bench.measure_startup.__module__]
    startup.install_tree(tmp_path / "tree", startup.requirements_closure("sectigo-iot", extras))
    assert _importable(tmp_path / "tree", (*present, *absent)) == present


def test_emulator_figures(report: Any) -> None:
    assert _positive(report.values["emulator_rps"])
    assert _positive(report.values["emulator_scale_ratio"])
    assert "seeding 10 + 10000 batches" in report.notes["emulator_scale_ratio"]
    assert _positive(report.values["issue_100_s"])
    assert "scaled from 3 certificates" in report.notes["issue_100_s"]


def test_fleet_figures(report: Any) -> None:
    # the measurements raise (an error in the report) unless every record ended VALID,
    # delivered once for one create each, and no idle pass touched a record
    for key in ("fleet_pass_ratio", "fleet_issue_rate_1", "fleet_issue_rate_4"):
        assert _positive(report.values[key]), (key, report.values[key])
    assert _positive(report.values["fleet_issue_speedup"])
    assert _positive(report.values["fleet_overhead_ratio"])
    assert 0 <= report.values["fleet_pass_rss_mb"] < 1024
    assert "over 10,000 records" in report.notes["fleet_pass_ratio"]
    assert "over 10,000 records" in report.notes["fleet_pass_rss_mb"]
    assert report.notes["fleet_overhead_ratio"].startswith("3 certificates")


def test_inventory_lists_folders_of_their_own_certificates(report: Any) -> None:
    # the measurement raises (an error in the report) unless every folder listed one
    # valid certificate and the one it superseded
    assert _positive(report.values["inventory_1000_folders_seconds"])
    assert report.notes["inventory_1000_folders_seconds"].startswith(
        "20 folders of two certificates each"
    )
    assert report.notes["inventory_1000_folders_seconds"].endswith("(scaled to 1,000)")


def test_year_figures(report: Any) -> None:
    # 10 certificates of 90 days over 70 days: each issued, then renewed once
    values = report.values
    assert (values["year_expired"], values["year_extra_licenses"]) == (0, 0)
    assert 20 <= values["year_certificates"] <= 25 and values["year_days"] == 70
    assert 0 < values["year_max_hour_share"] <= 1
    assert report.notes["year_certificates"].startswith("10 records of 90 days over 70 days")


def test_inventory_folders_hold_distinct_certificates(bench: ModuleType, tmp_path: Path) -> None:
    # copies of one issued folder, each with certificates of its own: no parse is cached
    from sectigo_iot.lifecycle import load_certificate, read_journal

    measure = sys.modules[bench.measure_inventory.__module__]
    folders = anyio.run(measure._folders, tmp_path, 4)
    serials = set()
    for folder in folders:
        journal = read_journal(folder)
        assert journal is not None and journal.current is not None
        bundle = load_certificate(folder)
        assert journal.current.serial == bundle.serial_number
        serials.update({bundle.serial_number, journal.previous_version})
    assert len(serials) == 8


def test_seeded_fleet_store_holds_valid_records_none_due(bench: ModuleType, tmp_path: Path) -> None:
    # the bench seeds around the Store API (one record through it, copied with SQL):
    # the copies must be records the store reads back, VALID and not due
    fleet = sys.modules[bench.measure_fleet_pass.__module__]
    fleet.seed_store(tmp_path / "seeded.sqlite3", 50)

    async def read() -> tuple[Any, Any, Any]:
        store = SQLiteStore(tmp_path / "seeded.sqlite3", secret_key=fleet.SECRET)
        await store.open()
        try:
            now = datetime.now(timezone.utc)
            due = await store.claim("bench-test", now, 50, timedelta(minutes=2))
            return await store.count(), await store.list(), due
        finally:
            await store.close()

    counts, rows, due = anyio.run(read)
    assert counts == {RecordState.VALID: 50}
    assert sorted(row.key for row in rows) == sorted(f"member-{i}" for i in range(50))
    assert due == []


def test_greater_than_targets(bench: ModuleType) -> None:
    report = bench.Report(quick=True, scale=bench.TINY)
    report.values.update(fleet_issue_speedup=1.0)
    assert report.passed("fleet_issue_speedup") is False
    report.values.update(fleet_issue_speedup=1.2)
    assert report.passed("fleet_issue_speedup") is True


def test_json_object_has_exactly_the_metrics(bench: ModuleType, report: Any) -> None:
    data = json.loads(json.dumps(report.as_json()))
    assert set(data) == {*bench.KEYS, "targets", "quick"}
    assert data["quick"] is True
    assert set(data["targets"]) <= set(bench.KEYS)
    assert data["targets"]["concurrent_refreshes"] == {"op": "==", "value": 1}


def test_table_lists_every_metric(bench: ModuleType, report: Any) -> None:
    table = report.table()
    for key in bench.KEYS:
        assert key in table
    assert "target" in table.splitlines()[0]


def test_main_prints_one_json_object(
    bench: ModuleType, report: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(bench, "run", lambda quick: report)
    assert bench.main(["--quick", "--json"]) == 0
    out = capsys.readouterr().out
    assert set(json.loads(out)) == {*bench.KEYS, "targets", "quick"}


def test_main_exits_non_zero_when_a_measurement_fails(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    failed = bench.Report(quick=True, scale=bench.TINY)
    failed.errors["emulator_rps"] = "RuntimeError: boom"
    monkeypatch.setattr(bench, "run", lambda quick: failed)
    assert bench.main(["--quick"]) == 1
    assert "error: emulator_rps" in capsys.readouterr().out


def test_missed_targets_are_reported_not_failed(bench: ModuleType) -> None:
    missed = bench.Report(quick=False, scale=bench.FULL)
    missed.values.update(call_overhead_ratio=2.0, concurrent_refreshes=2)
    assert missed.passed("call_overhead_ratio") is False
    assert missed.passed("concurrent_refreshes") is False
    assert missed.passed("emulator_rps") is None
    assert "FAIL" in missed.table()
