"""The fleet with real processes and real signals: worker processes (``tests/fleet/worker.py``)
on one store, against the emulator served in a process of its own on a loopback port, so
that its license count is the server's over every worker. Workers are killed (SIGKILL)
at moments of a time sweep and at every step boundary; stopped (SIGSTOP) past their
lease in a sink, between recording an attempt and sending its create, and inside a
PostgreSQL transaction; raced three at a time on SQLite and on PostgreSQL; PostgreSQL
is restarted under them, briefly and for longer than the store retries; a sink fails
for a while. What must hold: one license per record, every record VALID in the end,
every sink given each certificate (again only with the same delivery id), and a worker
that lost its lease writes and sends nothing more.

The emulator issues EC keys, the lease is 3 s (the client's timeout 2 s), ``settle`` 2 s:
the fleet's clock is real time here (the client's)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from sectigo_iot import SectigoClient
from sectigo_iot.fleet import Fleet, FleetRecord, RecordState, SQLiteStore, Store
from sectigo_iot.lifecycle import CertificateSpec
from tests.fleet.worker import PASSWORD, USERNAME

S = RecordState
REPO = Path(__file__).resolve().parents[2]
SECRET = "fleet-processes-secret-0123456789abcdef"
#: the emulator's balance: licenses spent are what it lost
BALANCE = 1_000_000
CREATE_ROUTE = "PUT /api/v1/batches/createSingleCertBatch"
#: how long a worker may take to finish what the tests give it
WORKER_TIMEOUT = 60.0
#: for the tests that must lose no lease: one far longer than a heartbeat's pause, even
#: on a loaded machine (the kill and stop tests keep the worker's 3 s)
LONG_LEASE = ("--lease", "15", "--timeout", "5")


def spec(index: int) -> CertificateSpec:
    return CertificateSpec(authority_id=1, common_name=f"member-{index:03d}.example.com")


def keys(count: int) -> list[str]:
    return [f"member-{index:03d}" for index in range(count)]


# -- the served emulator --------------------------------------------------------------------


@attrs.define
class Served:
    """The emulator in its own process: its URL, and what it counts for the tests."""

    url: str
    process: subprocess.Popen[str]

    def client(self) -> SectigoClient:
        return SectigoClient(
            USERNAME,
            PASSWORD,
            base_url=self.url,
            token_store="memory",
            allow_insecure_http=True,
            timeout=2.0,
        )

    def licenses(self) -> int:
        """Licenses the server has spent: taken from the authority's balance at each
        create, whatever became of the batch (``client.authorities.balance``)."""

        async def spent() -> int:
            async with self.client() as client:
                return BALANCE - await client.authorities.balance(1)

        return anyio.run(spent)

    def creates(self) -> int:
        """Creates the server has seen, whatever became of them (its request counter)."""
        stats = httpx.get(f"{self.url}/emulator/stats", timeout=5).json()
        return int(stats["requestsByRoute"].get(CREATE_ROUTE, 0))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """``python -m sectigo_iot.emulator`` on a free loopback port: EC keys, a balance no
    test uses up, batches ready 0.2 s after their create."""
    command = [
        sys.executable, "-m", "sectigo_iot.emulator", "--port", "0", "--balance", str(BALANCE),
        "--key-type", "ec-p256", "--processing-delay", "0.2",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        yield Served(url=line.split()[-1], process=process)
    finally:
        process.kill()
        process.wait()


# -- stores, seen from the test process ------------------------------------------------------


@attrs.define
class Where:
    """One store: how the workers are told of it, and how the test opens it."""

    args: list[str]
    open: Callable[[], Store]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Where:
    path = tmp_path / "fleet.sqlite3"
    return Where(["--store", str(path)], lambda: SQLiteStore(path, secret_key=SECRET))


def postgres_where(url: str, schema: str) -> Where:
    from sectigo_iot.fleet._postgres import PostgresStore

    return Where(
        ["--store", url, "--schema", schema],
        lambda: PostgresStore(url, secret_key=SECRET, schema=schema),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, sqlite_store: Where) -> Where:
    if request.param == "sqlite":
        return sqlite_store
    url: str = request.getfixturevalue("postgres_url")
    return postgres_where(url, request.getfixturevalue("postgres_schema"))


def seed(where: Where, served: Served, count: int, first: int = 0) -> list[str]:
    """Want ``count`` certificates (``member-<first>``...), as the application does."""
    wanted = keys(first + count)[first:]

    async def want() -> None:
        async with served.client() as client:
            fleet = Fleet(client, where.open(), lease=timedelta(seconds=3))
            async with fleet:
                for key in wanted:
                    await fleet.want(key, spec(int(key.split("-")[1])))

    anyio.run(want)
    return wanted


def records(where: Where, served: Served) -> dict[str, FleetRecord]:
    """Every record with its history, by key."""

    async def read() -> dict[str, FleetRecord]:
        async with served.client() as client:
            fleet = Fleet(client, where.open(), lease=timedelta(seconds=3))
            async with fleet:
                found = {}
                for record in await fleet.list():
                    full = await fleet.get(record.key)
                    assert full is not None
                    found[record.key] = full
                return found

    return anyio.run(read)


def describe(found: dict[str, FleetRecord]) -> str:
    """The records that are not VALID, with their history: what a failure shows."""
    lines = []
    for record in found.values():
        if record.state is S.VALID:
            continue
        lines.append(f"{record.key}: {record.state} ({record.last_error})")
        lines += [
            f"    {e.from_state} -> {e.to_state}: {e.description} [{e.worker}]"
            for e in record.history
        ]
    counts = Counter(record.state.value for record in found.values())
    return f"states {dict(counts)}\n" + "\n".join(lines)


# -- worker processes ------------------------------------------------------------------------


@attrs.define
class Worker:
    """A worker process; its stdout and stderr go to files (read once it is done)."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.err.read_text()

    def go(self) -> None:
        """Let a worker started with ``held=True`` begin."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while not self.out.read_text().strip():
            assert self.process.poll() is None, f"the worker died starting:\n{self.log()}"
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.01)

    def wait(self, timeout: float = WORKER_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"worker {self.pid} did not finish in {timeout} s:\n{self.log()[-3000:]}")

    def finished(self) -> dict[str, Any]:
        """Its last JSON line, once it exited 0 (all records VALID, or one pass done)."""
        code = self.wait()
        assert code == 0, f"worker {self.pid} exited {code}:\n{self.log()[-3000:]}"
        last: dict[str, Any] = self.lines()[-1]
        return last


@pytest.fixture
def workers(tmp_path: Path, served: Served) -> Iterator[Callable[..., Worker]]:
    """Start worker processes on ``served`` (sinks in ``tmp_path/sinks``), named ``w0``,
    ``w1``... in the order started; every one still running at the end is killed."""
    sinks = tmp_path / "sinks"
    sinks.mkdir()
    started: list[Worker] = []

    def start(where: Where, *args: str, held: bool = False) -> Worker:
        number = len(started)
        out, err = tmp_path / f"worker-{number}.out", tmp_path / f"worker-{number}.err"
        command = [
            sys.executable, "-m", "tests.fleet.worker", *where.args, "--emulator", served.url,
            "--sinks", str(sinks), "--worker-id", f"w{number}", *args,
        ]  # fmt: skip
        if held:  # it waits for go(): started ahead of its turn
            command.append("--wait-go")
        env = {**os.environ, "SECTIGO_FLEET_KEY": SECRET}
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if held else subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=REPO,
                env=env,
            )
        worker = Worker(process, out, err)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            os.kill(worker.pid, signal.SIGCONT)
            worker.process.kill()
            worker.process.wait()


def in_turn(starts: Sequence[Callable[[], Worker]]) -> Iterator[Worker]:
    """The workers ``starts`` make, one per turn (the caller lets each ``go()``), each
    started (held) one turn ahead: a process's start is not waited for."""
    following = starts[0]()
    for start in [*starts[1:], None]:
        worker, following = following, start() if start is not None else following
        yield worker


