"""data=exchange: public candles through the real ccxt.binance, against the local exchange."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.config import DataConfig
from otonom_trader.market.exchange_source import ExchangeMarketData
from otonom_trader.market.sources import build_market_data


@pytest.fixture
def exchange() -> Iterator[LocalBinanceExchange]:
    with LocalBinanceExchange(
        api_key="k", api_secret="s", prices={"BTC/USDT": Decimal("50000")}
    ) as ex:
        yield ex


def test_only_closed_candles_are_returned(exchange: LocalBinanceExchange) -> None:
    source = ExchangeMarketData("binance", base_url=exchange.base_url)
    now = datetime.now(UTC)

    series = source.fetch("BTC/USDT", "1h", 50, now)

    assert len(series.candles) == 50 and series.tradable
    newest = series.candles[-1]
    assert newest.open_time + timedelta(hours=1) <= now  # closed
    assert now - (newest.open_time + timedelta(hours=1)) < timedelta(hours=1)  # the latest closed
    assert all(p.startswith("GET /api/v3/") for p in exchange.request_paths())


def test_data_older_than_two_timeframes_is_stale(exchange: LocalBinanceExchange) -> None:
    source = ExchangeMarketData("binance", base_url=exchange.base_url, stale_after_timeframes=2)

    series = source.fetch("BTC/USDT", "1h", 50, datetime.now(UTC) + timedelta(hours=4))

    assert [i.kind for i in series.issues] == ["stale"]
    assert not series.tradable


def test_unreachable_exchange_is_reported_not_raised() -> None:
    source = ExchangeMarketData("binance", base_url="http://127.0.0.1:9", timeout_ms=500)

    series = source.fetch("BTC/USDT", "1h", 10, datetime.now(UTC))

    assert series.candles == () and series.issues[0].kind == "unavailable"


def test_the_data_group_builds_the_exchange_source(exchange: LocalBinanceExchange) -> None:
    source = build_market_data(DataConfig(source="exchange", exchange_base_url=exchange.base_url))

    assert isinstance(source, ExchangeMarketData)
    assert exchange.base_url in source.name
