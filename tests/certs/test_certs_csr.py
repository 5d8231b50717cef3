"""generate_csr, load_csrs and validate_domain, judged by the openssl command line."""

from __future__ import annotations

import subprocess
import time
import warnings
from pathlib import Path

import idna
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import sectigo_iot.certs._csr as csr_module
from sectigo_iot.certs import (
    KEY_TYPES,
    AbbreviatedStateWarning,
    CSRResult,
    generate_csr,
    load_csrs,
    validate_domain,
)
from sectigo_iot.errors import InvalidCSRError, InvalidInputError
from tests.certs.helpers import (
    TRISA_CONF,
    make_csr,
    mutations,
    openssl,
    openssl_ok,
    pem_block,
)
from tests.support import needs_openssl

pytestmark = needs_openssl


@pytest.fixture(scope="module")
def rsa4096() -> CSRResult:
    """The one RSA-4096 key of the suite (slow to generate)."""
    return generate_csr("api.example.com", ["www.example.com", "API.example.com."])


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _openssl_csr(
    tmp_path: Path, cn: str, *extra: str, newkey: str = "ec", san: bool = True
) -> bytes:
    """Make a CSR with openssl -subj (and a SAN unless san=False)."""
    args: list[str] = ["req", "-new", "-nodes", "-subj", f"/CN={cn}"]
    if newkey == "ec":
        args += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        args += ["-newkey", newkey]
    args += ["-keyout", str(tmp_path / f"{cn}.key"), "-out", str(tmp_path / f"{cn}.csr")]
    if san:
        args += ["-addext", f"subjectAltName=DNS:{cn}"]
    openssl(*args, *extra)
    return (tmp_path / f"{cn}.csr").read_bytes()


def _trisa_csr(tmp_path: Path, cn: str, *, newhdr: bool = False) -> bytes:
    """Make a CSR the documented way: openssl req -new -config trisa.conf."""
    conf = _write(tmp_path, f"{cn}.conf", TRISA_CONF.format(cn=cn).encode())
    out = tmp_path / f"{cn}.csr"
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha384", "-config", conf,
        "-keyout", tmp_path / f"{cn}.key", "-out", out, *(["-newhdr"] if newhdr else []),
    )  # fmt: skip
    return out.read_bytes()


# -- generate_csr --------------------------------------------------------------------------


def test_rsa4096_csr_is_the_documented_recipe(rsa4096: CSRResult, tmp_path: Path) -> None:
    path = _write(tmp_path, "req.csr", rsa4096.csr_pem)
    assert "verify OK" in openssl("req", "-in", path, "-verify", "-noout")
    text = openssl("req", "-in", path, "-noout", "-text")
    assert (
        "C = US, ST = California, L = Menlo Park, O = TRISA Member VASP, CN = api.example.com"
        in text
    )
    assert "DNS:api.example.com, DNS:www.example.com" in text
    assert text.count("DNS:") == 2  # the duplicate "API.example.com." was dropped
    assert "Digital Signature, Non Repudiation, Key Encipherment" in text
    assert "TLS Web Client Authentication, TLS Web Server Authentication" in text
    assert "CA:FALSE" in text
    assert "sha384WithRSAEncryption" in text
    assert "Public-Key: (4096 bit)" in text
    assert rsa4096.key_type == "rsa4096"
    assert rsa4096.dns_names == ("api.example.com", "www.example.com")


def test_key_is_pkcs8_and_matches_the_csr(rsa4096: CSRResult, tmp_path: Path) -> None:
    assert rsa4096.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = _write(tmp_path, "key.pem", rsa4096.key_pem)
    req = _write(tmp_path, "req.csr", rsa4096.csr_pem)
    assert openssl("pkey", "-in", key, "-pubout") == openssl("req", "-in", req, "-pubkey", "-noout")


def test_repr_hides_the_key(rsa4096: CSRResult) -> None:
    assert "PRIVATE" not in repr(rsa4096)
    assert "key_pem" not in repr(rsa4096)


