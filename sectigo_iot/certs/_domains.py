"""Validation of DNS names used as a common name or a subjectAltName."""

from __future__ import annotations

import contextlib
import re
import unicodedata

import idna

from ..errors import InvalidInputError

__all__ = ["show", "validate_domain"]

_JAPANESE = frozenset({"CJK", "HIRAGANA", "KATAKANA"})  # legitimately mixed in one label
_MAX_NAME = 253
_MAX_LABEL = 63
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# Lower-case letters of other scripts that look like a Latin letter (after the lists of
# browsers' IDN spoof checks and Unicode's confusables), with the letter they look like. A
# label written only with them reads as a Latin word: U+0430 U+0440 U+0440 U+04CF U+0435,
# all Cyrillic, looks like "apple". The look-alikes are the point of these tables.
_CYRILLIC = "асԁеһіјӏорԛѕԝхуъьҽпгѵѡкү"
_GREEK = "αγικνορσυχω"
_LATIN_LOOKALIKES = {
    "CYRILLIC": dict(zip(_CYRILLIC, "acdehijlopqswxybbenrvwky", strict=True)),
    "GREEK": dict(zip(_GREEK, "ayikvopouxw", strict=True)),
}


def show(value: str, limit: int = 60) -> str:
    """Quote ``value`` for an error message, cut to ``limit`` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (``LATIN``, ``CYRILLIC``, ...)."""
    script = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
    return "CJK" if script in _JAPANESE else script


def _check_unicode(text: str) -> None:
    """Refuse invisible characters and labels mixing scripts (homograph look-alikes).

    UTS #46 would silently drop or map such characters, so ``exa\u200bmple.com`` would
    become ``example.com``: the name certified would not be the name typed.
    """
    if text.isascii():
        return
    for ch in text:
        if unicodedata.category(ch) in ("Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidInputError(
                f"domain name {show(text)} contains an invisible or control character "
                f"(U+{ord(ch):04X}); type the name again"
            )
    for label in text.split("."):
        letters = [ch for ch in unicodedata.normalize("NFKC", label).lower() if ch.isalpha()]
        scripts = {_script(ch) for ch in letters}
        if len(scripts) > 1:
            raise InvalidInputError(
                f"label {show(label, 20)} of domain name {show(text, 30)} mixes scripts "
                f"({', '.join(sorted(scripts))}), a sign of a look-alike (homograph) name"
            )
        lookalikes = _LATIN_LOOKALIKES.get(scripts.pop()) if scripts else None
        if lookalikes is not None and all(ch in lookalikes for ch in letters):
            reading = "".join(lookalikes.get(ch, ch) for ch in label.lower())
            raise InvalidInputError(
                f"label {show(label, 20)} of domain name {show(text, 30)} is written in "
                f"{_script(letters[0]).title()} letters that all look like Latin ones (it "
                f"reads as {show(reading, 20)}), a sign of a look-alike (homograph) name"
            )


def _decode_a_labels(text: str) -> str:
    """``text`` with its ``xn--`` labels decoded, so a typed A-label is checked like Unicode."""
    labels = text.split(".")
    for index, label in enumerate(labels):
        if label[:4].lower() == "xn--":
            with contextlib.suppress(UnicodeError):  # a bad A-label is refused further on
                labels[index] = idna.decode(label)
    return ".".join(labels)


