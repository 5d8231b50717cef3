"""CertificateBundle, load_pem_bundle and write_pem, checked with the openssl command line."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_iot.certs import CertificateBundle, load_pem_bundle, write_pem
from sectigo_iot.errors import InvalidInputError
from tests.certs.helpers import (
    PKI,
    key_pem,
    mutations,
    openssl,
    openssl_ok,
    pem,
    pem_block,
)
from tests.certs.hostile_inputs import same_name_certificates
from tests.support import needs_openssl

pytestmark = needs_openssl

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and symlinks")


@pytest.fixture
def bundle(pki: PKI) -> CertificateBundle:
    return load_pem_bundle(
        pem(pki.leaf) + pem(pki.intermediate) + pem(pki.root) + key_pem(pki.leaf_key)
    )


# -- load_pem_bundle and CertificateBundle -------------------------------------------------


def test_leaf_is_found_whatever_the_order(pki: PKI) -> None:
    shuffled = pem(pki.root) + pem(pki.leaf) + key_pem(pki.leaf_key) + pem(pki.intermediate)
    for data, has_key in (
        (shuffled, True),
        (pem(pki.intermediate) + pem(pki.root) + pem(pki.leaf), False),
    ):
        bundle = load_pem_bundle(data, source="x.pem")
        assert bundle.certificate == pki.leaf
        assert bundle.chain == (pki.intermediate, pki.root)
        assert (bundle.private_key is not None) == has_key
        assert bundle.source == "x.pem"


def test_key_decides_the_leaf_when_present(pki: PKI, other_pki: PKI) -> None:
    # Two unrelated leaves: without a key the first wins, with a key the matching one.
    data = pem(pki.leaf) + pem(other_pki.leaf)
    assert load_pem_bundle(data).certificate == pki.leaf
    assert load_pem_bundle(data + key_pem(other_pki.leaf_key)).certificate == other_pki.leaf


def test_duplicate_certificates_are_dropped(pki: PKI) -> None:
    bundle = load_pem_bundle(pem(pki.leaf) * 2 + pem(pki.root) * 2)
    assert bundle.chain == (pki.root,)


def test_properties_agree_with_openssl(bundle: CertificateBundle, tmp_path: Path) -> None:
    path = tmp_path / "leaf.pem"
    path.write_bytes(bundle.certificate_pem)
    assert bundle.serial_number == "ABCDEF0123"  # no leading zeros, upper case
    assert f"serial={bundle.serial_number}" in openssl("x509", "-in", path, "-noout", "-serial")
    fingerprint = openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256")
    assert fingerprint.strip() == f"sha256 Fingerprint={bundle.fingerprint_sha256}"
    assert bundle.subject == "CN=api.example.com,O=Test PKI,C=US"
    assert bundle.issuer == "CN=Test Issuing CA,O=Test PKI,C=US"
    assert bundle.common_name == "api.example.com"
    assert bundle.sans == ("api.example.com", "www.api.example.com")
    assert bundle.key_type == "ec-p256"
    assert bundle.not_before.tzinfo is not None and bundle.not_before.utcoffset() == timedelta(0)
    end = openssl("x509", "-in", path, "-noout", "-enddate").strip().split("=", 1)[1]
    assert bundle.not_after == datetime.strptime(end, "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=timezone.utc
    )


def test_expires_within(bundle: CertificateBundle) -> None:
    now = bundle.not_after - timedelta(days=10)
    assert bundle.expires_within(10, now=now)
    assert bundle.expires_within(30, now=now)
    assert not bundle.expires_within(9, now=now)
    assert not bundle.expires_within(300)  # the fixture leaf is valid for 395 days


def test_repr_and_dict_never_show_the_key(bundle: CertificateBundle) -> None:
    text = repr(bundle)
    assert text.startswith(
        "CertificateBundle(common_name='api.example.com', serial_number='ABCDEF0123'"
    )
    assert "private_key=True" in text
    assert "EllipticCurvePrivateKey" not in text
    summary = bundle.to_dict()
    encoded = json.dumps(summary)
    assert "PRIVATE" not in encoded
    assert summary["has_private_key"] is True
    assert summary["sans"] == ["api.example.com", "www.api.example.com"]
    assert [c["subject"] for c in summary["chain"]] == [
        "CN=Test Issuing CA,O=Test PKI,C=US",
        "CN=Test Root CA,O=Test PKI,C=US",
    ]
    assert summary["not_after"] == bundle.not_after.isoformat()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
    ],
)
def test_bad_pem(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_pem_bundle(data)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n", r"block on line {} has no END line.*truncated"),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----BEGIN CERTIFICATE-----\n",
            "begins inside the 'CERTIFICATE' block on line {}, whose END line is missing",
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n",
            "block on line {} ends with an END 'PRIVATE KEY' line",
        ),
    ],
)
def test_damaged_blocks_are_named(pki: PKI, tail: bytes, message: str) -> None:
    # a good certificate first: a damaged block is refused, not silently skipped
    line = pem(pki.leaf).count(b"\n") + 1
    with pytest.raises(InvalidInputError, match=message.format(line)):
        load_pem_bundle(pem(pki.leaf) + tail, source="x.pem")


def test_stray_end_lines_and_other_blocks_are_ignored(pki: PKI) -> None:
    data = b"-----END CERTIFICATE-----\n" + pem(pki.leaf) + pem_block(b"x", "X509 CRL")
    assert load_pem_bundle(data).certificate == pki.leaf


def test_at_most_100_certificates(pki: PKI) -> None:
    certs = same_name_certificates(101)
    bundle = load_pem_bundle(b"".join(certs[:100]))
    # all share one name: the first is the leaf, the others follow in their order
    assert bundle.certificate.serial_number == 1
    assert [c.serial_number for c in bundle.chain] == list(range(2, 101))
    with pytest.raises(InvalidInputError, match="more than 100 certificates"):
        load_pem_bundle(b"".join(certs), source="big.pem")


def test_chain_follows_issuers_across_same_name_certificates(pki: PKI) -> None:
    # Two certificates named like the intermediate: the chain takes the first one in the
    # input for the leaf's issuer name, and the one not on the path goes last.
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    twin = (
        x509.CertificateBuilder()
        .subject_name(pki.intermediate.subject)
        .issuer_name(pki.intermediate.issuer)
        .public_key(key.public_key())
        .serial_number(99)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    bundle = load_pem_bundle(pem(pki.root) + pem(twin) + pem(pki.intermediate) + pem(pki.leaf))
    assert bundle.certificate == pki.leaf
    assert bundle.chain == (twin, pki.root, pki.intermediate)


def test_two_keys_are_refused(pki: PKI, other_pki: PKI) -> None:
    with pytest.raises(InvalidInputError, match="more than one private key"):
        load_pem_bundle(pem(pki.leaf) + key_pem(pki.leaf_key) + key_pem(other_pki.leaf_key))


# -- write_pem -----------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_every_folder_created_for_pem_files_is_private(
    bundle: CertificateBundle, tmp_path: Path, umask: int
) -> None:
    folder = tmp_path / "a" / "b" / "c"
    old = os.umask(umask)
    try:
        write_pem(bundle, folder)
    finally:
        os.umask(old)
    for level in (tmp_path / "a", tmp_path / "a" / "b", folder):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level


def test_write_pem_files_modes_and_contents(
    bundle: CertificateBundle, tmp_path: Path, pki: PKI
) -> None:
    folder = tmp_path / "out" / "certs"
    old = os.umask(0o077)  # certificates still get 0644: the mode is set explicitly
    try:
        paths = write_pem(bundle, folder)
    finally:
        os.umask(old)
    assert set(paths) == {"cert", "chain", "fullchain", "key"}
    assert {p.name for p in folder.iterdir()} == {
        "cert.pem",
        "chain.pem",
        "fullchain.pem",
        "key.pem",
    }
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths["key"].stat().st_mode) == 0o600
    for role in ("cert", "chain", "fullchain"):
        assert stat.S_IMODE(paths[role].stat().st_mode) == 0o644

    assert "CN = api.example.com" in openssl("x509", "-in", paths["cert"], "-noout", "-subject")
    assert paths["fullchain"].read_bytes().count(b"BEGIN CERTIFICATE") == 3
    assert paths["chain"].read_bytes() == pem(pki.intermediate) + pem(pki.root)
    root = tmp_path / "root.pem"
    root.write_bytes(pem(pki.root))
    assert "OK" in openssl("verify", "-CAfile", root, "-untrusted", paths["chain"], paths["cert"])
    assert paths["key"].read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert openssl("pkey", "-in", paths["key"], "-pubout") == openssl(
        "x509", "-in", paths["cert"], "-noout", "-pubkey"
    )


def test_encrypted_key(bundle: CertificateBundle, tmp_path: Path) -> None:
    paths = write_pem(bundle, tmp_path, key_passphrase="correct horse")
    assert paths["key"].read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert openssl_ok("pkey", "-in", paths["key"], "-passin", "pass:correct horse", "-noout")
    assert not openssl_ok("pkey", "-in", paths["key"], "-passin", "pass:wrong", "-noout")


def test_no_key_and_no_chain_means_fewer_files(pki: PKI, tmp_path: Path) -> None:
    paths = write_pem(load_pem_bundle(pem(pki.leaf)), tmp_path)
    assert set(paths) == {"cert", "fullchain"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "fullchain.pem"]
    assert paths["cert"].read_bytes() == paths["fullchain"].read_bytes() == pem(pki.leaf)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_refusing_to_overwrite_writes_nothing(
    bundle: CertificateBundle, other_pki: PKI, tmp_path: Path
) -> None:
    write_pem(bundle, tmp_path)
    before = _snapshot(tmp_path)
    other = load_pem_bundle(pem(other_pki.leaf) + key_pem(other_pki.leaf_key))
    with pytest.raises(InvalidInputError, match=r"already exists.*overwrite=True"):
        write_pem(other, tmp_path)
    assert _snapshot(tmp_path) == before


def test_one_existing_target_blocks_all(bundle: CertificateBundle, tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("keep me")
    with pytest.raises(InvalidInputError, match=r"key\.pem already exists"):
        write_pem(bundle, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]
    assert (tmp_path / "key.pem").read_text() == "keep me"


@posix_only
def test_overwrite_replaces_files_and_resets_modes(
    bundle: CertificateBundle, other_pki: PKI, tmp_path: Path
) -> None:
    write_pem(bundle, tmp_path)
    (tmp_path / "key.pem").chmod(0o666)
    other = load_pem_bundle(
        pem(other_pki.leaf) + pem(other_pki.intermediate) + key_pem(other_pki.leaf_key)
    )
    paths = write_pem(other, tmp_path, overwrite=True)
    assert paths["cert"].read_bytes() == pem(other_pki.leaf)
    assert paths["chain"].read_bytes() == pem(other_pki.intermediate)
    assert stat.S_IMODE(paths["key"].stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cert.pem",
        "chain.pem",
        "fullchain.pem",
        "key.pem",
    ]


@posix_only
@pytest.mark.parametrize("overwrite", [False, True])
def test_symlink_target_is_refused(
    bundle: CertificateBundle, tmp_path: Path, overwrite: bool
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "key.pem").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="symlink"):
        write_pem(bundle, folder, overwrite=overwrite)
    assert outside.read_text() == "secret"
    assert sorted(p.name for p in folder.iterdir()) == ["key.pem"]


def test_folder_that_is_a_file(bundle: CertificateBundle, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InvalidInputError, match="not a directory"):
        write_pem(bundle, path)


def test_empty_passphrase_is_refused_before_writing(
    bundle: CertificateBundle, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="passphrase"):
        write_pem(bundle, tmp_path / "out", key_passphrase="")
    assert list(tmp_path.iterdir()) == []


def test_failure_leaves_no_temp_files(
    bundle: CertificateBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_fsync = os.fsync

    def flaky_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_pem(bundle, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_linking_undoes_new_files(
    bundle: CertificateBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def link(src: str, dst: str) -> None:
        if str(dst).endswith("key.pem"):
            (tmp_path / "key.pem").write_text("raced")  # another writer got there first
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(InvalidInputError, match="appeared while writing"):
        write_pem(bundle, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]
    assert (tmp_path / "key.pem").read_text() == "raced"


def test_lazily_parsed_fields_are_checked_up_front(pki: PKI) -> None:
    der = bytearray(pki.leaf.public_bytes(Encoding.DER))
    at = der.index(b"\x0c\x0fapi.example.com")  # the subject CN, a UTF8String
    der[at] = 0x01  # now a BOOLEAN 15 bytes long: loads, but the subject cannot be read
    with pytest.raises(InvalidInputError, match=r"x\.pem: certificate #1 is malformed"):
        load_pem_bundle(pem_block(bytes(der), "CERTIFICATE"), source="x.pem")


def test_damaged_certificates_raise_only_invalid_input(pki: PKI) -> None:
    der = pki.leaf.public_bytes(Encoding.DER)
    rejected = 0
    for damaged in mutations(der, 400, seed=5):
        try:
            bundle = load_pem_bundle(pem_block(damaged, "CERTIFICATE"))
        except InvalidInputError:
            rejected += 1
            continue
        bundle.to_dict()  # everything a caller reads works on what did load
        repr(bundle)
    assert rejected > 200
