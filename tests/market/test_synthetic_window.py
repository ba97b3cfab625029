"""The synthetic source's kept window: cycle after cycle it makes only the new bars, and what it
returns is exactly what a full regeneration (and the generator before the window existed) gives.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from otonom_trader.market.candles import CandleSeries, find_issues, timeframe_seconds
from otonom_trader.market.symbols import to_unified
from otonom_trader.market.synthetic import (
    ANCHOR,
    BLOCK,
    SyntheticMarketData,
    SyntheticPath,
)


def _full_regeneration(
    seed: int, symbol: str, timeframe: str, limit: int, now: datetime
) -> CandleSeries:
    """The series made from scratch by a path of its own (no shared window, nothing kept)."""
    step = timeframe_seconds(timeframe)
    newest = int((now - ANCHOR).total_seconds() // step) - 1
    first = max(0, newest - limit + 1)
    candles = SyntheticPath(seed, 0.6, 48).bars(to_unified(symbol), step, first, newest)
    return CandleSeries(
        symbol, timeframe, tuple(candles), tuple(find_issues(symbol, candles, timeframe))
    )


def _digest(series: CandleSeries) -> str:
    rows = [
        (c.open_time.isoformat(), c.open, c.high, c.low, c.close, c.volume) for c in series.candles
    ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def test_cycles_when_advanced_one_bar_at_a_time_then_equal_to_full_regeneration() -> None:
    source = SyntheticMarketData(seed=71)
    start = ANCHOR + timedelta(hours=BLOCK - 150, minutes=7)  # crosses a block boundary
    for cycle in range(300):
        now = start + timedelta(hours=cycle)
        for symbol in ("BTC/USDT", "XRPUSDT"):
            assert source.fetch(symbol, "1h", 200, now) == _full_regeneration(
                71, symbol, "1h", 200, now
            ), f"cycle {cycle} {symbol}"


@pytest.mark.parametrize(
    ("hours", "limit"),
    [(0, 200), (5, 200), (-3, 200), (-400, 200), (900, 200), (0, 500), (1, 30), (0, 1)],
    ids=["same", "later", "earlier", "far-back", "far-ahead", "wider", "narrower", "one"],
)
def test_window_when_asked_out_of_step_then_still_equal_to_full_regeneration(
    hours: int, limit: int
) -> None:
    source = SyntheticMarketData(seed=72)
    base = datetime(2026, 2, 10, 8, 30, tzinfo=UTC)
    source.fetch("ETH/USDT", "1h", 200, base)  # leaves a window for the second fetch

    now = base + timedelta(hours=hours)
    assert source.fetch("ETH/USDT", "1h", limit, now) == _full_regeneration(
        72, "ETH/USDT", "1h", limit, now
    )


def test_values_when_fetched_then_identical_to_the_generator_before_the_window() -> None:
    # Digests recorded with the generator as it was before bars were kept (commit beabd20).
    source = SyntheticMarketData()
    cases = [
        ("BTC/USDT", "1h", 200, datetime(2026, 11, 29, 22, 17, tzinfo=UTC), "f6b96482348b7ba2"),
        ("XRPUSDT", "15m", 500, datetime(2025, 3, 1, tzinfo=UTC), "cacfba8daf610e5f"),
        ("FOO/USDT", "1d", 50, datetime(2026, 1, 1, tzinfo=UTC), "2d4f8e9ef30a57a5"),
        ("ETH/USDT", "1m", 300, datetime(2025, 1, 1, 3, tzinfo=UTC), "664b3bb2334cbbc0"),
    ]
    for symbol, timeframe, limit, now, expected in cases:
        assert _digest(source.fetch(symbol, timeframe, limit, now)) == expected, symbol
    newest = source.fetch("BTC/USDT", "1h", 1, datetime(2026, 11, 29, 22, 17, tzinfo=UTC))
    assert newest.candles[0].close == 91006.24073015798
    assert newest.candles[0].open == 90609.63336080273


def test_next_cycle_when_one_bar_later_then_only_that_bar_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = SyntheticMarketData(seed=73)
    path = SyntheticPath.shared(73, 0.6, 48)
    made: list[tuple[int, int]] = []
    original = path.bars

    def counting(symbol: str, step: int, lo: int, hi: int):  # type: ignore[no-untyped-def]
        made.append((lo, hi))
        return original(symbol, step, lo, hi)

    monkeypatch.setattr(path, "bars", counting)
    now = datetime(2026, 5, 1, 0, 30, tzinfo=UTC)
    source.fetch("BTC/USDT", "1h", 200, now)
    assert sum(hi - lo + 1 for lo, hi in made) == 200
    made.clear()

    # A new instance (a daemon building its components again) shares the process's window.
    SyntheticMarketData(seed=73).fetch("BTC/USDT", "1h", 200, now + timedelta(hours=1))

    assert sum(hi - lo + 1 for lo, hi in made) == 1


def test_window_when_many_cycles_then_bounded_by_the_largest_limit_asked() -> None:
    path = SyntheticPath(74, 0.6, 48)
    step = 3600
    for cycle in range(50):
        path.candles("BTC/USDT", "1h", 1000 + cycle, 1199 + cycle)
    start, kept = path._windows[("BTC/USDT", step)]
    assert len(kept) == 200 and start == 1049
