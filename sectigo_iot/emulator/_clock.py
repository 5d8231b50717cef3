"""The emulator's clock: wall-clock time plus an offset that tests can move forward."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

__all__ = ["Clock"]


class Clock:
    """Epoch seconds as the emulator sees them.

    By default the clock follows the wall clock; ``advance()`` moves it forward (token
    expiry, processing delays). With ``start`` the clock is frozen at that epoch time
    and only ``advance()`` moves it. Calling the clock is the same as ``now()``.
    """

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen = start is not None
        self._base = float(start) if start is not None else 0.0

    def now(self) -> float:
        """The current emulator time in epoch seconds."""
        with self._lock:
            return self._base if self._frozen else time.time() + self._base

    __call__ = now

    def datetime(self) -> datetime:
        """The current emulator time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._base += seconds

    def __repr__(self) -> str:
        kind = "frozen" if self._frozen else "running"
        return f"<Clock {kind} at {self.datetime().isoformat()}>"
