"""Secrets of this run (passwords given to the CLI), masked in everything it prints."""

from __future__ import annotations

__all__ = ["forget_secrets", "remember_secret", "scrub_text"]

_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Mask this exact value in every error line and traceback of this run."""
    if value and len(value) >= 4:
        _secrets.add(value)


def forget_secrets() -> None:
    """Start a run with no remembered secrets."""
    _secrets.clear()


def scrub_text(text: str) -> str:
    """``text`` with the SDK's known secrets and the CLI's own passwords masked."""
    from .._logging import redact

    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text)