@pytest.mark.parametrize(
    ("key_type", "signature", "size"),
    [
        ("rsa2048", "sha256WithRSAEncryption", "(2048 bit)"),
        ("ec-p256", "ecdsa-with-SHA256", "(256 bit)"),
        ("ec-p384", "ecdsa-with-SHA384", "(384 bit)"),
    ],
)
def test_other_key_types(key_type: str, signature: str, size: str, tmp_path: Path) -> None:
    result = generate_csr("node.example.org", key_type=key_type)
    path = _write(tmp_path, "req.csr", result.csr_pem)
    assert "verify OK" in openssl("req", "-in", path, "-verify", "-noout")
    text = openssl("req", "-in", path, "-noout", "-text")
    assert signature in text
    assert size in text
    assert "DNS:node.example.org" in text
    # EC keys cannot encipher: keyEncipherment is only requested for RSA keys.
    assert ("Key Encipherment" in text) == key_type.startswith("rsa")
    assert result.key_type == key_type


def test_encrypted_key(tmp_path: Path) -> None:
    result = generate_csr("enc.example.com", key_type="ec-p256", passphrase="s3cret-pass")
    assert result.key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = _write(tmp_path, "key.pem", result.key_pem)
    assert openssl_ok("pkey", "-in", key, "-passin", "pass:s3cret-pass", "-noout")
    assert not openssl_ok("pkey", "-in", key, "-passin", "pass:wrong", "-noout")


def test_names_are_normalized_and_deduplicated() -> None:
    result = generate_csr(
        "Bücher.Example", ["www.example.com", "xn--bcher-kva.example", "WWW.example.com"],
        key_type="ec-p256",
    )  # fmt: skip
    assert result.common_name == "xn--bcher-kva.example"
    assert result.dns_names == ("xn--bcher-kva.example", "www.example.com")
    csr = x509.load_pem_x509_csr(result.csr_pem)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(result.dns_names)


def test_country_is_upper_cased(tmp_path: Path) -> None:
    result = generate_csr("a.example.com", country="de", state="Berlin", key_type="ec-p256")
    text = openssl("req", "-in", _write(tmp_path, "r.csr", result.csr_pem), "-noout", "-subject")
    assert "C = DE" in text


@pytest.mark.parametrize("country", ["USA", "U", "", "U1", "ÜS", "  "])
def test_bad_country(country: str) -> None:
    with pytest.raises(InvalidInputError, match="two-letter"):
        generate_csr("a.example.com", country=country, key_type="ec-p256")


def test_abbreviated_state_warns() -> None:
    with pytest.warns(AbbreviatedStateWarning, match="California"):
        result = generate_csr("a.example.com", state="CA", key_type="ec-p256")
    assert b"CERTIFICATE REQUEST" in result.csr_pem


def test_full_state_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generate_csr("a.example.com", state="California", key_type="ec-p256")


def test_unknown_key_type_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError) as info:
        generate_csr("a.example.com", key_type="dsa1024")
    for name in KEY_TYPES:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"common_name": "a" * 60 + ".example.com"}, "at most 64"),
        ({"common_name": "bad_name.example.com"}, "underscore"),
        ({"common_name": "*.example.com", "allow_wildcard": False}, "wildcard"),
        ({"common_name": "*.com"}, "top-level domain"),
        ({"common_name": "a.example.com", "dns_names": "www.example.com"}, "not a single string"),
        ({"common_name": "a.example.com", "dns_names": ["ok.example.com", "no way"]}, "whitespace"),
        ({"common_name": "a.example.com", "country": "USA"}, "two-letter"),
        ({"common_name": "a.example.com", "organization": ""}, "organization is empty"),
        ({"common_name": "a.example.com", "organization": "x" * 65}, "longer than 64"),
        ({"common_name": "a.example.com", "locality": "Menlo\nPark"}, "control"),
        ({"common_name": "a.example.com", "key_type": "rsa1024"}, "unknown key type"),
        ({"common_name": "a.example.com", "passphrase": ""}, "passphrase"),
    ],
)
def test_inputs_are_checked_before_a_key_is_generated(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], message: str
) -> None:
    def no_keygen(key_type: str) -> None:
        raise AssertionError("a key was generated before the inputs were checked")

    monkeypatch.setattr(csr_module, "new_private_key", no_keygen)
    with pytest.raises(InvalidInputError, match=message):
        generate_csr(**kwargs)  # type: ignore[arg-type]


def test_wildcard_by_default(tmp_path: Path) -> None:
    result = generate_csr("*.example.com", ["example.com"], key_type="ec-p256")
    text = openssl("req", "-in", _write(tmp_path, "r.csr", result.csr_pem), "-noout", "-text")
    assert "DNS:*.example.com, DNS:example.com" in text