def sink_lines(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / "sinks" / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- what every run must end with ------------------------------------------------------------


def assert_all_issued_once(
    tmp_path: Path, where: Where, served: Served, wanted: list[str], licenses_before: int
) -> dict[str, FleetRecord]:
    """Every record VALID, one license each, and each sink given each certificate (more
    than once only with the same delivery id and serial)."""
    found = records(where, served)
    assert sorted(found) == sorted(wanted)
    assert all(record.state is S.VALID for record in found.values()), describe(found)
    assert served.licenses() - licenses_before == len(wanted)
    for name in ("a", "b"):
        given: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        for line in sink_lines(tmp_path, name):
            given[line["key"]].add((line["serial"], line["leaf_serial"], line["delivery_id"]))
        assert sorted(given) == sorted(wanted), f"sink {name} lacks some records"
        for key, deliveries in given.items():
            [(serial, leaf_serial, _)] = deliveries  # repeated calls: the same delivery
            assert serial == leaf_serial == found[key].serial_number
    ids = {line["key"]: line["delivery_id"] for line in sink_lines(tmp_path, "a")}
    assert ids == {line["key"]: line["delivery_id"] for line in sink_lines(tmp_path, "b")}
    return found


def attempts(record: FleetRecord) -> int:
    """How many attempts the record recorded (PENDING -> SUBMITTING)."""
    return sum(
        1 for e in record.history if e.to_state is S.SUBMITTING and e.from_state is S.PENDING
    )


# -- 1. issued once, delivered once ----------------------------------------------------------


def test_twenty_records_issued_once_delivered_once_each_and_a_second_pass_spends_nothing(
    tmp_path: Path, served: Served, sqlite_store: Where, workers: Callable[..., Worker]
) -> None:
    licenses, creates = served.licenses(), served.creates()
    wanted = seed(sqlite_store, served, 20)

    workers(sqlite_store, *LONG_LEASE).finished()

    found = assert_all_issued_once(tmp_path, sqlite_store, served, wanted, licenses)
    assert served.creates() - creates == 20
    for name in ("a", "b"):  # no crash, no lost lease: exactly once
        assert sorted(line["key"] for line in sink_lines(tmp_path, name)) == wanted
    for record in found.values():
        path = [(e.from_state, e.to_state) for e in record.history]
        assert path == [
            (None, S.PENDING),
            (S.PENDING, S.SUBMITTING),
            (S.SUBMITTING, S.PROCESSING),
            (S.PROCESSING, S.DOWNLOADING),
            (S.DOWNLOADING, S.DELIVERING),
            (S.DELIVERING, S.VALID),
        ], record.key

    again = workers(sqlite_store, "--once", *LONG_LEASE).finished()

    assert again["results"] == []  # nothing was due
    assert served.licenses() - licenses == 20
    assert served.creates() - creates == 20
    assert [len(sink_lines(tmp_path, name)) for name in ("a", "b")] == [20, 20]
    assert records(sqlite_store, served) == found


# -- 2. SIGKILL at any moment ----------------------------------------------------------------


def test_workers_killed_at_moments_of_a_time_sweep_then_a_new_worker_finishes_every_record(
    tmp_path: Path, served: Served, sqlite_store: Where, workers: Callable[..., Worker]
) -> None:
    licenses = served.licenses()
    # sink b fails for the first record until the sweep is over: no worker of the sweep
    # can be done (all VALID) before it is killed
    over = tmp_path / "sweep-over"
    wanted = seed(sqlite_store, served, 1)
    delays = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0)
    start = functools.partial(
        workers, sqlite_store, "--concurrency", "2", "--fail", f"{wanted[0]}={over}", held=True
    )
    turns = in_turn([start] * (len(delays) + 1))
    for delay, worker in zip(delays, turns, strict=False):
        # new records at each step, besides those the killed workers left in flight
        wanted += seed(sqlite_store, served, 4, first=len(wanted))
        worker.go()
        worker.wait_ready()
        time.sleep(delay)
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait() == -signal.SIGKILL, worker.log()

    over.touch()
    [last] = turns  # a worker left alone finishes the work
    last.go()
    last.finished()

    found = assert_all_issued_once(tmp_path, sqlite_store, served, wanted, licenses)
    assert all(attempts(record) == 1 for record in found.values()), describe(found)


