"""The fleet in one process, end to end through the emulator: issue once per record,
deliver to every sink, keep, renew, reissue on a new spec, reconcile an attempt whose
create may have been sent, and the commands (retry, cancel, revoke)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from sectigo_iot import SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.errors import InvalidInputError
from sectigo_iot.fleet import Delivery, Fleet, RecordState, SQLiteStore, StoreError, open_store
from sectigo_iot.fleet._store import Change, Row, Secrets
from sectigo_iot.lifecycle import CertificateSpec
from sectigo_iot.lifecycle._steps import new_attempt
from tests.support import rewrite_replies

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256", balance=1000)

DAY = 24 * 3600
S = RecordState


def spec(name: str, *others: str) -> CertificateSpec:
    return CertificateSpec(authority_id=1, common_name=name, dns_names=others)


class Sink:
    """A sink that records every delivery, and fails while ``failing`` is positive."""

    def __init__(self, name: str, failing: int = 0) -> None:
        self.name = name
        self.failing = failing
        self.deliveries: list[Delivery] = []

    async def deliver(self, delivery: Delivery) -> None:
        if self.failing > 0:
            self.failing -= 1
            raise OSError(f"{self.name} is down")
        self.deliveries.append(delivery)


def fleet_of(client: SectigoClient, path: Path, *sinks: Sink, **options: object) -> Fleet:
    return Fleet(client, SQLiteStore(path / "fleet.sqlite3"), sinks=sinks, **options)  # type: ignore[arg-type]


async def creates(emulator: Emulator) -> int:
    """The batches the emulator was asked to make (each a license when it ends ready)."""
    async with emulator.client() as client:
        return len(await client.batches.list())


async def test_twenty_records_are_issued_once_and_delivered_once_to_each_sink(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder, hook = Sink("folder"), Sink("hook")
    async with fleet_of(sectigo_client, tmp_path, folder, hook) as fleet:
        for number in range(20):
            await fleet.want(f"vasp-{number}", spec(f"vasp{number}.example.com"))
        results = await fleet.run_once()
        assert len(results) == 20 and {r.to_state for r in results} == {S.VALID}
        assert sectigo_emulator.licenses_used == 20
        for sink in (folder, hook):
            assert sorted(d.key for d in sink.deliveries) == sorted(f"vasp-{n}" for n in range(20))
            assert all(d.bundle.private_key is not None for d in sink.deliveries)
        # the same delivery id for the same certificate at every sink
        assert {d.delivery_id for d in folder.deliveries} == {
            d.delivery_id for d in hook.deliveries
        }
        records = await fleet.list(state=S.VALID)
        assert len(records) == 20
        served = {d.key: d.serial_number for d in folder.deliveries}
        assert all(served[r.key] == r.serial_number for r in records)

        assert await fleet.run_once() == []  # nothing due: nothing sent
        assert sectigo_emulator.licenses_used == 20 and await creates(sectigo_emulator) == 20
        assert len(folder.deliveries) == len(hook.deliveries) == 20


async def test_want_is_idempotent_and_a_new_spec_reissues_keeping_the_old_until_then(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    sink = Sink("sink")
    async with fleet_of(sectigo_client, tmp_path, sink) as fleet:
        first = await fleet.want("m", spec("m.example.com"))
        assert first.state is S.PENDING
        await fleet.run_once()
        valid = await fleet.get("m")
        assert valid is not None and valid.state is S.VALID
        again = await fleet.want("m", spec("m.example.com"))
        assert again.state is S.VALID and await fleet.run_once() == []
        assert sectigo_emulator.licenses_used == 1

        changed = await fleet.want("m", spec("m.example.com", "www.m.example.com"))
        assert changed.state is S.PENDING
        assert changed.serial_number == valid.serial_number  # still the one in use
        await fleet.run_once()
        renewed = await fleet.get("m")
        assert renewed is not None and renewed.state is S.VALID
        assert renewed.serial_number != valid.serial_number
        assert set(sink.deliveries[-1].bundle.sans) == {"m.example.com", "www.m.example.com"}
        assert sectigo_emulator.licenses_used == 2
        states = [(h.from_state, h.to_state) for h in renewed.history]
        assert states[0] == (None, S.PENDING) and states[-1] == (S.DELIVERING, S.VALID)


async def test_a_valid_certificate_is_renewed_at_its_renewal_time_not_before(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path, renew_before=timedelta(days=30)) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        record = await fleet.get("m")
        assert record is not None and record.not_after is not None
        assert record.renewal_at is not None
        # the next action: the renewal, or the 30-day milestone when that comes first
        milestone = record.not_after - timedelta(days=30)
        assert record.next_action_at == min(record.renewal_at, milestone)
        # renew_before, spread an hour either way
        assert abs(record.renewal_at - (record.not_after - timedelta(days=30))) <= timedelta(
            hours=1
        )
        sectigo_emulator.clock.advance(300 * DAY)  # 65 days left
        assert await fleet.run_once() == []
        sectigo_emulator.clock.advance(40 * DAY)  # 25 days left: due
        [result] = await fleet.run_once()
        assert (result.from_state, result.to_state) == (S.VALID, S.VALID)
        renewed = await fleet.get("m")
        assert renewed is not None and renewed.serial_number != record.serial_number
        assert sectigo_emulator.licenses_used == 2


async def test_the_default_policy_renews_at_two_thirds_spread_over_a_fleet(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path) as fleet:
        for number in range(8):
            await fleet.want(f"m{number}", spec(f"m{number}.example.com"))
        await fleet.run_once()
        records = await fleet.list()
    times = set()
    for record in records:
        assert record.not_before is not None and record.not_after is not None
        assert record.renewal_at is not None
        lifetime = record.not_after - record.not_before
        assert abs(record.renewal_at - (record.not_before + lifetime * 2 / 3)) <= lifetime * 0.05
        assert record.renewal_at == fleet.policy.renewal_time(
            record.not_before, record.not_after, record.key
        )
        times.add(record.renewal_at)
    assert len(times) == 8  # spread: one instant for each


async def test_an_attempt_recorded_but_not_listed_is_never_sent_again_before_settle(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    """A worker killed between recording its attempt and sending the create: the next
    one does not know whether the create went out. It waits for ``settle`` and a
    listing back past the attempt, then sends it once."""
    async with fleet_of(sectigo_client, tmp_path, settle=timedelta(minutes=10)) as fleet:
        await fleet.want("m", spec("m.example.com"))
        now = fleet.now()

        def recorded(row: Row | None) -> Change:
            assert row is not None
            attempt = new_attempt(row.spec, now)
            secrets = Secrets(pkcs12_password=attempt.pkcs12_password)
            return Change(row=row.replace(state=S.SUBMITTING, attempt=attempt, secrets=secrets))

        await fleet.store.change("m", recorded)
        [waiting] = await fleet.run_once()
        assert waiting.to_state is S.SUBMITTING and "not listed" in waiting.description
        sectigo_emulator.clock.advance(9 * 60)
        assert await fleet.run_once() == []  # due again only once settled
        assert await creates(sectigo_emulator) == 0
        sectigo_emulator.clock.advance(2 * 60)
        [done] = await fleet.run_once()
        assert done.to_state is S.VALID
        assert sectigo_emulator.licenses_used == 1 and await creates(sectigo_emulator) == 1


async def test_a_create_whose_reply_is_lost_is_found_by_name_one_license(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    sectigo_emulator.inject("POST", "/api/v1/batches/createSingleCertBatch", "drop_after")
    async with fleet_of(sectigo_client, tmp_path) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        record = await fleet.get("m")
        assert record is not None and record.state is S.VALID
        assert sectigo_emulator.licenses_used == 1 and await creates(sectigo_emulator) == 1


async def test_a_rejected_batch_waits_for_retry_and_a_failed_one_backs_off(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path) as fleet:
        sectigo_emulator.set_next_outcome("rejected", reason="names not allowed")
        await fleet.want("r", spec("r.example.com"))
        [rejected] = await fleet.run_once()
        assert rejected.to_state is S.REJECTED
        record = await fleet.get("r")
        assert record is not None and record.next_action_at is None
        assert "names not allowed" in (record.last_error or "")
        sectigo_emulator.clock.advance(DAY)
        assert await fleet.run_once() == []  # never retried by itself
        await fleet.want("r", spec("r.example.com"))  # the same spec does not revive it
        assert await fleet.run_once() == []
        await fleet.retry("r")
        [issued] = await fleet.run_once()
        assert issued.to_state is S.VALID

        sectigo_emulator.set_next_outcome("failed")
        await fleet.want("f", spec("f.example.com"))
        [failed] = await fleet.run_once()
        assert failed.to_state is S.FAILED and failed.error
        record = await fleet.get("f")
        assert record is not None and record.next_action_at is not None
        delay = record.next_action_at - fleet.now()  # the emulator's clock runs meanwhile
        assert timedelta(minutes=59) < delay <= timedelta(hours=1)  # the policy's first
        assert await fleet.run_once() == []  # backing off
        sectigo_emulator.clock.advance(3601)
        [retried] = await fleet.run_once()
        assert retried.to_state is S.VALID
        assert sectigo_emulator.licenses_used == 2  # rejected and failed batches cost nothing


async def test_a_failing_sink_is_retried_without_reissue_and_holds_no_one_else(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    good, flaky = Sink("good"), Sink("flaky", failing=3)
    async with fleet_of(sectigo_client, tmp_path, good, flaky) as fleet:
        await fleet.want("a", spec("a.example.com"))
        await fleet.want("b", spec("b.example.com"))
        results = {r.key: r for r in await fleet.run_once()}
        # the first two deliveries to flaky fail: one per record
        assert {r.to_state for r in results.values()} == {S.DELIVERING}
        for _ in range(4):
            sectigo_emulator.clock.advance(3600)
            await fleet.run_once()
        records = await fleet.list()
        assert {r.state for r in records} == {S.VALID}
        assert sectigo_emulator.licenses_used == 2
        assert sorted(d.key for d in good.deliveries) == ["a", "b"]  # once each
        assert sorted(d.key for d in flaky.deliveries) == ["a", "b"]


async def test_cancel_stops_renewal_and_only_retry_revives(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        cancelled = await fleet.cancel("m")
        assert cancelled.state is S.CANCELLED and cancelled.next_action_at is None
        sectigo_emulator.clock.advance(400 * DAY)
        assert await fleet.run_once() == []
        assert (await fleet.want("m", spec("m.example.com"))).state is S.CANCELLED
        await fleet.retry("m")
        [result] = await fleet.run_once()
        assert result.to_state is S.VALID and sectigo_emulator.licenses_used == 2


async def test_revoke_revokes_through_the_api_once(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        record = await fleet.get("m")
        assert record is not None and record.serial_number is not None
        asked = await fleet.revoke("m", reason="cessation of operation")
        assert asked.state is S.REVOKING
        [result] = await fleet.run_once()
        assert result.to_state is S.REVOKED
        [found] = await sectigo_client.certificates.find(serial_number=record.serial_number)
        assert found.status.upper() == "REVOKED"
        again = await fleet.revoke("m", reason="cessation of operation")
        assert again.state is S.REVOKED and await fleet.run_once() == []
        sectigo_emulator.clock.advance(400 * DAY)
        assert await fleet.run_once() == []  # a revoked record is not renewed


async def test_revoke_during_an_attempt_revokes_its_certificate_too(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    never = Sink("never", failing=10**6)
    async with fleet_of(sectigo_client, tmp_path, never) as fleet:
        await fleet.want("m", spec("m.example.com"))
        [stuck] = await fleet.run_once()
        assert stuck.to_state is S.DELIVERING
        await fleet.revoke("m", reason="key compromise")
        [result] = await fleet.run_once()
        assert result.to_state is S.REVOKED
        issued = await sectigo_client.certificates.find(common_name="m.example.com")
        assert [c.status.upper() for c in issued] == ["REVOKED"]


async def test_csr_mode_keeps_the_key_here(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    sink = Sink("sink")
    wanted = CertificateSpec(authority_id=1, common_name="c.example.com", key_type="ec-p256")
    async with fleet_of(sectigo_client, tmp_path, sink) as fleet:
        await fleet.want("c", wanted)
        [result] = await fleet.run_once()
        assert result.to_state is S.VALID, result
    [delivery] = sink.deliveries
    assert delivery.bundle.key_type == "ec-p256" and delivery.bundle.private_key is not None
    [batch] = await sectigo_client.batches.list()  # one upload, no key made by the CA
    assert sectigo_emulator.licenses_used == 1
    assert (await sectigo_client.batches.get(batch.batch_id)).size == 1


async def test_secrets_never_rest_in_clear_and_leave_once_delivered(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    flaky = Sink("flaky", failing=1)
    path = tmp_path / "fleet.sqlite3"
    async with Fleet(sectigo_client, SQLiteStore(path), sinks=[flaky]) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()  # downloaded, not delivered: the key is in the store
        row = await fleet.store.get("m")
        assert row is not None and row.secrets is not None and row.secrets.bundle_pem
        key_pem = row.secrets.bundle_pem.split(b"-----BEGIN PRIVATE KEY-----")[1][:40]
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("fleet"))
        assert key_pem not in raw and b"PRIVATE KEY" not in raw
        sectigo_emulator.clock.advance(3600)
        await fleet.run_once()
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT sealed FROM records").fetchall() == [(None,)]


async def test_bad_keys_specs_and_stores_are_refused_before_anything_is_written(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path) as fleet:
        for key in ("", "a\nb", "x" * 201, " padded", "tab\there", 5):
            with pytest.raises(InvalidInputError):
                await fleet.want(key, spec("m.example.com"))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            await fleet.want("m", {"common_name": "m.example.com"})  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="no record"):
            await fleet.retry("nobody")
        assert await fleet.list() == []
        assert (await fleet.want("../x", spec("m.example.com"))).key == "../x"
    with pytest.raises(InvalidInputError, match="scheme 'mysql'"):
        open_store("mysql://db/fleet")
    with pytest.raises(InvalidInputError, match="lease"):
        Fleet(sectigo_client, SQLiteStore(tmp_path / "x.db"), lease=timedelta(seconds=5))
    with pytest.raises(InvalidInputError, match="two sinks"):
        Fleet(sectigo_client, SQLiteStore(tmp_path / "y.db"), sinks=[Sink("a"), Sink("a")])
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    (tmp_path / "junk.db.key").write_bytes(b"k" * 44)
    with pytest.raises(StoreError, match=r"junk\.db"):
        async with Fleet(sectigo_client, SQLiteStore(tmp_path / "junk.db")):
            pass


def test_the_fleet_runs_under_trio(tmp_path: Path) -> None:
    async def main() -> list[RecordState]:
        with Emulator(key_type="ec-p256") as emulator:
            async with emulator.client() as client, fleet_of(client, tmp_path) as fleet:
                await fleet.want("t", spec("t.example.com"))
                return [r.to_state for r in await fleet.run_once()]

    assert anyio.run(main, backend="trio") == [S.VALID]


async def test_only_the_write_of_a_new_attempt_must_survive_a_power_cut(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    """Every other step is redone safely after a power cut (found by name, downloaded or
    delivered again); the attempt's write comes before its create and must be there."""
    saves: list[tuple[RecordState, bool]] = []
    store = SQLiteStore(tmp_path / "fleet.sqlite3")
    real_save = store.save

    async def save(change: Change, worker: str, *, release: bool, durable: bool = True) -> bool:
        saves.append((change.row.state, durable))
        return await real_save(change, worker, release=release, durable=durable)

    store.save = save  # type: ignore[method-assign]
    async with Fleet(sectigo_client, store, sinks=[Sink("a"), Sink("b")]) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
    assert [state for state, durable in saves if durable] == [S.SUBMITTING]
    assert [state for state, _ in saves] == [
        S.SUBMITTING,
        S.PROCESSING,
        S.DOWNLOADING,
        S.DELIVERING,
        S.DELIVERING,  # sink a acknowledged; b's acknowledgement is written with VALID
        S.VALID,
    ]


