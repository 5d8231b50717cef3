"""Every case of the hostile-input catalogue gets its typed error (timing: bench/run.py).

The same catalogue feeds the ``hostile_input_worst_s`` benchmark metric; here only the
outcome is checked, never the time, so a slow CI box cannot make these tests flaky.
"""

from __future__ import annotations

import pytest

from sectigo_iot.certs import CertificateBundle, load_pkcs12
from sectigo_iot.certs._der import MAX_DEPTH, DERError, Reader
from sectigo_iot.certs._pkcs12_kdf import MAX_PKCS12_ITERATIONS, kdf_work
from sectigo_iot.errors import PKCS12PasswordError, SectigoError
from tests.certs.hostile_inputs import PASSWORD, HostileCase, catalogue

CASES = catalogue()


def _by_name(name: str) -> HostileCase:
    return next(case for case in CASES if case.name == name)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_gets_its_typed_error(case: HostileCase) -> None:
    if case.expected is None:
        bundle = case.entry(case.data)
        assert isinstance(bundle, CertificateBundle)
        return
    with pytest.raises(SectigoError) as info:
        case.entry(case.data)
    assert type(info.value) is case.expected, info.value
    assert str(info.value)  # says what was wrong


def test_the_catalogue_covers_every_entry_point_and_is_uniquely_named() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert {case.entry.__name__ for case in CASES} == {
        "open_zip",
        "open_p12",
        "open_pem",
        "open_csrs",
    }


def test_iteration_messages_give_the_count_and_the_cap() -> None:
    for name in ("p12-mac-iterations", "p12-encrypted-part-iterations", "zip-p12-bag-iterations"):
        case = _by_name(name)
        with pytest.raises(SectigoError, match=r"2,147,483,647 .*at most 1,000,000"):
            case.entry(case.data)
    case = _by_name("p12-many-parts-under-the-cap-each")
    with pytest.raises(SectigoError, match=r"add up to 2,000,000 iterations; at most 1,000,000"):
        case.entry(case.data)


def test_where_each_bomb_hides_is_found() -> None:
    where = {
        name: kdf_work(_by_name(name).data)
        for name in (
            "p12-mac-iterations",
            "p12-encrypted-part-iterations",
            "p12-shrouded-key-iterations",
            "p12-pbes2-pbkdf2-iterations",
            "p12-pbes2-scrypt-cost",
        )
    }
    bomb = 2**31 - 1
    assert where["p12-mac-iterations"] == [("the integrity check (MAC)", bomb)]
    assert where["p12-encrypted-part-iterations"] == [("an encrypted part (certificates)", bomb)]
    assert where["p12-shrouded-key-iterations"] == [
        ("the encrypted private key", bomb),
        ("the integrity check (MAC)", 1),
    ]
    assert where["p12-pbes2-pbkdf2-iterations"] == [("the encrypted private key", bomb)]
    assert where["p12-pbes2-scrypt-cost"] == [
        ("an encrypted part (certificates) (scrypt N·r·p)", 2**14 * 8 * 2**16)
    ]


def test_a_file_at_the_cap_opens_and_one_more_iteration_is_refused() -> None:
    data = _by_name("p12-at-the-iteration-cap").data
    assert sum(count for _, count in kdf_work(data)) == MAX_PKCS12_ITERATIONS
    assert load_pkcs12(data, PASSWORD).common_name == "hostile.example.com"
    with pytest.raises(PKCS12PasswordError):  # the cap is checked first, then the password
        load_pkcs12(data, "wrong")


def test_der_reader_bounds() -> None:
    nested = b"\x30\x80" * (MAX_DEPTH + 2)
    with pytest.raises(DERError, match="nested more than"):
        Reader(nested).root()
    within = b"\x30\x80" * MAX_DEPTH + b"\x00\x00" * MAX_DEPTH
    reader = Reader(within)
    assert reader.root().next == len(within)
    for data, message in [
        (b"", "missing"),
        (b"\x30", "truncated inside"),
        (b"\x30\x05\x02\x01", "longer than"),
        (b"\x04\x80\x00\x00", "primitive element has an indefinite length"),
        (b"\x30\x85\x00\x00\x00\x00\x01\x00", "impossibly large"),
        (b"\x30\x80\x02\x01\x01", "missing"),  # no end-of-contents
    ]:
        with pytest.raises(DERError, match=message):
            Reader(data).root()
