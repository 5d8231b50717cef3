"""Benchmark of the sectigo-iot SDK against raw httpx doing the same HTTP work.

    python bench/run.py            # full run (a few minutes)
    python bench/run.py --quick    # under a minute
    python bench/run.py --json     # one JSON object on stdout (progress on stderr)

The emulator runs under uvicorn on loopback in a separate process (``bench/_server.py``),
so its CPU does not share this process's GIL. Every ratio is SDK time / raw httpx time
for the same requests in the same run, measured in interleaved rounds; the median
round is reported. A ratio of 1.05 means the SDK took 5 % longer end to end. Start-up
ratios compare against ``import httpx`` in a plain or ``[cli]`` install
(``bench/_measure_startup.py`` says how).

The exit status is 0 when every measurement ran, whether or not it met its target; it
is 1 when a measurement itself failed. Importable: ``run(scale=TINY)`` runs one tiny
round of everything (the test suite does that).

Modules: ``_report`` (metrics, targets, scales, the report), ``_processes`` (child
processes), ``_measure_http``, ``_measure_probes`` and ``_measure_startup``
(the measurements).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (the tests)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure_emulator_scale import measure_emulator_scale
from _measure_find import measure_find
from _measure_fleet import measure_fleet_issue, measure_fleet_pass, measure_fleet_rss
from _measure_http import (
    measure_call_overhead,
    measure_concurrent,
    measure_download,
    measure_issue,
)
from _measure_inventory import measure_inventory
from _measure_lifecycle import measure_lifecycle_keep
from _measure_otel import measure_otel
from _measure_probes import (
    measure_bomb_rss,
    measure_download_rss,
    measure_emulator_rps,
    measure_hostile_inputs,
)
from _measure_startup import measure_startup
from _measure_year import KEYS as YEAR_KEYS
from _measure_year import measure_year
from _processes import MEASUREMENT_TIMEOUT, ServerInfo, bench_server
from _report import FULL, KEYS, QUICK, TARGETS, TINY, Report, Scale, log

__all__ = [
    "FULL",
    "KEYS",
    "QUICK",
    "TARGETS",
    "TINY",
    "Report",
    "Scale",
    "ServerInfo",
    "bench_server",
    "main",
    "measure_bomb_rss",
    "measure_call_overhead",
    "measure_concurrent",
    "measure_download",
    "measure_download_rss",
    "measure_emulator_rps",
    "measure_emulator_scale",
    "measure_find",
    "measure_fleet_issue",
    "measure_fleet_pass",
    "measure_fleet_rss",
    "measure_hostile_inputs",
    "measure_inventory",
    "measure_issue",
    "measure_lifecycle_keep",
    "measure_otel",
    "measure_startup",
    "measure_year",
    "run",
]

MIB = 1024 * 1024
T = TypeVar("T")


def _measure(
    report: Report, keys: tuple[str, ...], action: Callable[[], Any], *, label: str
) -> None:
    """Run one measurement and store its value(s); record the error if it fails."""
    log(f"{label}...")
    started = time.perf_counter()
    try:
        result = action()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        for key in keys:
            report.errors[key] = f"{type(exc).__name__}: {exc}"
        return
    if isinstance(result, dict):
        report.values.update(result)
    elif isinstance(result, tuple):
        report.values.update(zip(keys, result, strict=True))
    else:
        report.values[keys[0]] = result
    log(f"{label}: done in {time.perf_counter() - started:.1f} s")


def _async(function: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], T]:
    async def bounded() -> T:
        with anyio.fail_after(MEASUREMENT_TIMEOUT):
            return await function(*args)

    return lambda: anyio.run(bounded)


def _served(report: Report, info: ServerInfo, scale: Scale, workdir: Path) -> None:
    """The measurements that need the emulator server."""
    _measure(
        report,
        ("call_overhead_ratio",),
        _async(measure_call_overhead, info, scale),
        label="sequential call overhead",
    )
    _measure(
        report,
        ("otel_noop_call_ratio", "otel_sdk_call_ratio"),
        _async(measure_otel, info, scale, report.notes),
        label="OpenTelemetry call overhead",
    )
    _measure(
        report,
        ("concurrent_ratio", "concurrent_refreshes"),
        _async(measure_concurrent, info, scale),
        label=f"{scale.concurrent} concurrent calls with a refresh",
    )
    _measure(
        report,
        ("download_ratio",),
        _async(measure_download, info, scale, workdir, report.notes),
        label=f"{scale.download_mb} MiB download",
    )
    _measure(
        report,
        ("download_peak_rss_mb",),
        lambda: measure_download_rss(info, workdir),
        label="download peak memory",
    )
    if scale.details and report.values["download_peak_rss_mb"] is not None:
        try:
            raw_mb = measure_download_rss(info, workdir, raw=True)
        except Exception as exc:  # context only: never fails the run
            log(f"raw httpx download memory: {type(exc).__name__}: {exc}")
        else:
            report.notes["download_peak_rss_mb"] = (
                f"raw httpx streaming the same archive: {raw_mb:.2f} MB "
                f"({scale.download_mb} MiB archive)"
            )
    _measure(
        report,
        ("emulator_rps",),
        lambda: measure_emulator_rps(info, scale, report.notes),
        label="emulator requests per second",
    )
    _measure(
        report,
        ("issue_100_s",),
        _async(measure_issue, info, scale),
        label=f"issuing {scale.certificates} certificates",
    )
    if scale.certificates != 100:
        report.notes["issue_100_s"] = f"scaled from {scale.certificates} certificates"


#: the measurements that need no shared server, each ``measure(scale, notes)``: key, the
#: measurement, what it measures
_SERVERLESS: tuple[tuple[str, Callable[[Scale, dict[str, str]], float], str], ...] = (
    (
        "lifecycle_keep_ratio",
        measure_lifecycle_keep,
        "checking a certificate folder that is not due",
    ),
    ("find_ratio", measure_find, "certificates.find with 10,000 matches"),
    (
        "emulator_scale_ratio",
        measure_emulator_scale,
        "emulator list + download, 10,000 batches against 10",
    ),
    ("fleet_pass_ratio", measure_fleet_pass, "idle fleet pass, 10,000 records against 100"),
    ("fleet_pass_rss_mb", measure_fleet_rss, "idle fleet pass memory, large store against 1,000"),
    ("inventory_1000_folders_seconds", measure_inventory, "listing 1,000 certificate folders"),
)


def run(quick: bool = True, scale: Scale | None = None) -> Report:
    """Run every measurement and return the report (errors are recorded, not raised)."""
    scale = scale or (QUICK if quick else FULL)
    report = Report(quick=quick, scale=scale)
    keys = ("import_ratio", "cli_start_s", "cli_start_ratio", "cli_subcommand_ratio")
    _measure(report, keys, lambda: measure_startup(scale, report.notes), label="start-up times")
    if report.values["cli_start_s"] is None and "cli_start_s" not in report.errors:
        report.notes["cli_start_s"] = "no sectigo CLI in this environment"
    _measure(report, ("bomb_peak_rss_mb",), measure_bomb_rss, label="decompression bombs")
    _measure(
        report,
        ("hostile_input_worst_s",),
        lambda: measure_hostile_inputs(report.notes),
        label="hostile inputs",
    )
    for key, measure, label in _SERVERLESS:
        _measure(report, (key,), functools.partial(measure, scale, report.notes), label=label)
    _measure(
        report,
        ("fleet_issue_rate_1", "fleet_issue_rate_4", "fleet_issue_speedup", "fleet_overhead_ratio"),
        functools.partial(measure_fleet_issue, scale, report.notes),
        label=f"fleet issuing {scale.fleet_certificates} certificates",
    )
    _measure(
        report,
        YEAR_KEYS,
        functools.partial(measure_year, scale, report.notes),
        label=f"a simulated year: {scale.year_records} certificates over {scale.year_days} days",
    )
    workdir = Path(tempfile.mkdtemp(prefix="sectigo-bench-"))
    try:
        log("starting the emulator server")
        with bench_server(scale.download_mb * MIB) as info:
            log(f"emulator at {info.url} (pid {info.pid})")
            _served(report, info, scale, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print the table (or JSON); 1 when a measurement failed."""
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description="Benchmark sectigo-iot against raw httpx."
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        report = run(quick=args.quick)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    log(f"finished in {time.perf_counter() - started:.1f} s")
    print(json.dumps(report.as_json()) if args.json else report.table())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