def test_generated_csr_passes_load_csrs() -> None:
    result = generate_csr("api.example.net", ["alt.example.net"], key_type="ec-p384")
    [info] = load_csrs(result.csr_pem)
    assert info.common_name == "api.example.net"
    assert info.dns_names == ("api.example.net", "alt.example.net")
    assert info.key_type == "ec-p384"


# -- load_csrs: accepted input -------------------------------------------------------------


def test_openssl_trisa_recipe_csr_is_accepted(tmp_path: Path) -> None:
    data = _trisa_csr(tmp_path, "vasp.example.com")
    [info] = load_csrs(data)
    assert info.common_name == "vasp.example.com"
    assert info.dns_names == ("vasp.example.com",)
    assert info.key_type == "rsa2048"
    assert x509.load_pem_x509_csr(info.pem).is_signature_valid


def test_two_concatenated_csrs_from_a_path(tmp_path: Path) -> None:
    first = _trisa_csr(tmp_path, "one.example.com")
    second = _trisa_csr(tmp_path, "two.example.com", newhdr=True)  # NEW CERTIFICATE REQUEST
    assert b"BEGIN NEW CERTIFICATE REQUEST" in second
    path = _write(tmp_path, "batch.csr", first + b"\n" + second)
    for source in (path, str(path), path.read_bytes(), path.read_text()):
        infos = load_csrs(source)
        assert [i.common_name for i in infos] == ["one.example.com", "two.example.com"]
    # The PEM is re-encoded with the standard label.
    assert infos[1].pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")


def test_pem_text_with_leading_whitespace_is_text_not_a_path(tmp_path: Path) -> None:
    text = "\n  " + _openssl_csr(tmp_path, "ws.example.com").decode()
    assert load_csrs(text)[0].common_name == "ws.example.com"


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InvalidCSRError, match=r"could not read .*nope\.csr"):
        load_csrs(str(tmp_path / "nope.csr"))


# -- load_csrs: rejected input -------------------------------------------------------------