#: every boundary between two steps, where a worker kills itself (the worker's --kill-at)
BOUNDARIES = (
    "after:PENDING>SUBMITTING",  # the attempt is recorded, its create not sent
    "before:SUBMITTING>PROCESSING",  # the create answered, the batch id not recorded
    "after:SUBMITTING>PROCESSING",
    "before:PROCESSING>DOWNLOADING",  # the batch is ready, that is not recorded
    "after:PROCESSING>DOWNLOADING",
    "before:DOWNLOADING>DELIVERING",  # downloaded, the bundle not recorded
    "after:DOWNLOADING>DELIVERING",  # no sink called yet
    "in-sink:a",  # sink a has it, that is not recorded
    "after-delivered:a",  # sink a recorded, sink b not called
    "in-sink:b",
    "before:DELIVERING>VALID",  # every sink has it, VALID not recorded
)


def test_workers_killed_at_every_step_boundary_then_a_new_worker_finishes_every_record(
    tmp_path: Path, served: Served, sqlite_store: Where, workers: Callable[..., Worker]
) -> None:
    licenses = served.licenses()
    wanted: list[str] = []
    starts = [
        functools.partial(
            workers, sqlite_store, "--concurrency", "2", "--kill-at", boundary, held=True
        )
        for boundary in BOUNDARIES
    ]
    turns = in_turn([*starts, functools.partial(workers, sqlite_store, held=True)])
    for boundary, worker in zip(BOUNDARIES, turns, strict=False):
        # new records for each, besides those the workers before it left in flight
        wanted += seed(sqlite_store, served, 2, first=len(wanted))
        worker.go()
        code = worker.wait()
        assert code == -signal.SIGKILL, f"{boundary} was never reached:\n{worker.log()}"

    [last] = turns  # a worker left alone finishes the work
    last.go()
    last.finished()

    found = assert_all_issued_once(tmp_path, sqlite_store, served, wanted, licenses)
    assert all(attempts(record) == 1 for record in found.values()), describe(found)
    # the ways back were taken: a batch found by name (its create's answer was lost with
    # the worker), a create sent by another worker than the one that recorded the
    # attempt (none was listed after settle), deliveries repeated (the same delivery id)
    moves = [
        {(e.from_state, e.to_state): (e.description, e.worker) for e in record.history}
        for record in found.values()
    ]
    created = [move[S.SUBMITTING, S.PROCESSING] for move in moves]
    assert any("found by name" in description for description, _ in created)
    assert any(
        "created" in move[S.SUBMITTING, S.PROCESSING][0]
        and move[S.SUBMITTING, S.PROCESSING][1] != move[S.PENDING, S.SUBMITTING][1]
        for move in moves
    )
    for name in ("a", "b"):
        assert max(Counter(line["key"] for line in sink_lines(tmp_path, name)).values()) > 1