async def test_a_server_echoing_the_password_never_gets_it_into_the_record(
    sectigo_emulator: Emulator, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "fleet.sqlite3")
    echoed: list[str] = []

    def echo_password(body: dict[str, object]) -> None:
        [row] = rows  # the row the step is working on
        assert row.secrets is not None and row.secrets.pkcs12_password
        echoed.append(row.secrets.pkcs12_password)
        body["rejectReason"] = f"refused, password {row.secrets.pkcs12_password} was seen"
        body["status"] = "REJECTED"

    rows: list[Row] = []
    rewrite_replies(sectigo_emulator, "GET", r"/api/v1/batches/\d+", echo_password)
    sectigo_emulator.set_next_outcome("rejected")
    client = sectigo_emulator.client()  # made after the rewrite: its replies go through it
    async with client, Fleet(client, store, sinks=[Sink("a")]) as fleet:
        await fleet.want("m", spec("m.example.com"))
        real_save = store.save

        async def save(change: Change, worker: str, *, release: bool, durable: bool = True) -> bool:
            rows[:] = [change.row]  # what the server's reply will echo
            return await real_save(change, worker, release=release, durable=durable)

        store.save = save  # type: ignore[method-assign]
        [result] = await fleet.run_once()
        record = await fleet.get("m")
    assert echoed and record is not None
    password = echoed[0]
    assert result.to_state is S.REJECTED
    assert "password *** was seen" in (record.last_error or "")
    texts = [record.last_error or "", result.error or "", result.description]
    texts += [entry.description for entry in record.history]
    assert not [text for text in texts if password in text]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("fleet"))
    assert password.encode() not in raw