def test_bad_signature_names_the_csr(tmp_path: Path) -> None:
    good = _openssl_csr(tmp_path, "good.example.com")
    bad_pem = _openssl_csr(tmp_path, "bad.example.com")
    der = bytearray(x509.load_pem_x509_csr(bad_pem).public_bytes(Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature
    (tmp_path / "t.der").write_bytes(bytes(der))
    bad = openssl("req", "-inform", "DER", "-in", tmp_path / "t.der", "-outform", "PEM")
    path = _write(tmp_path, "bad.csr", bad.encode())
    assert "verify failure" in openssl("req", "-in", path, "-verify", "-noout", check=False)
    with pytest.raises(InvalidCSRError, match="invalid signature") as info:
        load_csrs(good + bad.encode())
    assert info.value.index == 1
    assert info.value.common_name == "bad.example.com"
    assert str(info.value).startswith("CSR #2 (CN=bad.example.com): ")


def test_csr_without_san_is_rejected(tmp_path: Path) -> None:
    data = _openssl_csr(tmp_path, "nosan.example.com", san=False)
    with pytest.raises(InvalidCSRError, match="dNSName value is missing") as info:
        load_csrs(data)
    assert info.value.index == 0
    assert "CSR #1 (CN=nosan.example.com)" in str(info.value)


def test_weak_rsa_key_is_rejected(tmp_path: Path) -> None:
    data = _openssl_csr(tmp_path, "weak.example.com", newkey="rsa:1024")
    with pytest.raises(InvalidCSRError, match="1024-bit RSA key; use at least 2048") as info:
        load_csrs(data)
    assert "CN=weak.example.com" in str(info.value)


def test_sha1_signature_is_rejected(tmp_path: Path) -> None:
    data = _openssl_csr(tmp_path, "sha1.example.com", "-sha1", newkey="rsa:2048")
    assert "sha1WithRSAEncryption" in openssl(
        "req", "-in", _write(tmp_path, "s.csr", data), "-noout", "-text"
    )
    with pytest.raises(InvalidCSRError, match="SHA1") as info:
        load_csrs(data)
    assert "CSR #1 (CN=sha1.example.com)" in str(info.value)


def test_other_curves_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", path)
    data = openssl(
        "req", "-new", "-key", path, "-subj", "/CN=p521.example.com",
        "-addext", "subjectAltName=DNS:p521.example.com",
    )  # fmt: skip
    with pytest.raises(InvalidCSRError, match="secp521r1; use P-256 or P-384"):
        load_csrs(data)


def test_invalid_san_dns_name_is_rejected(tmp_path: Path) -> None:
    san = "subjectAltName=DNS:ok.example.com,DNS:bad_name.com"
    data = _openssl_csr(tmp_path, "ok.example.com", "-addext", san, san=False)
    with pytest.raises(InvalidCSRError, match="underscore"):
        load_csrs(data)


@pytest.mark.parametrize(
    ("cn", "sans"),
    [
        ("API.Example.com", ["www.example.com", "api.example.com"]),  # case does not matter
        ("api.example.com.", ["api.example.com"]),  # nor a trailing dot
        ("b\u00fccher.example", ["xn--bcher-kva.example"]),  # U-label CN, A-label SAN
        ("*.example.com", ["example.com", "*.example.com"]),
    ],
)
def test_common_name_among_the_sans_is_accepted(cn: str, sans: list[str]) -> None:
    [info] = load_csrs(make_csr(cn, sans))
    assert info.common_name == cn
    assert info.dns_names == tuple(sans)


@pytest.mark.parametrize(
    ("cn", "sans", "message"),
    [
        ("api.example.com", ["www.example.com"], "not among its subjectAltName DNS names"),
        ("example.com", ["*.example.com"], "not among"),  # a wildcard does not cover its base
        ("My Server", ["a.example.com"], "common name that is not a valid domain name.*whitesp"),
        ("localhost", ["localhost.example.com"], "not a valid domain name.*single label"),
        ("*.com", ["*.com"], "top-level domain"),  # refused as a SAN first
        ("\u0430\u0440\u0440\u04cf\u0435.com", ["xn--80ak6aa92e.com"], "reads as 'apple'"),
        (None, ["a.example.com"], "has no common name"),
    ],
)
def test_common_name_rules(cn: str | None, sans: list[str], message: str) -> None:
    good = make_csr("good.example.com", ["good.example.com"])
    with pytest.raises(InvalidCSRError, match=message) as info:
        load_csrs(good + make_csr(cn, sans))
    assert info.value.index == 1
    assert str(info.value).startswith("CSR #2")
    assert info.value.common_name == (cn or "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no CSR found: the input is empty"),
        (b"   \n", "the input is empty"),
        (b"hello, I am not a CSR", "no CSR found"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n",
         "CSR #1: has a damaged base64 body"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
         "CSR #1: does not parse"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n", "CSR #1: is truncated"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "Never upload a private key"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
         "only CERTIFICATE REQUEST blocks"),
    ],
)  # fmt: skip
def test_garbage_is_rejected(data: bytes | str, message: str) -> None:
    with pytest.raises(InvalidCSRError, match=message):
        load_csrs(data)


def test_a_private_key_next_to_a_csr_is_refused(tmp_path: Path) -> None:
    data = _openssl_csr(tmp_path, "k.example.com") + (tmp_path / "k.example.com.key").read_bytes()
    with pytest.raises(InvalidCSRError, match="private key"):
        load_csrs(data)


def test_count_and_size_caps(tmp_path: Path) -> None:
    one = _openssl_csr(tmp_path, "c.example.com")
    assert len(load_csrs(one * 1000)) == 1000
    with pytest.raises(InvalidCSRError, match="more than 1000 CSRs"):
        load_csrs(one * 1001)
    with pytest.raises(InvalidCSRError, match="larger than 1024 KiB"):
        load_csrs(one + b"\n" * (1024 * 1024))


