"""Daemon fixtures: a controllable clock and the always-trading test strategy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from otonom_trader.testkit.clock import ManualClock

ALWAYS_TRADE = Path(__file__).resolve().parents[1] / "fixtures" / "always_buy_v1.0.yaml"


@pytest.fixture
def clock() -> ManualClock:
    """Each ``advance()`` is one candle (1h) later."""
    return ManualClock(datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC))


@pytest.fixture
def always_trade() -> Path:
    return ALWAYS_TRADE
