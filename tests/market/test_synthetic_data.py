"""The synthetic source: deterministic, seed-dependent, advancing with time, realistic."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from otonom_trader.market.config import DataConfig
from otonom_trader.market.sources import build_market_data
from otonom_trader.market.synthetic import SyntheticMarketData

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_same_seed_and_time_when_fetched_by_two_instances_then_identical() -> None:
    first = SyntheticMarketData(seed=5).fetch("BTC/USDT", "1h", 300, NOW)
    second = SyntheticMarketData(seed=5).fetch("BTC/USDT", "1h", 300, NOW)
    assert first == second
    assert len(first.candles) == 300 and first.tradable


def test_other_seed_when_fetched_then_different_prices() -> None:
    first = SyntheticMarketData(seed=5).fetch("BTC/USDT", "1h", 50, NOW).closes()
    other = SyntheticMarketData(seed=6).fetch("BTC/USDT", "1h", 50, NOW).closes()
    assert first != other


def test_exchange_spelling_when_fetched_then_same_market_prices() -> None:
    source = SyntheticMarketData(seed=5)
    assert (
        source.fetch("BTCUSDT", "1h", 20, NOW).closes()
        == source.fetch("BTC/USDT", "1h", 20, NOW).closes()
    )


def test_now_when_advanced_then_new_closed_candles_appear_and_old_ones_keep_their_values() -> None:
    source = SyntheticMarketData(seed=5)
    earlier = source.fetch("ETH/USDT", "1h", 100, NOW)
    later = source.fetch("ETH/USDT", "1h", 100, NOW + timedelta(hours=3))

    assert later.candles[-1].open_time == earlier.candles[-1].open_time + timedelta(hours=3)
    assert later.candles[:-3] == earlier.candles[3:]  # history never changes
    # only closed candles: the newest closed at or before now
    assert earlier.candles[-1].open_time + timedelta(hours=1) <= NOW
    assert earlier.candles[-1].open_time + timedelta(hours=2) > NOW


def test_several_symbols_when_fetched_then_distinct_paths_near_their_markets() -> None:
    source = SyntheticMarketData(seed=5)
    closes = {
        s: source.fetch(s, "1h", 100, NOW).closes() for s in ("BTC/USDT", "ETH/USDT", "ADA/USDT")
    }
    assert 10_000 < closes["BTC/USDT"][-1] < 400_000
    assert 500 < closes["ETH/USDT"][-1] < 20_000
    assert 0.05 < closes["ADA/USDT"][-1] < 5
    returns = {
        s: [math.log(b / a) for a, b in zip(c, c[1:], strict=False)] for s, c in closes.items()
    }
    assert abs(statistics.correlation(returns["BTC/USDT"], returns["ETH/USDT"])) < 0.5


@pytest.mark.parametrize(("seed", "volatility_pct"), [(1, 30.0), (42, 60.0), (7, 100.0)])
def test_volatility_when_measured_over_a_long_window_then_near_the_configured_value(
    seed: int, volatility_pct: float
) -> None:
    series = SyntheticMarketData(seed, volatility_pct).fetch("BTC/USDT", "1h", 3000, NOW)
    closes = series.closes()
    returns = [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]

    annualized = statistics.pstdev(returns) * math.sqrt(365 * 24) * 100

    assert 0.85 * volatility_pct < annualized < 1.2 * volatility_pct


def test_candles_when_generated_then_consistent_ohlc_and_chained_opens() -> None:
    series = SyntheticMarketData(seed=3).fetch("BTC/USDT", "15m", 500, NOW)
    assert series.issues == ()
    for prev, cur in zip(series.candles, series.candles[1:], strict=False):
        assert cur.open == prev.close
        assert cur.low <= min(cur.open, cur.close) <= max(cur.open, cur.close) <= cur.high
        assert cur.volume > 0


def test_trends_when_a_long_window_then_both_directions_occur() -> None:
    closes = SyntheticMarketData(seed=42).fetch("BTC/USDT", "1h", 1000, NOW).closes()
    windows = [closes[i + 48] / closes[i] - 1 for i in range(0, 950, 48)]
    assert max(windows) > 0.02 and min(windows) < -0.02


def test_build_market_data_when_default_config_then_synthetic_from_config_values() -> None:
    source = build_market_data(DataConfig(seed=9, annual_volatility_pct=40.0))
    assert isinstance(source, SyntheticMarketData)
    assert (source.seed, source.annual_volatility) == (9, 0.4)