def validate_domain(name: str, *, allow_wildcard: bool = True) -> str:
    """Check a DNS name and return its normalized ASCII (A-label, lower-case) form.

    Internationalized names are converted with IDNA 2008 / UTS #46
    (``"bücher.example"`` -> ``"xn--bcher-kva.example"``). Surrounding whitespace and one
    trailing dot are dropped. A wildcard is accepted only as the whole leftmost label,
    over at least two labels (``"*.example.com"``, not ``"*.com"``); pass
    ``allow_wildcard=False`` to refuse wildcards.

    Raises:
        InvalidInputError: the name is empty, too long (over 253 characters, or a label
            over 63), has whitespace, underscores or other illegal characters, a label that
            starts or ends with a hyphen, fewer than two labels, looks like an IP address,
            holds invisible characters, has a label mixing scripts or a label written
            only with non-Latin letters that look like Latin ones (a homograph), or a
            misplaced or too broad wildcard.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"a domain name must be a str, not {type(name).__name__}")
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidInputError("the domain name is empty; give a name such as 'example.com'")
    # Length limits come before any IDNA processing (CVE-2024-3651: idna is slow on long input).
    if len(text) > _MAX_NAME:
        raise InvalidInputError(
            f"domain name {show(text)} is {len(text)} characters long; the limit is {_MAX_NAME}"
        )
    if any(ch.isspace() for ch in text):
        raise InvalidInputError(f"domain name {show(text)} contains whitespace; remove it")
    text, wildcard = _without_wildcard(name, text, allow_wildcard=allow_wildcard)
    _check_raw_labels(text)
    _check_unicode(_decode_a_labels(text))
    if "_" in text:
        raise InvalidInputError(
            f"domain name {show(text)} contains an underscore, which host names may not have"
        )
    try:
        ascii_name = idna.encode(text, uts46=True, std3_rules=True).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError is a UnicodeError
        raise InvalidInputError(f"{show(text)} is not a valid domain name: {exc}") from None
    _check_ascii_name(name, text, ascii_name, wildcard=wildcard)
    return ("*." if wildcard else "") + ascii_name


def _without_wildcard(name: str, text: str, *, allow_wildcard: bool) -> tuple[str, bool]:
    """``text`` without its leading ``*.``, and whether it had one; a wildcard that is
    not allowed, or a ``*`` anywhere else, is refused."""
    wildcard = text.startswith("*.")
    if wildcard:
        if not allow_wildcard:
            raise InvalidInputError(
                f"domain name {show(text)} is a wildcard, which is not allowed here"
            )
        text = text[2:]
    if "*" in text:
        raise InvalidInputError(
            f"domain name {show(name.strip())} has a misplaced '*'; a wildcard may only be "
            "the whole leftmost label, as in '*.example.com'"
        )
    return text, wildcard


def _check_raw_labels(text: str) -> None:
    """No empty label and none too long, before any IDNA processing."""
    for label in text.split("."):
        if not label:
            raise InvalidInputError(
                f"domain name {show(text)} has an empty label (a leading dot or two dots in a row)"
            )
        if len(label) > _MAX_LABEL:
            raise InvalidInputError(
                f"label {show(label, 20)} of domain name {show(text, 30)} is {len(label)} "
                f"characters long; a label has at most {_MAX_LABEL}"
            )


def _check_ascii_name(name: str, text: str, ascii_name: str, *, wildcard: bool) -> None:
    """The ASCII form's labels, their number (a wildcard needs two after it), no IP
    address, and the length of the whole name with its wildcard."""
    labels = ascii_name.split(".")
    for label in labels:
        if not _LDH_LABEL.fullmatch(label):
            raise InvalidInputError(
                f"domain name {show(text)} has an invalid label {show(label, 20)}: use letters, "
                "digits and hyphens, with no hyphen at either end, at most 63 characters"
            )
    if wildcard and len(labels) < 2:
        raise InvalidInputError(
            f"wildcard {show(name.strip())} would cover a whole top-level domain; a wildcard "
            "needs at least two labels after '*.', as in '*.example.com'"
        )
    if len(labels) < 2:
        raise InvalidInputError(
            f"domain name {show(text)} has a single label; give a fully qualified name "
            "such as 'api.example.com'"
        )
    if labels[-1].isdigit():
        raise InvalidInputError(
            f"{show(text)} looks like an IP address; a DNS name is required here"
        )
    if len(ascii_name) + (2 if wildcard else 0) > _MAX_NAME:
        raise InvalidInputError(
            f"domain name {show(text)} is longer than {_MAX_NAME} characters in ASCII form"
        )
