"""The built-in sinks, attacked: FolderSink lays a key's certificate out exactly as the
folder lifecycle does, inside its root whatever the key or the planted links; WebhookSink
sends exactly the delivery, never follows a redirect, never reads a hostile body whole,
and never shows a password, a query or a header value."""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_iot import SectigoClient
from sectigo_iot.certs import CertificateBundle
from sectigo_iot.errors import InvalidInputError
from sectigo_iot.fleet import Delivery
from sectigo_iot.fleet._sinks import DeliveryError, FolderSink, WebhookSink
from sectigo_iot.lifecycle import (
    CertificateSpec,
    FolderLockedError,
    LifecycleError,
    ensure_certificate,
    load_certificate,
)
from sectigo_iot.lifecycle._folder import folder_lock
from tests.support import needs_openssl

HOOK = "https://hooks.example.com/certs"
SECRET = "canary-sekrit-Qv93"  # must never appear in a name, repr or error

# -- certificates, made here with cryptography (independent of the code under test) -----

_CA_KEY = ec.generate_private_key(ec.SECP256R1())
_NOW = datetime.now(timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


_CA = (
    x509.CertificateBuilder()
    .subject_name(_name("Sink Test CA"))
    .issuer_name(_name("Sink Test CA"))
    .public_key(_CA_KEY.public_key())
    .serial_number(1)
    .not_valid_before(_NOW - timedelta(days=1))
    .not_valid_after(_NOW + timedelta(days=3650))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(_CA_KEY, hashes.SHA256())
)


def make_bundle(serial: int, common_name: str = "node.example.com") -> CertificateBundle:
    """An EC leaf with ``serial``, signed by the test CA, with its key and the CA as chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_CA.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_NOW - timedelta(days=1))
        .not_valid_after(_NOW + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(_CA_KEY, hashes.SHA256())
    )
    return CertificateBundle(certificate=leaf, private_key=key, chain=(_CA,))


def delivery(key: str, bundle: CertificateBundle) -> Delivery:
    return Delivery(
        key=key,
        serial_number=bundle.serial_number,
        bundle=bundle,
        delivery_id=f"{key}/{bundle.serial_number}",
    )


@pytest.fixture(scope="module")
def first() -> CertificateBundle:
    return make_bundle(0x0A1B2C3D4E5F)


@pytest.fixture(scope="module")
def second() -> CertificateBundle:
    return make_bundle(0x00FEDCBA9876)


def tree(folder: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[str, Any]]:
    """Every entry under ``folder``: its kind and its mode (a file or folder) or target
    (a symlink), by relative path."""
    entries: dict[str, tuple[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            relative = str(path.relative_to(folder))
            if relative in skip:
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries[relative] = ("link", os.readlink(path))
            else:
                kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
                entries[relative] = (kind, stat.S_IMODE(info.st_mode))
    return entries


def live_serial(folder: Path) -> str:
    return load_certificate(folder).serial_number


# -- FolderSink: the lifecycle's layout, by the lifecycle's code ----------------------


@pytest.mark.sectigo_emulator(key_type="ec-p256")
async def test_the_layout_is_the_folder_lifecycles(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    managed = tmp_path / "managed"
    await ensure_certificate(
        sectigo_client, CertificateSpec(authority_id=1, common_name="node.example.com"), managed
    )
    bundle = load_certificate(managed)

    sink = FolderSink(tmp_path / "sink")
    await sink.deliver(delivery("node-1", bundle))
    folder = tmp_path / "sink" / "node-1"
    assert sink.folder_for("node-1") == folder

    # the same names, kinds, modes and link targets; only the journal is the lifecycle's
    assert tree(folder, skip=frozenset({".lock"})) == tree(
        managed, skip=frozenset({".lock", "journal.json"})
    )
    layout = tree(folder)
    serial = bundle.serial_number
    assert layout["live"] == ("link", f"versions/{serial}")
    assert layout[f"versions/{serial}/key.pem"] == ("file", 0o600)
    assert layout[f"versions/{serial}/cert.pem"] == ("file", 0o644)
    for name in ("cert.pem", "chain.pem", "fullchain.pem", "key.pem"):
        assert layout[name] == ("link", f"live/{name}")
    for path in (tmp_path / "sink", folder, folder / "versions", folder / "versions" / serial):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    # the lifecycle reads it back as its own: the same certificate, and the key matches
    read = load_certificate(folder)
    assert read.certificate == bundle.certificate and read.fullchain_pem == bundle.fullchain_pem


@needs_openssl
async def test_openssl_reads_the_delivered_certificate_and_key(
    tmp_path: Path, first: CertificateBundle
) -> None:
    sink = FolderSink(tmp_path)
    await sink.deliver(delivery("vasp-1", first))
    folder = tmp_path / "vasp-1"

    def openssl(*args: str) -> str:
        return subprocess.run(
            ["openssl", *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    serial = openssl("x509", "-in", str(folder / "cert.pem"), "-noout", "-serial")
    assert serial.removeprefix("serial=").lstrip("0") == "A1B2C3D4E5F" == first.serial_number
    certificate_key = openssl("x509", "-in", str(folder / "cert.pem"), "-noout", "-pubkey")
    private_key = openssl("pkey", "-in", str(folder / "key.pem"), "-pubout")
    assert certificate_key == private_key
    chain = openssl("x509", "-in", str(folder / "chain.pem"), "-noout", "-subject")
    assert "Sink Test CA" in chain


async def test_the_same_delivery_twice_is_one_version_untouched(
    tmp_path: Path, first: CertificateBundle
) -> None:
    sink = FolderSink(tmp_path)
    await sink.deliver(delivery("vasp-1", first))
    folder = sink.folder_for("vasp-1")
    before = {path: os.lstat(folder / path).st_ino for path in tree(folder)}
    await sink.deliver(delivery("vasp-1", first))
    assert os.listdir(folder / "versions") == [first.serial_number]
    assert {path: os.lstat(folder / path).st_ino for path in tree(folder)} == before


async def test_a_new_certificate_switches_live_and_keeps_the_one_before(
    tmp_path: Path, first: CertificateBundle, second: CertificateBundle
) -> None:
    sink = FolderSink(tmp_path)
    folder = sink.folder_for("vasp-1")
    await sink.deliver(delivery("vasp-1", first))
    await sink.deliver(delivery("vasp-1", second))
    assert live_serial(folder) == second.serial_number
    assert os.readlink(folder / "live") == f"versions/{second.serial_number}"
    assert sorted(os.listdir(folder / "versions")) == sorted(
        [first.serial_number, second.serial_number]
    )
    # a third: the second is kept, the first removed
    third = make_bundle(0x77)
    await sink.deliver(delivery("vasp-1", third))
    assert live_serial(folder) == "77"
    assert sorted(os.listdir(folder / "versions")) == sorted(["77", second.serial_number])
    # and delivering the second again (a retried delivery after a crash) makes it live
    await sink.deliver(delivery("vasp-1", second))
    assert live_serial(folder) == second.serial_number
    assert sorted(os.listdir(folder / "versions")) == sorted(["77", second.serial_number])


async def test_a_damaged_live_version_is_written_again(
    tmp_path: Path, first: CertificateBundle
) -> None:
    sink = FolderSink(tmp_path)
    folder = sink.folder_for("vasp-1")
    await sink.deliver(delivery("vasp-1", first))
    (folder / "live" / "key.pem").unlink()
    await sink.deliver(delivery("vasp-1", first))
    assert load_certificate(folder).certificate == first.certificate


HOSTILE_KEYS = [
    "../x",
    "a/b",
    "a%2Fb",
    "a%2fb",
    ".hidden",
    "..",
    ".",
    "...",
    "x/../../y",
    "/etc/passwd",
    "-rf",
    "_under",
    "a b",
    "%",
    "+",
    "a+",
    "ünïcödé",
    "日本語",
    "emoji-\U0001f512",
    "CON",
    "a\\b",
    "~",
    "x" * 200,
    "/" * 200,
    "é" * 200,
    "\U0001f512" * 200,
    "." * 200,
    "a" * 199 + "/",
]


def test_every_key_has_its_own_folder_inside_root(tmp_path: Path) -> None:
    sink = FolderSink(tmp_path / "root")
    root = str(sink.root)
    rng = random.Random(23)
    alphabet = "aZ09._-/%+ .é日\U0001f512\\~:"
    randoms = {
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))).strip() or "k"
        for _ in range(3000)
    }
    keys = [*HOSTILE_KEYS, *sorted(randoms)]
    folders = {}
    for key in keys:
        folder = sink.folder_for(key)
        relative = folder.relative_to(sink.root)
        assert os.path.normpath(folder) == str(folder)
        assert os.path.realpath(folder).startswith(root + os.sep)
        for name in relative.parts:
            assert not name.startswith(".") and "/" not in name and name not in (".", "..")
            assert 0 < len(name.encode()) <= 255
        assert sink.key_for(folder) == key
        assert sink.key_for(relative) == key
        folders[folder] = key
    assert len(folders) == len(set(keys))  # distinct keys, distinct folders
    # no key's folder holds another's: a long key's parent folders end in "+"
    for folder in folders:
        for parent in folder.relative_to(sink.root).parents:
            if parent != Path("."):
                assert sink.root / parent not in folders
    assert sink.folder_for("vasp-8d2f") == sink.root / "vasp-8d2f"
    assert sink.folder_for("a/b") == sink.root / "a%2Fb"
    assert sink.folder_for("..") == sink.root / "%2E%2E"
    assert sink.folder_for("-rf") == sink.root / "%2Drf"


def test_what_is_no_keys_folder_is_refused(tmp_path: Path) -> None:
    sink = FolderSink(tmp_path)
    names = ("a%2fb", "%2e", "%41", "%zz", "abc+", "%2Dx+/y", "a%2F%", "%FF", "", "a/b", "..")
    for name in (*names, tmp_path.parent / "abc", tmp_path):
        with pytest.raises(InvalidInputError, match="is not the folder of a key"):
            sink.key_for(name)
    for bad in ("", " padded", "tab\there", "x" * 201):
        with pytest.raises(InvalidInputError, match="record key"):
            sink.folder_for(bad)


async def test_hostile_keys_are_delivered_inside_root(
    tmp_path: Path, first: CertificateBundle
) -> None:
    root = tmp_path / "root"
    sink = FolderSink(root)
    keys = ["../x", "a/b", ".hidden", "..", "ünïcödé", "\U0001f512" * 200, "/" * 200]
    for key in keys:
        await sink.deliver(delivery(key, first))
    assert sorted(os.listdir(tmp_path)) == ["root"]  # nothing beside the root
    for key in keys:
        folder = sink.folder_for(key)
        assert load_certificate(folder).certificate == first.certificate
        assert os.path.realpath(folder / "key.pem").startswith(str(root) + os.sep)


async def test_a_symlink_planted_for_a_key_is_refused(
    tmp_path: Path, first: CertificateBundle
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    sink = FolderSink(root)
    (root / "vasp-1").symlink_to(outside)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    long_key = "/" * 200
    first_level = sink.folder_for(long_key).relative_to(root).parts[0]
    (root / first_level).symlink_to(outside)
    for key in ("vasp-1", "dangling", long_key):
        with pytest.raises(LifecycleError, match="symlink or a file"):
            await sink.deliver(delivery(key, first))
    assert os.listdir(outside) == [] and not (tmp_path / "nowhere").exists()


async def test_links_planted_inside_a_keys_folder_are_refused(
    tmp_path: Path, first: CertificateBundle, second: CertificateBundle
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    sink = FolderSink(tmp_path / "root")
    folder = sink.folder_for("vasp-1")
    folder.mkdir(parents=True)
    (folder / "versions").symlink_to(outside)
    with pytest.raises(LifecycleError, match="versions"):
        await sink.deliver(delivery("vasp-1", first))
    (folder / "versions").unlink()
    await sink.deliver(delivery("vasp-1", first))
    (folder / "live").unlink()
    (folder / "live").symlink_to(outside)
    with pytest.raises(LifecycleError, match="outside"):
        await sink.deliver(delivery("vasp-1", second))
    (folder / "live").unlink()
    (folder / "live").write_text("not a link")
    with pytest.raises(LifecycleError, match="not a symlink"):
        await sink.deliver(delivery("vasp-1", second))
    assert os.listdir(outside) == []


async def test_a_file_where_a_folder_should_be_is_refused(
    tmp_path: Path, first: CertificateBundle
) -> None:
    (tmp_path / "vasp-1").write_text("a file")
    with pytest.raises(LifecycleError, match="symlink or a file"):
        await FolderSink(tmp_path).deliver(delivery("vasp-1", first))
    (tmp_path / "file-root").write_text("a file")
    with pytest.raises(LifecycleError, match="not a folder"):
        await FolderSink(tmp_path / "file-root").deliver(delivery("vasp-1", first))
    assert (tmp_path / "vasp-1").read_text() == "a file"


async def test_the_folders_lock_is_held_while_writing(
    tmp_path: Path, first: CertificateBundle
) -> None:
    sink = FolderSink(tmp_path, lock_timeout=0)
    folder = sink.folder_for("vasp-1")
    async with folder_lock(folder, lambda: None, wait=0):  # another writer holds it
        with pytest.raises(FolderLockedError, match="still locked"):
            await sink.deliver(delivery("vasp-1", first))
    assert not (folder / "versions").exists() and not (folder / "live").exists()
    await sink.deliver(delivery("vasp-1", first))
    assert live_serial(folder) == first.serial_number


#: a process that delivers the PEM bundles it is given, in turn, to one key's folder
_DELIVERER = """
import sys, anyio
from pathlib import Path
from sectigo_iot.certs import load_pem_bundle
from sectigo_iot.fleet import Delivery
from sectigo_iot.fleet._sinks import FolderSink

async def main():
    sink = FolderSink(sys.argv[1])
    for _ in range(5):
        for path in sys.argv[2:]:
            bundle = load_pem_bundle(Path(path).read_bytes())
            await sink.deliver(Delivery(key="shared/key", serial_number=bundle.serial_number,
                                        bundle=bundle, delivery_id=path))

anyio.run(main)
"""


def test_processes_delivering_to_one_folder_never_interleave(tmp_path: Path) -> None:
    pems = []
    for serial in range(0x100, 0x106):
        bundle = make_bundle(serial)
        path = tmp_path / f"{serial:X}.pem"
        path.write_bytes(bundle.fullchain_pem + bundle.private_key_pem())
        pems.append(str(path))
    root = tmp_path / "root"
    workers = [
        subprocess.Popen([sys.executable, "-c", _DELIVERER, str(root), *pems[i::3]])
        for i in range(3)
    ]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0]
    folder = FolderSink(root).folder_for("shared/key")
    bundle = load_certificate(folder)  # a whole pair: its files agree and the key matches
    versions = os.listdir(folder / "versions")
    assert bundle.serial_number in versions and len(versions) <= 2
    assert not [name for name in os.listdir(folder) if name.endswith(".tmp")]


async def test_a_bundle_without_its_key_is_refused_before_writing(
    tmp_path: Path, first: CertificateBundle
) -> None:
    public = CertificateBundle(certificate=first.certificate, chain=first.chain)
    with pytest.raises(InvalidInputError, match="no private key"):
        await FolderSink(tmp_path / "root").deliver(delivery("vasp-1", public))
    assert not (tmp_path / "root").exists()


def test_the_folder_sinks_name_is_its_absolute_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sink = FolderSink("certs")
    assert sink.name == f"folder:{tmp_path / 'certs'}" == FolderSink(tmp_path / "certs").name
    assert sink.root == tmp_path / "certs"
    for bad in ("", 3, None):
        with pytest.raises(InvalidInputError, match="root"):
            FolderSink(bad)  # type: ignore[arg-type]
    for timeout in (-1, float("nan"), True):
        with pytest.raises(InvalidInputError, match="lock_timeout"):
            FolderSink(tmp_path, lock_timeout=timeout)


# -- WebhookSink: the exact request, and nothing more ----------------------------------


async def test_the_webhook_receives_exactly_the_delivery(
    httpx_mock: Any, first: CertificateBundle
) -> None:
    httpx_mock.add_response(method="POST", url=f"{HOOK}?v=2", status_code=204)
    sent = delivery("vasp-1", first)
    async with WebhookSink(
        f"{HOOK}?v=2", headers={"Authorization": f"Bearer {SECRET}"}, timeout=2.5
    ) as sink:
        await sink.deliver(sent)
    request = httpx_mock.get_request()
    body = json.loads(request.content)
    assert body == sent.to_json()
    assert sorted(body) == [
        "certificate",
        "chain",
        "delivery_id",
        "key",
        "not_after",
        "private_key",
        "serial_number",
    ]
    # judged independently of to_json: the PEMs load back to the same pair
    assert x509.load_pem_x509_certificate(body["certificate"].encode()) == first.certificate
    key = serialization.load_pem_private_key(body["private_key"].encode(), None)
    assert key.public_key() == first.certificate.public_key()
    assert x509.load_pem_x509_certificates(body["chain"].encode()) == [_CA]
    assert (body["key"], body["serial_number"]) == ("vasp-1", "A1B2C3D4E5F")
    assert request.headers["Idempotency-Key"] == "vasp-1/A1B2C3D4E5F"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 2.5)


async def test_an_error_answer_is_typed_and_never_echoes_its_body(
    httpx_mock: Any, first: CertificateBundle
) -> None:
    echo = f'{{"error": "refused", "token": "{SECRET}", "got": "-----BEGIN PRIVATE KEY-----"}}'
    httpx_mock.add_response(method="POST", url=HOOK, status_code=500, text=echo)
    httpx_mock.add_response(method="POST", url=HOOK, status_code=404, text=echo)
    sink = WebhookSink(HOOK)
    for status in (500, 404):
        with pytest.raises(DeliveryError) as caught:
            await sink.deliver(delivery("vasp-1", first))
        error = caught.value
        assert (error.sink, error.status_code) == (f"webhook:{HOOK}", status)
        assert str(status) in str(error) and str(error).startswith(f"webhook:{HOOK}: ")
        assert SECRET not in str(error) and "PRIVATE" not in str(error)
    await sink.aclose()


async def test_a_redirect_is_a_failure_naming_only_its_host(
    httpx_mock: Any, first: CertificateBundle
) -> None:
    elsewhere = f"https://collector.example.net/steal?token={SECRET}"
    httpx_mock.add_response(
        method="POST", url=HOOK, status_code=302, headers={"Location": elsewhere}
    )
    httpx_mock.add_response(url=elsewhere, is_optional=True)
    sink = WebhookSink(HOOK)
    with pytest.raises(DeliveryError, match=r"302.*collector\.example\.net") as caught:
        await sink.deliver(delivery("vasp-1", first))
    assert caught.value.status_code == 302
    assert SECRET not in str(caught.value) and "steal" not in str(caught.value)
    assert [str(request.url) for request in httpx_mock.get_requests()] == [HOOK]
    await sink.aclose()


class HugeBody(httpx.AsyncByteStream):
    """10 MiB, counted as it is handed out."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        for _ in range(160):
            self.sent += len(chunk)
            yield chunk


@pytest.mark.parametrize("status", [200, 503])
async def test_a_huge_answer_is_never_read_whole(
    httpx_mock: Any, first: CertificateBundle, status: int
) -> None:
    body = HugeBody()
    httpx_mock.add_response(method="POST", url=HOOK, status_code=status, stream=body)
    sink = WebhookSink(HOOK)
    if status == 200:
        await sink.deliver(delivery("vasp-1", first))
    else:
        with pytest.raises(DeliveryError, match="503"):
            await sink.deliver(delivery("vasp-1", first))
    assert body.sent <= 65536
    await sink.aclose()


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (httpx.ConnectError(f"refused {SECRET}"), r"connection failed \(ConnectError\)"),
        (httpx.ReadTimeout(f"slow {SECRET}"), r"timed out \(ReadTimeout\)"),
        (httpx.RemoteProtocolError(f"hung up {SECRET}"), "connection failed"),
    ],
)
async def test_a_transport_failure_is_typed(
    httpx_mock: Any, first: CertificateBundle, raised: Exception, said: str
) -> None:
    httpx_mock.add_exception(raised, url=HOOK)
    sink = WebhookSink(HOOK)
    with pytest.raises(DeliveryError, match=said) as caught:
        await sink.deliver(delivery("vasp-1", first))
    assert caught.value.status_code is None and SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    await sink.aclose()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://hooks.example.com/x", "plain http to hooks.example.com"),
        (f"http://user:{SECRET}@10.0.0.8/x?token={SECRET}", "plain http to 10.0.0.8"),
        ("http://127.0.0.1.example.com/x", "plain http to 127.0.0.1.example.com"),
        (f"ftp://files.example.com/{SECRET}", "scheme 'ftp' and host 'files.example.com'"),
        ("https:///no-host", "scheme 'https' and host ''"),
        (f"https://hooks.example.com:99999/{SECRET}", "not a valid URL"),
        (f"https://hooks.example.com/a b?{SECRET}", r"\(https://hooks.example.com\) holds spaces"),
        (42, "must be a str"),
    ],
)
def test_a_webhook_url_that_cannot_be_used_is_refused(url: Any, said: str) -> None:
    with pytest.raises(InvalidInputError, match=said) as caught:
        WebhookSink(url)
    assert SECRET not in str(caught.value)