# -- 3. three workers, one store -------------------------------------------------------------


def test_three_worker_processes_on_one_store_issue_200_certificates_once_each(
    tmp_path: Path, served: Served, any_store: Where, workers: Callable[..., Worker]
) -> None:
    licenses, creates = served.licenses(), served.creates()
    wanted = seed(any_store, served, 200)

    started = [
        workers(any_store, "--concurrency", "8", *LONG_LEASE),
        workers(any_store, "--concurrency", "8", *LONG_LEASE),
        workers(any_store, "--concurrency", "8", "--backend", "trio", *LONG_LEASE),
    ]
    for worker in started:
        worker.finished()

    found = assert_all_issued_once(tmp_path, any_store, served, wanted, licenses)
    assert served.creates() - creates == 200
    for name in ("a", "b"):
        assert len(sink_lines(tmp_path, name)) == 200  # no crash: each exactly once
    assert all(attempts(record) == 1 for record in found.values())
    working = {e.worker for record in found.values() for e in record.history[1:]}
    assert working == {"w0", "w1", "w2"}  # the three shared the work


# -- 4. SIGSTOP past the lease ---------------------------------------------------------------


def test_a_worker_stopped_past_its_lease_is_taken_over_and_its_writes_are_refused_on_resume(
    tmp_path: Path, served: Served, sqlite_store: Where, workers: Callable[..., Worker]
) -> None:
    licenses, creates = served.licenses(), served.creates()
    [key] = seed(sqlite_store, served, 1)
    sinks = tmp_path / "sinks"
    first = workers(sqlite_store, "--hold", key)
    deadline = time.monotonic() + 30
    while not (sinks / "held").exists():  # first is in the middle of its delivery
        assert first.process.poll() is None and time.monotonic() < deadline, first.log()
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGSTOP)  # no heartbeat: its lease runs out

    second = workers(sqlite_store)
    second.finished()
    taken = records(sqlite_store, served)[key]
    assert taken.state is S.VALID

    (sinks / "release").touch()
    os.kill(first.pid, signal.SIGCONT)
    first.finished()

    log = first.log()
    assert f"{key} was taken over by another worker; dropped here" in log, log
    found = assert_all_issued_once(tmp_path, sqlite_store, served, [key], licenses)
    assert served.creates() - creates == 1
    record = found[key]
    assert record == taken  # the first's late writes changed nothing
    assert record.history == taken.history
    assert [(e.to_state, e.worker) for e in record.history[-1:]] == [(S.VALID, "w1")]
    assert all(e.worker == "w0" for e in record.history[1:-1])
    # sink a: the second's delivery, then the first's late one (the same delivery);
    # sink b: only the second's, as the first stopped at its refused write
    assert [line["worker"] for line in sink_lines(tmp_path, "a")] == ["w1", "w0"]
    assert [line["worker"] for line in sink_lines(tmp_path, "b")] == ["w1"]


