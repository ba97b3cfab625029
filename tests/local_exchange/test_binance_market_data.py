"""Public market data of the local Binance: time, ping, ticker, klines."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import ccxt

from otonom_trader.broker.ccxt_routing import LOCAL_BINANCE_OPTIONS, route_ccxt_to
from otonom_trader.local_exchange import LocalBinanceExchange

FIXED_NOW = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
HOUR_MS = 3_600_000


def _client(base_url: str) -> ccxt.binance:
    client = ccxt.binance(
        {"timeout": 2000, "enableRateLimit": False, "options": dict(LOCAL_BINANCE_OPTIONS)}
    )
    route_ccxt_to(client, base_url)
    return client


def test_fetch_time_is_the_injected_clock() -> None:
    with LocalBinanceExchange(clock=lambda: FIXED_NOW) as exchange:
        server_time = _client(exchange.base_url).fetch_time()

    assert server_time == int(FIXED_NOW.timestamp() * 1000)


def test_ping_answers_empty_object(local_binance: LocalBinanceExchange) -> None:
    assert _client(local_binance.base_url).public_get_ping() == {}


def test_fetch_ticker_last_is_feed_and_moves_with_set_price(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    before = binance_client.fetch_ticker("BTC/USDT")
    local_binance.set_price("BTC/USDT", Decimal("51234.56"))

    after = binance_client.fetch_ticker("BTC/USDT")

    assert before["last"] == 50000.0
    assert after["last"] == 51234.56
    assert after["bid"] <= after["last"] <= after["ask"]
    assert after["low"] <= after["last"] <= after["high"]


def test_fetch_ohlcv_newest_candle_is_open_and_closes_at_feed() -> None:
    with LocalBinanceExchange(
        prices={"BTC/USDT": Decimal("50000")}, clock=lambda: FIXED_NOW
    ) as exchange:
        candles = _client(exchange.base_url).fetch_ohlcv("BTC/USDT", "1h", limit=5)

    now_ms = int(FIXED_NOW.timestamp() * 1000)
    assert len(candles) == 5
    assert candles[-1][0] == now_ms // HOUR_MS * HOUR_MS
    assert candles[-1][4] == 50000.0
    assert [c[0] for c in candles] == [candles[0][0] + i * HOUR_MS for i in range(5)]
    for previous, candle in zip(candles, candles[1:], strict=False):
        assert candle[1] == previous[4]  # each candle opens where the previous closed
    for _, open_, high, low, close, volume in candles:
        assert low <= min(open_, close) <= max(open_, close) <= high
        assert volume > 0


def test_fetch_ohlcv_is_deterministic_for_the_same_feed_and_clock() -> None:
    def fetch() -> list[list[float]]:
        with LocalBinanceExchange(clock=lambda: FIXED_NOW) as exchange:
            result: list[list[float]] = _client(exchange.base_url).fetch_ohlcv(
                "ETH/USDT", "15m", limit=20
            )
            return result

    assert fetch() == fetch()


def test_fetch_ohlcv_since_starts_at_first_candle_after_since() -> None:
    now_ms = int(FIXED_NOW.timestamp() * 1000)
    since = now_ms - 10 * HOUR_MS + 1
    with LocalBinanceExchange(clock=lambda: FIXED_NOW) as exchange:
        candles = _client(exchange.base_url).fetch_ohlcv("BTC/USDT", "1h", since=since, limit=3)

    assert len(candles) == 3
    assert candles[0][0] >= since
    assert candles[0][0] - since < HOUR_MS


def test_request_log_records_public_calls(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.fetch_ticker("ETH/USDT")

    assert local_binance.request_paths() == ["GET /api/v3/exchangeInfo", "GET /api/v3/ticker/24hr"]
    assert local_binance.requests[-1].params == {"symbol": "ETHUSDT"}
