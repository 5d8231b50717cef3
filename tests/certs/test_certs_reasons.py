"""RevocationReason (spec/cli.md §4) and generate_password (spec/cli.md §5, DESIGN.md)."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo_iot.certs import RevocationReason, generate_password
from sectigo_iot.errors import InvalidInputError

# (input, code): the table of spec/cli.md §4, plus case, whitespace and separator variants.
ACCEPTED = [
    ("unspecified", 0),
    ("", 0),
    ("   ", 0),
    ("keycompromise", 1),
    ("Key Compromise", 1),
    ("cacompromise", 2),
    ("CA Compromise", 2),
    ("affiliationchanged", 3),
    ("Affiliation Changed", 3),
    ("superseded", 4),
    ("SUPERSEDED", 4),
    ("cessationofoperation", 5),
    ("Cessation Of Operation", 5),
    ("cessation of operation", 5),
    ("CESSATIONOFOPERATION", 5),
    ("cessation\tof\noperation", 5),  # all whitespace, not only spaces
    ("cessation\u00a0of operation", 5),
    ("CESSATION_OF_OPERATION", 5),
    ("cessation-of-operation", 5),
    ("certificatehold", 6),
    ("Certificate Hold", 6),
    ("removefromcrl", 8),
    ("Remove From CRL", 8),
    ("privilegewithdrawn", 9),
    ("Privilege Withdrawn", 9),
    ("aacompromise", 10),
    ("AA Compromise", 10),
    ("0", 0),
    (" 5 ", 5),
    ("+3", 3),
    ("08", 8),
    ("10", 10),
    (4, 4),
    (0, 0),
]

DISPLAY = {
    0: "unspecified",
    1: "key compromise",
    2: "ca compromise",
    3: "affiliation changed",
    4: "superseded",
    5: "cessation of operation",
    6: "certificate hold",
    8: "remove from crl",
    9: "privilege withdrawn",
    10: "aa compromise",
}


@pytest.mark.parametrize(("value", "code"), ACCEPTED)
def test_parse(value: str | int, code: int) -> None:
    reason = RevocationReason.parse(value)
    assert isinstance(reason, RevocationReason)
    assert reason == code


def test_members_codes_and_display_names() -> None:
    assert {r.value: r.display for r in RevocationReason} == DISPLAY
    assert RevocationReason.CESSATION_OF_OPERATION.display == "cessation of operation"
    assert json.dumps({"reasonCode": RevocationReason.KEY_COMPROMISE}) == '{"reasonCode": 1}'
    assert RevocationReason.parse(RevocationReason.SUPERSEDED) is RevocationReason.SUPERSEDED


@pytest.mark.parametrize("value", [7, "7", "value 7 is not used", "value7isnotused"])
def test_code_7_is_rejected(value: str | int) -> None:
    with pytest.raises(InvalidInputError, match=r"not used|unknown"):
        RevocationReason.parse(value)


@pytest.mark.parametrize(
    "value", [-1, 11, 99, "11", "-1", "+11", "- 1", "999999999999999999999999", "1" * 5000]
)
def test_out_of_range_codes(value: str | int) -> None:
    with pytest.raises(InvalidInputError, match="0-6 or 8-10"):
        RevocationReason.parse(value)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError) as info:
        RevocationReason.parse("foo")
    message = str(info.value)
    assert message.startswith('unknown revocation reason "foo"; use one of: unspecified, ')
    for name in DISPLAY.values():
        assert name in message


@pytest.mark.parametrize("value", [True, False, None, 1.0, b"superseded", ["superseded"]])
def test_wrong_types_are_rejected(value: object) -> None:
    with pytest.raises(InvalidInputError):
        RevocationReason.parse(value)  # type: ignore[arg-type]


_SEPARATORS = st.text(alphabet=" \t\n_-\u00a0\u2003", max_size=3)


@given(reason=st.sampled_from(list(RevocationReason)), data=st.data())
def test_display_names_round_trip(reason: RevocationReason, data: st.DataObject) -> None:
    assert RevocationReason.parse(reason.display) is reason
    # Any casing and any separators between the words still parse.
    words = reason.display.split()
    cased = [data.draw(st.sampled_from([w, w.upper(), w.title()])) for w in words]
    text = data.draw(_SEPARATORS).join(cased) if len(cased) > 1 else cased[0]
    text = data.draw(_SEPARATORS) + text + data.draw(_SEPARATORS)
    assert RevocationReason.parse(text) is reason


@given(st.text())
def test_random_text_only_raises_invalid_input(text: str) -> None:
    try:
        result = RevocationReason.parse(text)
    except InvalidInputError:
        return
    assert isinstance(result, RevocationReason)


@given(st.integers())
def test_random_ints(value: int) -> None:
    if value in DISPLAY:
        assert RevocationReason.parse(value) == value
    else:
        with pytest.raises(InvalidInputError):
            RevocationReason.parse(value)


# -- generate_password ---------------------------------------------------------------------


def test_password_default_length_and_alphabet() -> None:
    alphabet = set(string.ascii_letters + string.digits)
    password = generate_password()
    assert len(password) == 24
    assert set(password) <= alphabet
    assert len(generate_password(40)) == 40
    assert len(generate_password(16)) == 16


def test_passwords_are_unique_and_use_the_whole_alphabet() -> None:
    passwords = {generate_password() for _ in range(500)}
    assert len(passwords) == 500
    used = set("".join(passwords))
    # 12,000 draws from 62 characters: every character shows up (missing one: p < 1e-80).
    assert used == set(string.ascii_letters + string.digits)


@pytest.mark.parametrize("length", [15, 0, -1])
def test_short_passwords_are_refused(length: int) -> None:
    with pytest.raises(InvalidInputError, match="at least 16"):
        generate_password(length)


@pytest.mark.parametrize("length", [24.0, "24", True])
def test_password_length_must_be_an_int(length: object) -> None:
    with pytest.raises(InvalidInputError, match="must be an int"):
        generate_password(length)  # type: ignore[arg-type]