def test_a_worker_stopped_before_its_create_past_its_lease_does_not_send_it_on_resume(
    tmp_path: Path, served: Served, sqlite_store: Where, workers: Callable[..., Worker]
) -> None:
    """The create is the one write no fence guards: the first worker recorded its
    attempt, then stalled; the second took the record over and, once ``settle`` had
    passed and a full listing found no batch, sent the create itself. The first, resumed,
    must not send its own (a second license): it has to find out it lost the record."""
    licenses, creates = served.licenses(), served.creates()
    [key] = seed(sqlite_store, served, 1)
    first = workers(sqlite_store, "--stop-at", "after:PENDING>SUBMITTING")
    deadline = time.monotonic() + 30
    while not (tmp_path / "sinks" / "stopped").exists():  # the attempt is recorded
        assert first.process.poll() is None and time.monotonic() < deadline, first.log()
        time.sleep(0.02)

    workers(sqlite_store).finished()
    taken = records(sqlite_store, served)[key]
    assert taken.state is S.VALID
    assert served.creates() - creates == 1  # the second sent it: none was listed

    os.kill(first.pid, signal.SIGCONT)
    first.finished()

    log = first.log()
    found = records(sqlite_store, served)
    assert served.creates() - creates == 1, f"the first sent its create on resume:\n{log}"
    assert served.licenses() - licenses == 1
    assert f"{key} was taken over by another worker; dropped here" in log, log
    assert found[key] == taken and found[key].history == taken.history


def test_a_worker_stopped_inside_a_postgres_transaction_loses_its_record_at_the_lease_end(
    tmp_path: Path,
    served: Served,
    postgres_url: str,
    postgres_schema: str,
    workers: Callable[..., Worker],
) -> None:
    """Row locks are held only inside a short transaction: a worker stopped right there
    (its save's UPDATE done, not committed) must not keep its record from the others
    once its lease has run out; resumed, its write is refused.

    (On SQLite a process stopped inside a write transaction holds the database's one
    write lock: no other process writes until it goes on or dies. That is SQLite's.)"""
    where = postgres_where(postgres_url, postgres_schema)
    licenses = served.licenses()
    wanted = seed(where, served, 3)
    # the server ends a transaction idle for 2 s here (15 s by default)
    idle = ("--idle-transaction-timeout", "2s")
    first = workers(where, "--concurrency", "1", "--stop-in-save-transaction", *idle)
    deadline = time.monotonic() + 30
    while not (tmp_path / "sinks" / "stopped").exists():
        assert first.process.poll() is None and time.monotonic() < deadline, first.log()
        time.sleep(0.02)

    second = workers(where, *idle)
    # the lease (3 s) and the stalled transaction's end, with room for a loaded machine
    code = second.wait(timeout=20)
    assert code == 0, f"{second.log()[-3000:]}\n{describe(records(where, served))}"
    taken = records(where, served)

    os.kill(first.pid, signal.SIGCONT)
    first.finished()

    # its transaction was ended by the server: its save is refused, redone under the
    # fence (taken over) or failed with the connection (the pass fails, nothing written)
    log = first.log()
    assert "was taken over by another worker; dropped here" in log or (
        "fleet pass failed: StoreError" in log and "IdleInTransactionSessionTimeout" in log
    ), log
    found = assert_all_issued_once(tmp_path, where, served, wanted, licenses)
    assert found == taken
    assert all(attempts(record) == 1 for record in found.values()), describe(found)


