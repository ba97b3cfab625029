"""Public market data of the local Binance: time, ping, ticker, klines (generated or recorded,
with or without an omitted range)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import pytest

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


# ------------------------------------------------------------- recorded candles, omitted ranges
NOW_MS = int(FIXED_NOW.timestamp() * 1000)
OPEN_MS = NOW_MS // HOUR_MS * HOUR_MS  # the candle still forming at FIXED_NOW
# Ten recorded hourly candles, the newest one the open candle.
RECORDED = [
    (OPEN_MS - (9 - i) * HOUR_MS, 100 + i, 101.5 + i, 99 + i, 100.5 + i, 7.25 + i)
    for i in range(10)
]


def test_recorded_candles_are_served_as_they_were_recorded() -> None:
    with LocalBinanceExchange(clock=lambda: FIXED_NOW) as exchange:
        exchange.serve_candles("BTC/USDT", "1h", RECORDED)
        client = _client(exchange.base_url)
        newest = client.fetch_ohlcv("BTC/USDT", "1h", limit=3)
        paged = client.fetch_ohlcv("BTC/USDT", "1h", since=RECORDED[2][0], limit=4)
        other_interval = client.fetch_ohlcv("BTC/USDT", "4h", limit=2)

    assert newest == [list(map(float, row)) for row in RECORDED[-3:]]
    assert paged == [list(map(float, row)) for row in RECORDED[2:6]]
    assert len(other_interval) == 2 and other_interval[0][1] != 100.0  # still generated


def test_recorded_candles_opening_after_the_clock_are_not_served_yet() -> None:
    later = [(OPEN_MS + HOUR_MS, 1, 1, 1, 1, 1), *RECORDED]
    with LocalBinanceExchange(clock=lambda: FIXED_NOW) as exchange:
        exchange.serve_candles("BTC/USDT", "1h", later)
        candles = _client(exchange.base_url).fetch_ohlcv("BTC/USDT", "1h", since=OPEN_MS)

    assert [c[0] for c in candles] == [OPEN_MS]


def test_an_omitted_range_is_skipped_and_a_page_still_holds_limit_candles() -> None:
    gap_from = datetime(2026, 3, 1, 0, tzinfo=UTC)
    since = int(datetime(2026, 2, 28, 17, tzinfo=UTC).timestamp() * 1000)
    with LocalBinanceExchange(clock=lambda: FIXED_NOW) as exchange:
        exchange.omit_candles("ETH/USDT", gap_from, gap_from + timedelta(hours=3))
        candles = _client(exchange.base_url).fetch_ohlcv("ETH/USDT", "1h", since=since, limit=10)

    opens = [datetime.fromtimestamp(c[0] / 1000, tz=UTC) for c in candles]
    before = [datetime(2026, 2, 28, hour, tzinfo=UTC) for hour in range(17, 24)]
    after = [datetime(2026, 3, 1, hour, tzinfo=UTC) for hour in range(3, 6)]
    assert opens == before + after  # 00:00-02:00 are missing, the page is still 10 long


def test_bad_arguments_are_refused_by_name() -> None:
    exchange = LocalBinanceExchange()
    with pytest.raises(ValueError, match="unknown interval '7x'"):
        exchange.serve_candles("BTC/USDT", "7x", RECORDED)
    with pytest.raises(ValueError, match="is not after start"):
        exchange.omit_candles("BTC/USDT", FIXED_NOW, FIXED_NOW)
