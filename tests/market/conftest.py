"""Market fixtures: the shipped real BTC/USDT hourly candles, and a local Binance serving them
over HTTP with a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.candles import Candle
from otonom_trader.market.csv_source import CsvMarketData
from otonom_trader.testkit.clock import ManualClock

BTC_1H = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "candles"
BTC_1H_CSV = BTC_1H / "btcusdt_1h.csv"


@pytest.fixture
def btc_1h_csv() -> Path:
    """The shipped CSV of real BTC/USDT hourly candles (a skip when it is not there)."""
    if not BTC_1H_CSV.is_file():
        pytest.skip(f"real candles not beside the repository ({BTC_1H_CSV})")
    return BTC_1H_CSV


@pytest.fixture
def btc_1h(btc_1h_csv: Path) -> list[Candle]:
    """916 real BTC/USDT hourly candles, 2023-01-02 17:00 → 2023-02-09 20:00 UTC, no gaps, at
    the exchange's 8 decimals (the file's volumes carry float noise from their roll-up:
    4115.313999999999 is served, and stored, as 4115.314)."""
    far_future = datetime(2100, 1, 1, tzinfo=UTC)
    series = CsvMarketData(btc_1h_csv).fetch("BTC/USDT", "1h", 100_000, far_future)
    return [
        Candle(c.open_time, *(round(v, 8) for v in (c.open, c.high, c.low, c.close, c.volume)))
        for c in series.candles
    ]


@pytest.fixture
def market_clock(btc_1h: list[Candle]) -> ManualClock:
    """Half-way through the newest real candle: it is still open, every older one is closed."""
    return ManualClock(btc_1h[-1].open_time + timedelta(minutes=30))


@pytest.fixture
def btc_exchange(btc_1h: list[Candle], market_clock: ManualClock) -> Iterator[LocalBinanceExchange]:
    """A local Binance whose BTC/USDT 1h klines are the real candles, on ``market_clock``."""
    with LocalBinanceExchange(clock=market_clock) as exchange:
        _serve_real_candles(exchange, btc_1h)
        yield exchange


@pytest.fixture
def btc_exchange_now(btc_1h: list[Candle]) -> Iterator[LocalBinanceExchange]:
    """The same real candles on the real clock (every one of them closed long ago)."""
    with LocalBinanceExchange() as exchange:
        _serve_real_candles(exchange, btc_1h)
        yield exchange


def _serve_real_candles(exchange: LocalBinanceExchange, candles: list[Candle]) -> None:
    """Make ``exchange`` serve ``candles`` as its BTC/USDT 1h klines."""
    exchange.serve_candles(
        "BTC/USDT",
        "1h",
        [
            (int(c.open_time.timestamp() * 1000), c.open, c.high, c.low, c.close, c.volume)
            for c in candles
        ],
    )