def test_plain_http_is_allowed_to_this_machine_only() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://127.9.9.9/",
        "http://[::1]/h",
        "http://localhost/",
    ):
        assert WebhookSink(url).name.startswith("webhook:http://")


def test_bad_options_are_refused_without_showing_a_value() -> None:
    with pytest.raises(InvalidInputError, match=r"'X-Token'.*value not shown") as caught:
        WebhookSink(HOOK, headers={"X-Token": f"{SECRET}\r\nEvil: 1"})
    assert SECRET not in str(caught.value)
    with pytest.raises(InvalidInputError, match="header name"):
        WebhookSink(HOOK, headers={"Bad Name": "x"})
    with pytest.raises(InvalidInputError, match="set by the webhook sink"):
        WebhookSink(HOOK, headers={"idempotency-key": "x"})
    for timeout in (0, -1, float("inf"), "10", True):
        with pytest.raises(InvalidInputError, match="timeout"):
            WebhookSink(HOOK, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"httpx\.AsyncClient"):
        WebhookSink(HOOK, client=object())  # type: ignore[arg-type]


async def test_a_password_a_query_and_headers_are_sent_but_never_shown(
    httpx_mock: Any, first: CertificateBundle
) -> None:
    url = f"https://hook-user:{SECRET}%40x@hooks.example.com:8443/in/certs?token={SECRET}"
    httpx_mock.add_response(method="POST", status_code=401)
    sink = WebhookSink(url, headers={"X-Api-Key": SECRET})
    assert sink.name == "webhook:https://hooks.example.com:8443/in/certs"
    with pytest.raises(DeliveryError) as caught:
        await sink.deliver(delivery("vasp-1", first))
    request = httpx_mock.get_request()
    assert str(request.url) == f"https://hooks.example.com:8443/in/certs?token={SECRET}"
    assert request.headers["X-Api-Key"] == SECRET
    credentials = base64.b64decode(request.headers["Authorization"].removeprefix("Basic "))
    assert credentials == f"hook-user:{SECRET}@x".encode()
    for shown in (sink.name, repr(sink), str(caught.value), repr(caught.value)):
        assert SECRET not in shown and "token" not in shown and "hook-user" not in shown
    assert "X-Api-Key" in repr(sink)
    await sink.aclose()


