"""``ManualClock``: aware UTC time that moves only when told to (tests and fire drills).

Every component takes a ``clock`` (a callable returning an aware UTC ``datetime``); this is the
one implementation the tests and the kill-switch drill inject instead of the system clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class ManualClock:
    """A clock at ``now`` until ``advance`` (or an assignment to ``now``) moves it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"the clock needs an aware UTC time, got naive {start}")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: float | None = None, **delta: float) -> datetime:
        """Move forward by ``hours`` and/or ``timedelta`` keywords (``minutes=5``); with no
        argument, one hour (one candle of the 1h test strategies). Returns the new time."""
        if hours is None and not delta:
            hours = 1.0
        self.now += timedelta(hours=hours or 0.0, **delta)
        return self.now
