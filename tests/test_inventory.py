"""sectigo_iot.inventory: every certificate of folders and of a fleet store, end to end
through the emulator: statuses as the emulator's clock moves, fleet records in every
state that holds a certificate, hostile folders and stores, the JSON and the notebook."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest

from sectigo_iot import SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.errors import InvalidInputError
from sectigo_iot.fleet import Fleet, SQLiteStore, StoreError
from sectigo_iot.inventory import Inventory, InventoryEntry, inventory
from sectigo_iot.lifecycle import (
    JOURNAL_NAME,
    CertificateSpec,
    RenewalPolicy,
    ensure_certificate,
    load_certificate,
)
from tests.lifecycle.helpers import held_lock

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256", balance=1000)

DAY = 24 * 3600
#: the fields of an entry's JSON, in their order
FIELDS = [
    "key",
    "folder",
    "common_name",
    "serial_number",
    "not_after",
    "days_left",
    "renewal_time",
    "status",
    "problem",
]


@pytest.fixture(autouse=True)
def _no_fleet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores find their key in the ``.key`` file beside them, whatever the shell has."""
    for name in ("SECTIGO_FLEET_STORE", "SECTIGO_FLEET_KEY"):
        monkeypatch.delenv(name, raising=False)


def spec(name: str, *others: str) -> CertificateSpec:
    return CertificateSpec(authority_id=1, common_name=name, dns_names=others)


def now_of(emulator: Emulator) -> datetime:
    return emulator.clock.datetime()


async def issue(client: SectigoClient, folder: Path, name: str, **options: object) -> Path:
    result = await ensure_certificate(client, spec(name), folder, **options)  # type: ignore[arg-type]
    assert result.action in ("issued", "renewed"), result
    return folder


def by_status(listing: Inventory) -> dict[str, list[InventoryEntry]]:
    found: dict[str, list[InventoryEntry]] = {}
    for entry in listing:
        found.setdefault(entry.status, []).append(entry)
    return found


# -- folders --------------------------------------------------------------------------


