"""Validation of DNS names used as a common name or a subjectAltName."""

from __future__ import annotations

import re
import unicodedata

import idna

from ..errors import InvalidInputError

__all__ = ["show", "validate_domain"]

_JAPANESE = frozenset({"CJK", "HIRAGANA", "KATAKANA"})  # legitimately mixed in one label
_MAX_NAME = 253
_MAX_LABEL = 63
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


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
        scripts = {_script(ch) for ch in unicodedata.normalize("NFKC", label) if ch.isalpha()}
        if len(scripts) > 1:
            raise InvalidInputError(
                f"label {show(label, 20)} of domain name {show(text, 30)} mixes scripts "
                f"({', '.join(sorted(scripts))}), a sign of a look-alike (homograph) name"
            )


def validate_domain(name: str, *, allow_wildcard: bool = False) -> str:
    """Check a DNS name and return its normalized ASCII (A-label, lower-case) form.

    Internationalized names are converted with IDNA 2008 / UTS #46
    (``"bücher.example"`` -> ``"xn--bcher-kva.example"``). Surrounding whitespace and one
    trailing dot are dropped. A wildcard is accepted only with ``allow_wildcard=True`` and
    only as the whole leftmost label (``"*.example.com"``).

    Raises:
        InvalidInputError: the name is empty, too long (over 253 characters, or a label
            over 63), has whitespace, underscores or other illegal characters, a label that
            starts or ends with a hyphen, fewer than two labels, looks like an IP address,
            holds invisible characters, or has a label mixing scripts (a homograph).
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
    wildcard = text.startswith("*.")
    if wildcard:
        if not allow_wildcard:
            raise InvalidInputError(
                f"domain name {show(text)} is a wildcard; pass allow_wildcard=True "
                "if the certificate profile permits wildcards"
            )
        text = text[2:]
    if "*" in text:
        raise InvalidInputError(
            f"domain name {show(name.strip())} has a misplaced '*'; a wildcard may only be "
            "the whole leftmost label, as in '*.example.com'"
        )
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
    _check_unicode(text)
    if "_" in text:
        raise InvalidInputError(
            f"domain name {show(text)} contains an underscore, which host names may not have"
        )
    try:
        ascii_name = idna.encode(text, uts46=True, std3_rules=True).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError is a UnicodeError
        raise InvalidInputError(f"{show(text)} is not a valid domain name: {exc}") from None
    labels = ascii_name.split(".")
    for label in labels:
        if not _LDH_LABEL.fullmatch(label):
            raise InvalidInputError(
                f"domain name {show(text)} has an invalid label {show(label, 20)}: use letters, "
                "digits and hyphens, with no hyphen at either end, at most 63 characters"
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
    return ("*." if wildcard else "") + ascii_name
