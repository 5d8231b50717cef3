"""Many certificates keyed by the application's own ids, kept valid by any number of
workers: a store (SQLite by default, PostgreSQL for replicas), leases with fencing
tokens, and delivery to sinks.

::

    from sectigo_iot.fleet import Fleet, FolderSink, SQLiteStore
    from sectigo_iot.lifecycle import CertificateSpec

    async with Fleet(client, SQLiteStore("fleet.sqlite3"), sinks=[FolderSink("certs")]) as fleet:
        await fleet.want("vasp-8d2f", CertificateSpec(authority_id=1, common_name="a.example"))
        await fleet.run()
"""

from ._fleet import Fleet, Sink
from ._model import Delivery, FleetRecord, HistoryEntry, RecordState, StepResult
from ._open import open_store
from ._postgres import PostgresStore
from ._sinks import DeliveryError, FolderSink, WebhookSink
from ._sqlite import SQLiteStore
from ._store import KEY_ENV, SCHEMA_VERSION, Store, StoreError

__all__ = [
    "KEY_ENV",
    "SCHEMA_VERSION",
    "Delivery",
    "DeliveryError",
    "Fleet",
    "FleetRecord",
    "FolderSink",
    "HistoryEntry",
    "PostgresStore",
    "RecordState",
    "SQLiteStore",
    "Sink",
    "StepResult",
    "Store",
    "StoreError",
    "WebhookSink",
    "open_store",
]