# -- 5. PostgreSQL restarted -----------------------------------------------------------------


@pytest.mark.parametrize(
    "outage",
    [
        pytest.param("within the store's retries", id="short"),
        pytest.param("longer than the store's retries", id="long"),
    ],
)
def test_postgres_restarted_while_three_workers_run_every_record_ends_valid_no_extra_license(
    outage: str,
    tmp_path: Path,
    served: Served,
    postgres_server: Any,
    postgres_url: str,
    postgres_schema: str,
    workers: Callable[..., Worker],
) -> None:
    """Stopped (its connections cut) and started again under three workers: a short
    outage is bridged by the store's retries; during a longer one (the store's retry
    window made 1 s, its wait for a connection 0.5 s) store calls fail with StoreError,
    passes fail, and the next ones go on."""
    where = postgres_where(postgres_url, postgres_schema)
    short = outage.startswith("within")
    retries = () if short else ("--reconnect-for", "1", "--pool-wait", "0.5")
    licenses = served.licenses()
    wanted = seed(where, served, 60)
    started = [workers(where, "--concurrency", "4", *retries) for _ in range(3)]
    deadline = time.monotonic() + 30
    while len(sink_lines(tmp_path, "b")) < 10:  # some done, most in flight
        assert time.monotonic() < deadline, [w.log() for w in started]
        time.sleep(0.02)

    postgres_server.stop()
    time.sleep(1.0 if short else 3.0)
    postgres_server.start()

    for worker in started:
        worker.finished()
    found = assert_all_issued_once(tmp_path, where, served, wanted, licenses)
    assert all(attempts(record) == 1 for record in found.values()), describe(found)
    logs = "".join(worker.log() for worker in started)
    assert "trying again" in logs  # it did go away
    assert short or "fleet pass failed: StoreError" in logs


# -- 6. a sink that fails for a while --------------------------------------------------------


def test_a_sink_failing_for_a_while_causes_no_reissue_holds_up_no_other_record(
    tmp_path: Path, served: Served, sqlite_store: Where, workers: Callable[..., Worker]
) -> None:
    licenses, creates = served.licenses(), served.creates()
    wanted = seed(sqlite_store, served, 5)
    failing = wanted[0]
    recovered = tmp_path / "sink-b-recovered"
    worker = workers(sqlite_store, "--fail", f"{failing}={recovered}", *LONG_LEASE)

    deadline = time.monotonic() + 30
    while True:  # the others are done while sink b still fails for the first
        assert worker.process.poll() is None and time.monotonic() < deadline, worker.log()
        found = records(sqlite_store, served)
        others = [found[key].state for key in wanted[1:]]
        if others == [S.VALID] * 4 and len(sink_lines(tmp_path, "b-failed")) >= 3:
            break
        time.sleep(0.1)
    record = found[failing]
    assert record.state is S.DELIVERING, describe(found)
    assert record.failures >= 3 and "sink b" in (record.last_error or "")

    recovered.touch()
    worker.finished()

    found = assert_all_issued_once(tmp_path, sqlite_store, served, wanted, licenses)
    assert served.creates() - creates == 5
    assert attempts(found[failing]) == 1
    for name in ("a", "b"):  # sink a is not called again; sink b once it works
        assert sorted(line["key"] for line in sink_lines(tmp_path, name)) == wanted
    failed = sink_lines(tmp_path, "b-failed")
    assert {line["key"] for line in failed} == {failing}
    assert {line["delivery_id"] for line in failed} == {
        line["delivery_id"] for line in sink_lines(tmp_path, "b") if line["key"] == failing
    }
