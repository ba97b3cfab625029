"""Daemon fixtures: a controllable clock and the always-trading test strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ALWAYS_TRADE = Path(__file__).resolve().parents[1] / "fixtures" / "always_buy_v1.0.yaml"


class SteppingClock:
    """A clock the test moves: each ``advance`` is one candle later."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: float = 1.0) -> None:
        self.now += timedelta(hours=hours)


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC))


@pytest.fixture
def always_trade() -> Path:
    return ALWAYS_TRADE