async def test_a_given_client_is_used_and_left_open(
    httpx_mock: Any, first: CertificateBundle
) -> None:
    httpx_mock.add_response(method="POST", url=HOOK)
    async with httpx.AsyncClient(follow_redirects=True) as client:
        sink = WebhookSink(HOOK, client=client)
        await sink.deliver(delivery("vasp-1", first))
        await sink.aclose()
        assert not client.is_closed
    own = WebhookSink(HOOK)
    await own.aclose()
    assert own._client.is_closed


# -- WebhookSink end to end, over a real loopback connection ---------------------------


class Receiver(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records each request and answers ``status``."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/certs"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, dict(self.headers), body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_end_to_end_over_loopback(receiver: Receiver, first: CertificateBundle) -> None:
    sent = delivery("vasp-1", first)
    async with WebhookSink(
        f"{receiver.url}?member=1", headers={"Authorization": "Bearer t"}
    ) as sink:
        await sink.deliver(sent)
        receiver.status = 500
        with pytest.raises(DeliveryError, match="500"):
            await sink.deliver(sent)
    assert len(receiver.requests) == 2
    path, headers, body = receiver.requests[0]
    assert path == "/hooks/certs?member=1"
    assert headers["Idempotency-Key"] == sent.delivery_id
    assert headers["Authorization"] == "Bearer t"
    assert json.loads(body) == sent.to_json()


async def test_a_server_that_never_answers_times_out(first: CertificateBundle) -> None:
    with socket.socket() as listener:  # accepts connections (the backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        async with WebhookSink(url, timeout=0.2) as sink:
            with pytest.raises(DeliveryError, match="time") as caught:
                await sink.deliver(delivery("vasp-1", first))
    assert caught.value.status_code is None


def test_both_sinks_under_trio(receiver: Receiver, tmp_path: Path) -> None:
    bundle = make_bundle(0x2323)

    async def main() -> None:
        await FolderSink(tmp_path).deliver(delivery("vasp/1", bundle))
        async with WebhookSink(receiver.url) as sink:
            await sink.deliver(delivery("vasp/1", bundle))

    anyio.run(main, backend="trio")
    assert load_certificate(tmp_path / "vasp%2F1").serial_number == "2323"
    assert json.loads(receiver.requests[0][2])["serial_number"] == "2323"
