"""Many certificates keyed by the application's own ids, kept in a store."""

from ._model import Delivery, FleetRecord, HistoryEntry, RecordState, StepResult
from ._sqlite import SQLiteStore
from ._store import KEY_ENV, Store, StoreError

__all__ = [
    "KEY_ENV",
    "Delivery",
    "FleetRecord",
    "HistoryEntry",
    "RecordState",
    "SQLiteStore",
    "StepResult",
    "Store",
    "StoreError",
]