async def test_a_folder_is_listed_with_its_renewal_time_and_moves_from_valid_to_due_to_expired(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = await issue(sectigo_client, tmp_path / "api", "api.example.com")
    bundle = load_certificate(folder)
    key = os.path.realpath(folder)
    renewal = RenewalPolicy().renewal_time(bundle.not_before, bundle.not_after, key)

    listing = await inventory([folder], now=now_of(sectigo_emulator))
    (entry,) = listing
    assert (entry.status, entry.folder, entry.key) == ("valid", key, None)
    assert (entry.common_name, entry.serial_number) == ("api.example.com", bundle.serial_number)
    assert entry.not_after == bundle.not_after
    assert entry.renewal_time == renewal
    assert isinstance(entry.days_left, float)
    expected = (bundle.not_after - now_of(sectigo_emulator)) / timedelta(days=1)
    assert abs(entry.days_left - expected) < 0.001

    # the same certificate, seen at its renewal time (as renew_due would), then expired
    due = await inventory([folder], now=renewal)
    assert [e.status for e in due] == ["due"] and due[0].days_left is not None
    just_before = await inventory([folder], now=renewal - timedelta(seconds=1))
    assert [e.status for e in just_before] == ["valid"]
    sectigo_emulator.clock.advance((bundle.not_after - now_of(sectigo_emulator)).total_seconds())
    expired = await inventory([folder], now=now_of(sectigo_emulator))
    assert [e.status for e in expired] == ["expired"]
    assert expired[0].days_left is not None and expired[0].days_left <= 0


async def test_a_renewed_folder_lists_its_certificate_and_the_one_it_superseded(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = await issue(sectigo_client, tmp_path / "api", "api.example.com")
    first = load_certificate(folder)
    sectigo_emulator.clock.advance(10 * DAY)
    await issue(sectigo_client, folder, "api.example.com", force=True)
    second = load_certificate(folder)

    current, before = await inventory([folder], now=now_of(sectigo_emulator))
    assert (current.status, current.serial_number) == ("valid", second.serial_number)
    assert (before.status, before.serial_number) == ("superseded", first.serial_number)
    assert before.not_after == first.not_after and before.renewal_time is None
    assert before.folder == current.folder == os.path.realpath(folder)


async def test_a_superseded_version_that_cannot_be_read_is_listed_without_its_expiry(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folders = []
    for name in ("fifo", "garbage", "huge", "link", "gone"):
        folder = await issue(sectigo_client, tmp_path / name, f"{name}.example.com")
        previous = load_certificate(folder).serial_number
        await issue(sectigo_client, folder, f"{name}.example.com", force=True)
        cert = folder / "versions" / previous / "cert.pem"
        cert.unlink()
        folders.append((folder, cert))
    os.mkfifo(folders[0][1])  # never blocks the listing
    folders[1][1].write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    folders[2][1].write_bytes(b"x" * (2 * 1024 * 1024))
    folders[3][1].symlink_to(folders[3][0] / "cert.pem")  # never followed

    listing = await inventory([folder for folder, _ in folders], now=now_of(sectigo_emulator))
    assert [e.status for e in listing] == ["valid", "superseded"] * 5
    for superseded in listing[1::2]:
        assert superseded.serial_number and superseded.not_after is None
        assert superseded.days_left is None


async def test_a_policy_decides_the_folders_renewal_times(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = await issue(sectigo_client, tmp_path / "api", "api.example.com")
    bundle = load_certificate(folder)
    policy = RenewalPolicy(renew_before=timedelta(days=400))  # longer than the lifetime
    (entry,) = await inventory([folder], policy=policy, now=now_of(sectigo_emulator))
    assert entry.status == "due"
    assert entry.renewal_time == policy.renewal_time(
        bundle.not_before, bundle.not_after, os.path.realpath(folder)
    )


async def test_folders_are_listed_in_order_once_each_and_read_without_their_lock(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    a = await issue(sectigo_client, tmp_path / "a", "a.example.com")
    b = await issue(sectigo_client, tmp_path / "b", "b.example.com")
    (tmp_path / "link").symlink_to(a)
    lock_before = (a / ".lock").stat().st_mtime_ns
    with held_lock(a), held_lock(b):  # another process is working on both: not waited for
        listing = await inventory(
            [b, a, tmp_path / "link", str(tmp_path / "x" / ".." / "a")],
            now=now_of(sectigo_emulator),
        )
    assert [e.common_name for e in listing] == ["b.example.com", "a.example.com"]
    assert (a / ".lock").stat().st_mtime_ns != lock_before  # only the holder wrote it
    # a folder kept by another tool's process never gains a lock file from a listing
    os.remove(a / ".lock")
    await inventory([a], now=now_of(sectigo_emulator))
    assert not (a / ".lock").exists()


async def test_every_folder_that_cannot_be_read_is_one_problem_entry_and_the_others_are_listed(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    good = await issue(sectigo_client, tmp_path / "good", "good.example.com")
    corrupt = await issue(sectigo_client, tmp_path / "corrupt", "corrupt.example.com")
    (corrupt / JOURNAL_NAME).write_text('{"version": 1, "spec": ')
    huge = await issue(sectigo_client, tmp_path / "huge", "huge.example.com")
    (huge / JOURNAL_NAME).write_bytes(b" " * (10 * 1024 * 1024))
    looped = await issue(sectigo_client, tmp_path / "looped", "looped.example.com")
    os.remove(looped / JOURNAL_NAME)
    (looped / JOURNAL_NAME).symlink_to(looped / JOURNAL_NAME)
    (tmp_path / "ring-a").symlink_to(tmp_path / "ring-b")
    (tmp_path / "ring-b").symlink_to(tmp_path / "ring-a")
    broken = await issue(sectigo_client, tmp_path / "broken", "broken.example.com")
    (broken / "live").unlink()
    (broken / "live").symlink_to("/etc")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a folder")
    fifo = tmp_path / "fifo-folder"
    fifo.mkdir()
    os.mkfifo(fifo / JOURNAL_NAME)  # never blocks the listing

    paths = [
        corrupt,
        huge,
        looped,
        tmp_path / "ring-a",
        broken,
        tmp_path / "empty",
        tmp_path / "file",
        tmp_path / "missing",
        fifo,
        good,
    ]
    listing = await inventory(paths, now=now_of(sectigo_emulator))
    problems = {Path(e.folder or "").name: e.problem or "" for e in listing if e.problem}
    assert [e.status for e in listing] == ["problem"] * 9 + ["valid"]
    assert listing[-1].common_name == "good.example.com"
    assert "damaged" in problems["corrupt"]
    assert "larger than" in problems["huge"]
    assert "symbolic link" in problems["looped"]
    assert "symbolic links" in problems["ring-a"]
    assert "outside" in problems["broken"]
    assert "not a certificate folder" in problems["empty"]
    assert "is not a folder" in problems["file"]
    assert "does not exist" in problems["missing"]
    assert "FIFO" in problems["fifo-folder"]
    # the name from the journal is kept where it could be read
    assert {e.common_name for e in listing if e.status == "problem"} >= {"broken.example.com"}
    assert all(e.serial_number is None and e.days_left is None for e in listing[:9])
    # and nothing was changed in any folder
    assert (corrupt / JOURNAL_NAME).read_text() == '{"version": 1, "spec": '


# -- a fleet store --------------------------------------------------------------------


async def _fleet_in_every_state(
    emulator: Emulator, client: SectigoClient, path: Path
) -> dict[str, str]:
    """A store with a valid, a revoked, a renewed and an expired record; their serials."""
    async with Fleet(client, SQLiteStore(path)) as fleet:
        await fleet.want("old", spec("old.example.com"))
        await fleet.run_once()
        emulator.clock.advance(200 * DAY)
        for key in ("valid", "revoked", "renewed"):
            await fleet.want(key, spec(f"{key}.example.com"))
        await fleet.run_once()
        await fleet.revoke("revoked", "superseded")
        await fleet.want("renewed", spec("renewed.example.com", "www.renewed.example.com"))
        await fleet.run_once()
        emulator.clock.advance(170 * DAY)  # "old" (365 days) has expired; not run since
        serials = {r.key: r.serial_number for r in await fleet.list()}
    return {key: serial for key, serial in serials.items() if serial}


async def test_a_fleet_store_lists_each_record_by_state_with_its_stored_renewal_time(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.sqlite3"
    serials = await _fleet_in_every_state(sectigo_emulator, sectigo_client, path)
    async with Fleet(sectigo_client, SQLiteStore(path)) as fleet:
        records = {r.key: r for r in await fleet.list()}

    listing = await inventory(store=path, now=now_of(sectigo_emulator))
    rows = [(e.key, e.status) for e in listing]
    assert rows == [
        ("old", "expired"),
        ("renewed", "valid"),
        ("renewed", "superseded"),
        ("revoked", "revoked"),
        ("valid", "valid"),
    ]
    for entry in listing:
        assert entry.folder is None and entry.key is not None
        record = records[entry.key]
        if entry.status == "superseded":
            assert entry.serial_number != serials[entry.key] and entry.renewal_time is None
            continue
        assert entry.serial_number == serials[entry.key] == record.serial_number
        assert entry.not_after == record.not_after
        assert entry.renewal_time == record.renewal_at is not None
        assert entry.common_name == record.spec.common_name
    old = listing[0]
    assert old.days_left is not None and old.days_left < 0


async def test_a_store_object_is_opened_and_left_to_its_owner(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.sqlite3"
    await _fleet_in_every_state(sectigo_emulator, sectigo_client, path)
    store = SQLiteStore(path)
    listing = await inventory([], store=store, now=now_of(sectigo_emulator))
    assert len(listing) == 5
    assert len(await store.list()) == 4  # still open
    await store.close()


async def test_folders_come_first_then_the_fleet(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.sqlite3"
    async with Fleet(sectigo_client, SQLiteStore(path)) as fleet:
        await fleet.want("k", spec("k.example.com"))
        await fleet.run_once()
    folder = await issue(sectigo_client, tmp_path / "api", "api.example.com")
    listing = await inventory([folder], store=str(path))
    assert [(e.folder is not None, e.key) for e in listing] == [(True, None), (False, "k")]


async def test_a_store_opened_with_another_key_is_a_store_error(
    sectigo_client: SectigoClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fleet.sqlite3"
    async with Fleet(sectigo_client, SQLiteStore(path)) as fleet:
        await fleet.want("k", spec("k.example.com"))
    (tmp_path / "fleet.sqlite3.key").write_text("another secret of more than 32 characters\n")
    with pytest.raises(StoreError, match=r"fleet\.sqlite3") as caught:
        await inventory(store=path)
    assert "another secret" not in str(caught.value)
    monkeypatch.setenv("SECTIGO_FLEET_KEY", "yet another secret, from the environment")
    with pytest.raises(StoreError, match=r"fleet\.sqlite3") as caught:
        await inventory(store=path)
    assert "yet another" not in str(caught.value)


async def test_a_missing_or_damaged_store_is_a_store_error_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    with pytest.raises(StoreError, match=r"no fleet store at .*nowhere"):
        await inventory(store=missing)
    assert list(tmp_path.iterdir()) == []  # neither a database nor a key file
    damaged = tmp_path / "fleet.sqlite3"
    damaged.write_bytes(os.urandom(4096))
    (tmp_path / "fleet.sqlite3.key").write_text("x" * 40)
    with pytest.raises(StoreError):
        await inventory(store=damaged)
    foreign = tmp_path / "other.sqlite3"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE t (x)")
    (tmp_path / "other.sqlite3.key").write_text("x" * 40)
    with pytest.raises(StoreError, match="something else"):
        await inventory(store=foreign)


# -- arguments, JSON, notebook, trio --------------------------------------------------


async def test_bad_arguments_are_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="list of folders"):
        await inventory(str(tmp_path))
    with pytest.raises(InvalidInputError, match="non-empty"):
        await inventory([" "])
    with pytest.raises(InvalidInputError, match="a path"):
        await inventory([42])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="aware"):
        await inventory([], now=datetime(2030, 1, 1))
    with pytest.raises(InvalidInputError, match="RenewalPolicy"):
        await inventory([], policy=timedelta(days=1))  # type: ignore[arg-type]


async def test_json_is_versioned_and_expiring_keeps_the_certificates_in_use_with_little_left(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = await issue(sectigo_client, tmp_path / "api", "api.example.com")
    await issue(sectigo_client, folder, "api.example.com", force=True)
    sectigo_emulator.clock.advance(300 * DAY)
    await issue(sectigo_client, tmp_path / "new", "new.example.com")
    listing = await inventory(
        [folder, tmp_path / "new", tmp_path / "missing"], now=now_of(sectigo_emulator)
    )
    document = json.loads(json.dumps(listing.to_json()))
    assert list(document) == ["version", "certificates"] and document["version"] == 1
    assert [list(entry) for entry in document["certificates"]] == [FIELDS] * 4
    assert [e["status"] for e in document["certificates"]] == [
        "due",
        "superseded",
        "valid",
        "problem",
    ]
    first = document["certificates"][0]
    assert datetime.fromisoformat(first["not_after"]).utcoffset() == timedelta(0)
    assert first["days_left"] == round(listing[0].days_left or 0, 3)

    # 65 days left on the due one (and on the superseded one, which is not in use)
    kept = listing.expiring(70)
    assert [(e.status, e.common_name) for e in kept] == [
        ("due", "api.example.com"),
        ("problem", None),
    ]
    assert listing.expiring(60).count("due") == 0 and listing.count("superseded") == 1


async def test_the_notebook_table_escapes_every_value(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = await issue(sectigo_client, tmp_path / "<script>x</script>", "api.example.com")
    listing = await inventory([folder, tmp_path / "<b>gone"], now=now_of(sectigo_emulator))
    html = listing._repr_html_()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "&lt;b&gt;gone" in html
    assert html.count("<tr>") == 3  # the header and two entries
    assert "api.example.com" in html and str(listing[0].serial_number) in html
    assert "1 valid, 1 problem" in html


def test_it_runs_on_trio(tmp_path: Path) -> None:
    with Emulator(key_type="ec-p256") as emulator:

        async def main() -> list[str]:
            async with emulator.client() as client:
                folder = await issue(client, tmp_path / "api", "api.example.com")
                store = tmp_path / "fleet.sqlite3"
                async with Fleet(client, SQLiteStore(store)) as fleet:
                    await fleet.want("k", spec("k.example.com"))
                    await fleet.run_once()
                listing = await inventory([folder], store=store, now=now_of(emulator))
            return [entry.status for entry in listing]

        assert anyio.run(main, backend="trio") == ["valid", "valid"]
