"""The commands of ``sectigo``, one module per area; ``cli._app`` adds them to the
application with each module's ``register(app)``.

The API areas are named as the SDK's resources and the emulator's areas: ``auth``,
``account`` (authorities, licenses, profiles, organization), ``batches`` and
``certificates``. The others are the CLI's own: ``files`` (csr, inspect: offline),
``lifecycle`` (issue, renew), ``fleet`` (many certificates in a store, by key),
``inventory`` (certs list: the certificates of folders and a fleet), ``emulator``
(serve, validate, demo) and ``completion``.
"""

from . import (
    account,
    auth,
    batches,
    certificates,
    completion,
    emulator,
    files,
    fleet,
    inventory,
    lifecycle,
)

__all__ = ["AREAS"]

#: the command modules, in the order ``sectigo --help`` lists their commands (Typer lists
#: a group such as ``auth`` after the plain commands)
AREAS = (
    account,
    batches,
    certificates,
    files,
    lifecycle,
    emulator,
    completion,
    auth,
    fleet,
    inventory,
)
