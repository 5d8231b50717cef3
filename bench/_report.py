"""What the benchmark measures and how it reports: metrics, targets, scales, the report."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FULL", "KEYS", "QUICK", "TARGETS", "TINY", "Report", "Scale", "log", "ratio"]

#: every metric, in report order
KEYS = (
    "call_overhead_ratio",
    "otel_noop_call_ratio",
    "otel_sdk_call_ratio",
    "concurrent_ratio",
    "concurrent_refreshes",
    "download_ratio",
    "download_peak_rss_mb",
    "bomb_peak_rss_mb",
    "hostile_input_worst_s",
    "lifecycle_keep_ratio",
    "find_ratio",
    "import_ratio",
    "cli_start_s",
    "cli_start_ratio",
    "cli_subcommand_ratio",
    "emulator_rps",
    "emulator_scale_ratio",
    "issue_100_s",
    "fleet_pass_ratio",
    "fleet_pass_rss_mb",
    "fleet_issue_rate_1",
    "fleet_issue_rate_4",
    "fleet_issue_speedup",
    "fleet_overhead_ratio",
    "inventory_1000_folders_seconds",
    "year_expired",
    "year_max_hour_share",
    "year_extra_licenses",
    "year_certificates",
    "year_days",
)

#: metric -> (comparison, bound); metrics without a target are reported for information
TARGETS: dict[str, tuple[str, float]] = {
    "call_overhead_ratio": ("<=", 1.10),
    "otel_noop_call_ratio": ("<=", 1.05),
    "concurrent_ratio": ("<=", 1.15),
    "concurrent_refreshes": ("==", 1),
    "download_ratio": ("<=", 1.10),
    "download_peak_rss_mb": ("<", 32),
    "bomb_peak_rss_mb": ("<", 32),
    "hostile_input_worst_s": ("<", 1.0),
    "lifecycle_keep_ratio": ("<=", 3.0),
    "find_ratio": ("<=", 1.5),
    "import_ratio": ("<=", 1.30),
    "cli_start_ratio": ("<=", 1.5),
    "cli_subcommand_ratio": ("<=", 1.5),
    "emulator_scale_ratio": ("<=", 1.5),
    "fleet_pass_ratio": ("<=", 1.5),
    "fleet_pass_rss_mb": ("<", 32),
    "fleet_issue_speedup": (">", 1.0),  # fleet_issue_rate_4 / fleet_issue_rate_1
    "fleet_overhead_ratio": ("<=", 1.5),
    "inventory_1000_folders_seconds": ("<", 1.0),
    "year_expired": ("==", 0),
    "year_max_hour_share": ("<=", 0.02),
    "year_extra_licenses": ("==", 0),
}

_UNITS = {
    "cli_start_s": " s",
    "issue_100_s": " s",
    "download_peak_rss_mb": " MB",
    "bomb_peak_rss_mb": " MB",
    "hostile_input_worst_s": " s",
    "emulator_rps": " req/s",
    "fleet_pass_rss_mb": " MB",
    "fleet_issue_rate_1": " cert/s",
    "fleet_issue_rate_4": " cert/s",
    "inventory_1000_folders_seconds": " s",
    "year_days": " days",
}


@dataclass(frozen=True)
class Scale:
    """How much work each measurement does."""

    rounds: int = 7  # interleaved SDK/raw rounds of sequential calls (median round reported)
    calls: int = 300  # sequential calls per side per round
    concurrent: int = 500  # concurrent calls in one burst
    burst_rounds: int = 9  # interleaved SDK/raw burst pairs (median pair reported)
    download_mb: int = 64  # size of the served archive, MiB
    download_rounds: int = 15  # interleaved SDK/raw download pairs (median pair reported)
    import_runs: int = 20  # fresh-process runs of each start-up command
    rps_clients: int = 50  # concurrent raw clients for emulator_rps, in total
    rps_processes: int = 2  # load-generator processes sharing those clients
    rps_seconds: float = 5.0  # measuring window for emulator_rps
    certificates: int = 100  # certificates issued for issue_100_s (scaled to 100)
    issue_concurrency: int = 8  # batches created and awaited at once
    details: bool = True  # extra context for the notes (startup breakdown, raw download RSS)
    fleet_pass_records: int = 10_000  # records in the large store of fleet_pass_ratio
    fleet_rss_records: int = 100_000  # records in the large store of fleet_pass_rss_mb
    fleet_certificates: int = 100  # certificates each fleet_issue_* / overhead run issues
    inventory_folders: int = 1000  # certificate folders listed (scaled to 1,000)
    year_records: int = 1000  # certificates a fleet keeps through the simulated year
    year_days: int = 365  # days the simulated year lasts


#: the defaults: the full run
FULL = Scale()
QUICK = Scale(
    rounds=3,
    calls=100,
    burst_rounds=5,
    download_mb=50,
    download_rounds=7,
    import_runs=5,
    rps_seconds=1.5,
    fleet_certificates=40,
    year_records=300,
    year_days=180,
)
#: one tiny round of everything, for the test suite
TINY = Scale(
    rounds=1,
    calls=5,
    concurrent=20,
    burst_rounds=1,
    download_mb=1,
    download_rounds=1,
    import_runs=2,
    rps_clients=4,
    rps_processes=1,
    rps_seconds=0.3,
    certificates=3,
    issue_concurrency=3,
    details=False,
    fleet_rss_records=10_000,
    fleet_certificates=3,
    inventory_folders=20,
    year_records=10,
    year_days=70,
)


def log(message: str) -> None:
    """Progress on stderr (stdout is the report)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ratio(sdk: float, raw: float) -> float:
    """SDK time / baseline time (inf when the baseline took no time)."""
    return sdk / raw if raw > 0 else float("inf")


@dataclass
class Report:
    """The values measured, the errors of measurements that failed, notes for people."""

    quick: bool
    scale: Scale
    values: dict[str, float | int | None] = field(default_factory=lambda: dict.fromkeys(KEYS))
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def passed(self, key: str) -> bool | None:
        """Whether the value meets its target (None: no target, or no value)."""
        value = self.values.get(key)
        if key not in TARGETS or value is None:
            return None
        op, bound = TARGETS[key]
        return {
            "<=": value <= bound,
            "<": value < bound,
            "==": value == bound,
            ">": value > bound,
        }[op]

    def as_json(self) -> dict[str, Any]:
        """The metrics, plus ``targets`` and ``quick``."""
        data: dict[str, Any] = {key: _rounded(self.values[key]) for key in KEYS}
        data["targets"] = {key: {"op": op, "value": bound} for key, (op, bound) in TARGETS.items()}
        data["quick"] = self.quick
        return data

    def table(self) -> str:
        """metric | value | target | result, one line per metric, then notes and errors."""
        rows = [("metric", "value", "target", "result")]
        for key in KEYS:
            value = self.values[key]
            shown = "error" if key in self.errors else "n/a" if value is None else _fmt(value)
            shown += _UNITS.get(key, "") if value is not None else ""
            target = " ".join(map(str, TARGETS[key])) if key in TARGETS else "-"
            verdict = self.passed(key)
            if key not in TARGETS:
                result = "info"
            else:
                result = "n/a" if verdict is None else "pass" if verdict else "FAIL"
            rows.append((key, shown, target, result))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        lines += [f"note: {key}: {note}" for key, note in self.notes.items()]
        lines += [f"error: {key}: {error}" for key, error in self.errors.items()]
        return "\n".join(lines)


def _rounded(value: float | int | None) -> float | int | None:
    return round(value, 4) if isinstance(value, float) else value


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.0f}" if value >= 100 else f"{value:.3f}"
