"""Typed models of the API's bodies and the converter that maps them to JSON."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._converter import (
        converter,
        format_date,
        make_converter,
        parse_date,
        parse_dates,
        strict_converter,
    )

from . import _models
from ._models import *  # noqa: F403  (the models; their names are _models.__all__)


def __getattr__(name: str) -> Any:
    """The converter and its helpers load on first use: cattrs is slow to import."""
    if name in _CONVERTER_NAMES:
        from . import _converter

        return getattr(_converter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "converter",
    "format_date",
    "make_converter",
    "parse_date",
    "parse_dates",
    "strict_converter",
]
#: the names of ``_converter``, loaded on first use by ``__getattr__``
_CONVERTER_NAMES = frozenset(__all__)
__all__ += _models.__all__
