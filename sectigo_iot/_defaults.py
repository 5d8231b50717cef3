"""Defaults shared by the client and the command line (a module cheap to import)."""

__all__ = ["DEFAULT_BASE_URL"]

#: the real service
DEFAULT_BASE_URL = "https://iot.sectigo.com"
