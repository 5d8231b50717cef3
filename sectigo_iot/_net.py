"""Small network facts shared by the client, the emulator and the command line."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from .errors import InvalidInputError

__all__ = ["environment_proxy", "is_loopback"]

_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def environment_proxy(base_url: str) -> str | None:
    """The proxy the environment sets for ``base_url`` (an origin), or None.

    ``HTTPS_PROXY`` or ``HTTP_PROXY`` (by the URL's scheme), else ``ALL_PROXY``; the
    lower-case names win, as in curl. None for a loopback host (the emulator: a
    password for it never goes through a proxy) and for a host ``NO_PROXY`` lists.
    InvalidInputError, naming the variable, for a proxy that cannot be used: a scheme
    other than http, https, socks5 and socks5h, or SOCKS without ``socksio``.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    found = _proxy_variable(f"{parts.scheme}_proxy") or _proxy_variable("all_proxy")
    if found is None:
        return None
    name, url = found
    if _no_proxy_for(host.lower()):
        return None
    if "://" not in url:
        url = f"http://{url}"  # what curl and httpx read "proxy:3128" as
    proxy = urlsplit(url)
    scheme = proxy.scheme.lower()
    port = _port(url)
    shown = f"{scheme}://{proxy.hostname or ''}" + (f":{port}" if port else "")
    if scheme not in _PROXY_SCHEMES or not proxy.hostname:
        raise InvalidInputError(
            f"the proxy in {name} ({shown}) cannot be used: give an http://, https:// or "
            f"socks5:// proxy URL, unset {name}, or pass trust_env=False to use no proxy"
        )
    if scheme.startswith("socks") and not _has_socksio():
        raise InvalidInputError(
            f"the proxy in {name} ({shown}) is a SOCKS proxy, which needs the optional "
            f"package socksio: pip install 'httpx[socks]'; or unset {name}, or pass "
            "trust_env=False to use no proxy"
        )
    return url


def _proxy_variable(lower_name: str) -> tuple[str, str] | None:
    """(name, value) of the proxy variable ``lower_name`` (or its upper case), if set."""
    for name in (lower_name, lower_name.upper()):
        if name == "HTTP_PROXY" and "REQUEST_METHOD" in os.environ:
            continue  # under CGI it may come from a request header ("httpoxy")
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _no_proxy_for(host: str) -> bool:
    """Whether ``NO_PROXY`` lists ``host``: ``*``, the name, or a domain it is in
    (``example.com`` and ``.example.com`` both cover ``api.example.com``)."""
    listed = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in listed.lower().split(","):
        entry = entry.strip().lstrip(".")
        if entry.count(":") == 1:  # host:port; the port is not compared
            entry = entry.split(":", 1)[0]
        if entry == "*" or (entry and (host == entry or host.endswith(f".{entry}"))):
            return True
    return False


def _has_socksio() -> bool:
    import importlib.util  # on first use: only a SOCKS proxy needs it

    return importlib.util.find_spec("socksio") is not None


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None