# -- validate_domain -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("example.com", "example.com"),
        ("API.Example.COM", "api.example.com"),
        ("  api.example.com.  ", "api.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        (".".join(["a" * 61] * 4), ".".join(["a" * 61] * 4)),  # 247 characters
    ],
)
def test_valid_domains(name: str, expected: str) -> None:
    assert validate_domain(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (".", "empty"),
        ("exa mple.com", "whitespace"),
        ("example.com\t.org", "whitespace"),
        ("a" * 64 + ".example", "at most 63"),
        (".".join(["a" * 63] * 4) + "x", "limit is 253"),
        ("a..example", "empty label"),
        (".example.com", "empty label"),
        ("_acme.example.com", "underscore"),
        ("-ab.example.com", "hyphen"),
        ("ab-.example.com", "hyphen"),
        ("ex!mple.com", "not a valid domain name"),
        ("localhost", "single label"),
        ("192.168.1.1", "IP address"),
        ("a.*.example.com", "misplaced"),
        ("*example.com", "misplaced"),
        ("**.x.com", "misplaced"),
        ("f*o.example.com", "misplaced"),
        ("*.com", "whole top-level domain"),
        ("*.\u0440\u0444", "whole top-level domain"),
        ("xn--zz.example", "not a valid domain name"),
        # whole-script homographs: every letter is Cyrillic (or Greek) but looks Latin
        ("\u0430\u0440\u0440\u04cf\u0435.com", "Cyrillic letters that all look like Latin"),
        ("\u0410\u0420\u0420\u04c0\u0415.com", "reads as 'apple'"),  # upper case
        ("xn--80ak6aa92e.com", "reads as 'apple'"),  # the same, typed as an A-label
        ("\u0440\u0430\u0443\u0440\u0430\u04cf.com", "reads as 'paypal'"),
        ("\u03bf\u03ba.example", "Greek letters that all look like Latin"),
        ("www.\u0441\u043e\u0440\u0435.example", "reads as 'cope'"),
    ],
)
def test_invalid_domains(name: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_domain(name)


def test_wildcards() -> None:
    assert validate_domain("*.Example.com") == "*.example.com"
    assert validate_domain("*.bücher.example") == "*.xn--bcher-kva.example"
    assert validate_domain("*.co.uk") == "*.co.uk"  # two labels: no public-suffix list
    for bad in ("*example.com", "a*.example.com", "*.*.example.com", "*", "*.", "*.com."):
        with pytest.raises(InvalidInputError):
            validate_domain(bad)
    with pytest.raises(InvalidInputError, match="wildcard, which is not allowed here"):
        validate_domain("*.example.com", allow_wildcard=False)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "xn--e1afmkfd.xn--p1ai"),
        ("\u043e\u043a\u043d\u043e.\u0440\u0444", "xn--j1agbc.xn--p1ai"),  # U+043D: no twin
        ("\u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac.gr", "xn--hxargifdar.gr"),
        ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
    ],
)
def test_genuine_non_latin_names_are_kept(name: str, expected: str) -> None:
    # a non-Latin label with one letter that has no Latin twin is not a homograph
    assert validate_domain(name) == expected


def test_non_string_domain() -> None:
    with pytest.raises(InvalidInputError, match="must be a str"):
        validate_domain(b"example.com")  # type: ignore[arg-type]


def test_long_input_is_rejected_before_idna(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("idna.encode was called on an over-long name")

    monkeypatch.setattr(idna, "encode", fail)
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match="limit is 253"):
        validate_domain("ü" * 100_000 + ".example")
    with pytest.raises(InvalidInputError, match="at most 63"):
        validate_domain("ü" * 64 + ".example")
    assert time.perf_counter() - start < 0.5


def test_damaged_csrs_raise_only_invalid_csr_error() -> None:
    pem_csr = generate_csr("fuzz.example.com", ["www.fuzz.example.com"], key_type="ec-p256").csr_pem
    der = x509.load_pem_x509_csr(pem_csr).public_bytes(Encoding.DER)
    samples = [pem_block(d, "CERTIFICATE REQUEST") for d in mutations(der, 300, seed=3)]
    samples += mutations(pem_csr, 300, seed=4)
    rejected = 0
    for data in samples:
        try:
            load_csrs(data)
        except InvalidCSRError:
            rejected += 1
    assert rejected > len(samples) * 0.9


def test_a_csr_for_a_key_we_already_hold(tmp_path: Path) -> None:
    made = generate_csr("held.example.com", key_type="ec-p256")
    again = generate_csr("held.example.com", key_type="ec-p256", private_key=made.key_pem)
    assert again.key_pem == made.key_pem
    (tmp_path / "req.pem").write_bytes(again.csr_pem)
    (tmp_path / "key.pem").write_bytes(made.key_pem)
    from_csr = subprocess.run(
        ["openssl", "req", "-in", str(tmp_path / "req.pem"), "-noout", "-pubkey", "-verify"],
        capture_output=True,
        text=True,
        check=True,
    )
    from_key = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "key.pem"), "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert from_key.stdout in from_csr.stdout  # openssl: signed by, and for, our key
    with pytest.raises(InvalidInputError, match="ec-p256 key, not rsa2048"):
        generate_csr("held.example.com", key_type="rsa2048", private_key=made.key_pem)
    with pytest.raises(InvalidInputError, match="not an unencrypted PEM"):
        generate_csr("held.example.com", key_type="ec-p256", private_key=b"junk")
