"""The original emulator's ``SIAS_*`` configuration, for ``serve`` and ``validate``.

Mapped: ``SIAS_BIND_ADDR`` (listen address), ``SIAS_LOG_LEVEL`` (server log level),
``SIAS_CA_PATH`` (a PEM file with the CA certificate and its key),
``SIAS_AUTH_USERNAME`` and ``SIAS_AUTH_PASSWORD`` (the one login; both or neither) and
``SIAS_AUTH_ISSUER`` (the tokens' ``iss``). The others have no equivalent here and are
ignored with a warning: ``SIAS_MODE`` and ``SIAS_CONSOLE_LOG`` (gin and zerolog
settings), ``SIAS_AUTH_SUBJECT`` and ``SIAS_AUTH_SCOPES`` (this emulator derives them
from the user and the token kind) and ``SIAS_AUTH_SECRET`` (the signing key is random
per database).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import CLIError
from ._files import read_capped
from ._secrets import remember_secret

if TYPE_CHECKING:
    from ..emulator import CertificateAuthority

__all__ = ["IGNORED", "SiasConfig", "load_sias", "parse_addr"]

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8831
DEFAULT_ISSUER = "https://emulator.sectigo-iot.invalid/"
DEFAULT_LOG_LEVEL = "warn"
MAX_CA_BYTES = 1024 * 1024
#: zerolog level name -> (zerolog's integer, as the original prints it; uvicorn's name)
LOG_LEVELS = {
    "trace": (-1, "trace"),
    "debug": (0, "debug"),
    "info": (1, "info"),
    "warn": (2, "warning"),
    "warning": (2, "warning"),
    "error": (3, "error"),
    "fatal": (4, "critical"),
    "panic": (5, "critical"),
}
#: variables of the original emulator with no equivalent here
IGNORED = (
    "SIAS_MODE",
    "SIAS_CONSOLE_LOG",
    "SIAS_AUTH_SUBJECT",
    "SIAS_AUTH_SCOPES",
    "SIAS_AUTH_SECRET",
)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"}


@attrs.frozen(kw_only=True)
class SiasConfig:
    """The emulator settings ``serve`` uses, resolved from flags and ``SIAS_*``."""

    host: str
    port: int
    log_level: str
    ca_path: str
    username: str | None
    password: str | None = attrs.field(repr=False)
    issuer: str

    @property
    def log_level_name(self) -> str:
        """The server's (uvicorn's) name of the log level."""
        return LOG_LEVELS[self.log_level][1]

    @property
    def bind_addr(self) -> str:
        """``HOST:PORT`` (``[HOST]:PORT`` for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def emulator_options(self) -> dict[str, Any]:
        """Keywords for :class:`~sectigo_iot.emulator.Emulator` (users, issuer, CA)."""
        options: dict[str, Any] = {"issuer": self.issuer}
        if self.username is not None and self.password is not None:
            options["users"] = {self.username: self.password}
        if self.ca_path:
            options["ca"] = load_ca(Path(self.ca_path))
        return options

    def to_json(self) -> dict[str, Any]:
        """The configuration the way the original ``validate`` printed it, secrets
        masked (only the settings that apply here)."""
        from ..emulator import DEFAULT_USERNAME

        return {
            "BindAddr": self.bind_addr,
            "LogLevel": LOG_LEVELS[self.log_level][0],
            "CAPath": self.ca_path,
            "Auth": {
                "Username": self.username if self.username is not None else DEFAULT_USERNAME,
                "Password": "***",
                "Issuer": self.issuer,
            },
        }


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (every interface: ``0.0.0.0``)."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise CLIError(f"address {text!r} must be [HOST]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise CLIError(f"address {text!r} must be HOST:PORT (or :PORT)")
        if ":" in host:
            raise CLIError(f"address {text!r}: put an IPv6 host in brackets, [HOST]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise CLIError(f"address {text!r}: the port must be a number from 0 to 65535")
    return host or "0.0.0.0", int(port_text)  # noqa: S104 - refused without --allow-remote


def load_sias(
    *, addr: str | None = None, host: str | None = None, port: int | None = None
) -> SiasConfig:
    """The configuration from ``SIAS_*``; ``addr``, or ``host``/``port``, override the
    bind address (``addr`` with ``host`` or ``port`` is a usage error)."""
    env = os.environ
    if addr is not None and (host is not None or port is not None):
        raise CLIError("--addr cannot be combined with --host or --port; give HOST:PORT once")
    if addr is not None:
        bind = parse_addr(addr)
    elif host is not None or port is not None:
        bind = (host or DEFAULT_HOST, DEFAULT_PORT if port is None else port)
    elif env.get("SIAS_BIND_ADDR", "").strip():
        bind = parse_addr(env["SIAS_BIND_ADDR"])
    else:
        bind = (DEFAULT_HOST, DEFAULT_PORT)
    level = env.get("SIAS_LOG_LEVEL", "").strip().lower() or DEFAULT_LOG_LEVEL
    if level not in LOG_LEVELS:
        raise CLIError(
            f"SIAS_LOG_LEVEL {level!r} is not one of panic, fatal, error, warn, info, debug, trace"
        )
    username, password = env.get("SIAS_AUTH_USERNAME"), env.get("SIAS_AUTH_PASSWORD")
    if (username is None) != (password is None) or username == "" or password == "":
        raise CLIError("set both SIAS_AUTH_USERNAME and SIAS_AUTH_PASSWORD (non-empty), or neither")
    remember_secret(password)
    for name in IGNORED:
        if env.get(name):
            sys.stderr.write(f"warning: {name} has no equivalent in this emulator; ignored\n")
    config = SiasConfig(
        host=bind[0],
        port=bind[1],
        log_level=level,
        ca_path=env.get("SIAS_CA_PATH", "").strip(),
        username=username,
        password=password,
        issuer=env.get("SIAS_AUTH_ISSUER", "").strip() or DEFAULT_ISSUER,
    )
    if config.ca_path:
        load_ca(Path(config.ca_path))  # checked now, before anything listens
    return config


def load_ca(path: Path) -> CertificateAuthority:
    """The CA of ``SIAS_CA_PATH``: a PEM file with certificates (the first one issues)
    and one unencrypted private key."""
    from cryptography.hazmat.primitives import serialization

    from ..emulator import CertificateAuthority

    if path.suffix.lower() in (".gz", ".zip"):
        raise CLIError(
            f"SIAS_CA_PATH {path}: only plain PEM files are supported, not {path.suffix}"
        )
    data = read_capped(path, MAX_CA_BYTES, "CA file")
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(data)]
    certs = [block for label, block in blocks if label == b"CERTIFICATE"]
    keys = [block for label, block in blocks if label in _KEY_LABELS]
    if not certs or len(keys) != 1:
        raise CLIError(
            f"SIAS_CA_PATH {path} must hold PEM certificates and exactly one unencrypted "
            "private key"
        )
    try:
        ca = CertificateAuthority.from_pem(certs[0], keys[0])
        key = serialization.load_pem_private_key(keys[0], password=None)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"SIAS_CA_PATH {path}: {exc}") from None
    if _public(key.public_key()) != _public(ca.certificate.public_key()):
        raise CLIError(f"SIAS_CA_PATH {path}: the private key does not match the first certificate")
    return ca


def _public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