async def test_revoke_all_certificates_once_each_even_after_a_failure_half_way(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    async with fleet_of(sectigo_client, tmp_path, renew_before=timedelta(days=30)) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        serials = []
        for _ in range(2):  # two renewals: two superseded certificates, still valid
            serials.append((await fleet.get("m")).serial_number)  # type: ignore[union-attr]
            await fleet.want("m", spec("m.example.com", f"w{len(serials)}.m.example.com"))
            await fleet.run_once()
        current = (await fleet.get("m")).serial_number  # type: ignore[union-attr]
        everything = [*serials, current]
        assert sectigo_emulator.licenses_used == 3
        # the second revocation fails (before anything is done): the record stays owed
        sectigo_emulator.inject("POST", "/api/v1/certificates/{profile}/revoke", "error", times=1)
        await fleet.revoke("m", "cessation of operation", all_certificates=True)
        [failed] = await fleet.run_once()
        assert failed.to_state is S.REVOKING  # one revoked and recorded, then the error
        sectigo_emulator.clock.advance(2 * 3600)
        [done] = await fleet.run_once()
        assert done.to_state is S.REVOKED
        again = await fleet.revoke("m", "cessation of operation", all_certificates=True)
        assert again.state is S.REVOKED and await fleet.run_once() == []
    found = await sectigo_client.certificates.find(common_name="m.example.com")
    assert sorted(c.serial_number for c in found if c.status.upper() == "REVOKED") == sorted(
        everything
    )
    revokes = [r.serial_number for r in sectigo_emulator.revocations()]
    assert sorted(revokes) == sorted(everything)  # each once: never revoked twice
    sent = {k: n for k, n in sectigo_emulator.stats.requests.items() if k.endswith("/revoke")}
    assert sum(sent.values()) == 4  # three revocations and the one that failed
