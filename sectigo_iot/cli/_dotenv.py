"""``.env`` in the working directory, read at start-up as the original tool did.

Only ``SECTIGO_*`` and ``SIAS_*`` variables are taken (other keys are ignored, so a
stray ``.env`` cannot set e.g. proxies or CA bundles), and only those not already in
the environment: real environment variables win. The file is parsed, never run: no
``$VAR`` expansion, no command substitution. A line that does not parse is skipped
with a warning that names the line number, never its content (it may hold a secret).

Format: ``KEY=VALUE`` per line, optionally after ``export``; ``#`` starts a comment
line, or an inline comment after a space in an unquoted value; ``'single'`` quotes are
literal; ``"double"`` quotes understand ``\\n``, ``\\r``, ``\\t``, ``\\"`` and ``\\\\``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._output import note

__all__ = ["DOTENV_PREFIXES", "MAX_DOTENV_BYTES", "dotenv_applied", "parse_dotenv"]

MAX_DOTENV_BYTES = 64 * 1024
DOTENV_PREFIXES = ("SECTIGO_", "SIAS_")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def parse_dotenv(text: str) -> tuple[dict[str, str], list[str]]:
    """The variables of a ``.env`` text, and one problem per line that was skipped."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            problems.append(f"line {number}: expected KEY=VALUE")
            continue
        try:
            values[key] = _value(rest.strip())
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    return values, problems


def _value(text: str) -> str:
    if not text or text[0] not in "'\"":
        return re.split(r"\s#", text, maxsplit=1)[0].strip()
    quote, index = text[0], 1
    chars: list[str] = []
    while index < len(text):
        char = text[index]
        if char == quote:
            trailing = text[index + 1 :].strip()
            if trailing and not trailing.startswith("#"):
                raise ValueError("unexpected text after the closing quote")
            return "".join(chars)
        if char == "\\" and quote == '"' and index + 1 < len(text):
            following = text[index + 1]
            chars.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        chars.append(char)
        index += 1
    raise ValueError("unterminated quoted value (multi-line values are not supported)")


def _read(path: Path) -> dict[str, str]:
    """The variables of ``path`` the CLI may take, warning about what it skips."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DOTENV_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        _warn(f"could not read {where}: {exc.strerror or exc}; ignored")
        return {}
    if len(data) > MAX_DOTENV_BYTES:
        _warn(f"{where} is larger than {MAX_DOTENV_BYTES // 1024} KiB; ignored")
        return {}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        _warn(f"{where} is not UTF-8 text; ignored")
        return {}
    values, problems = parse_dotenv(text)
    for problem in problems:
        _warn(f"{where} {problem}; line ignored")
    return {key: value for key, value in values.items() if key.startswith(DOTENV_PREFIXES)}


def _warn(message: str) -> None:
    note(f"warning: {message}")


@contextmanager
def dotenv_applied(path: Path = Path(".env")) -> Iterator[dict[str, str]]:
    """Set the variables of ``path`` missing from the environment while the block runs.

    Yields what was set; the environment is restored afterwards (the CLI also runs in
    process, under tests).
    """
    added = {key: value for key, value in _read(path).items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield added
    finally:
        for key in added:
            os.environ.pop(key, None)
