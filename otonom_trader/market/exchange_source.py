"""Public candles from an exchange through ccxt (``data=exchange``).

No key is needed. The newest candle an exchange returns is usually still forming: it is dropped,
so signals only ever see closed candles. If the newest *closed* candle ended more than
``stale_after_timeframes`` timeframes ago, the series is marked stale and the cycle places no new
orders (the run summary says why).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import ccxt

from otonom_trader.broker.ccxt_errors import map_ccxt_errors
from otonom_trader.broker.errors import BrokerError
from otonom_trader.market.candles import (
    Candle,
    CandleSeries,
    DataIssue,
    MarketDataSource,
    closed_only,
    find_issues,
)
from otonom_trader.market.symbols import to_unified


class ExchangeMarketData(MarketDataSource):
    """OHLCV through ccxt's public ``fetch_ohlcv``."""

    name = "exchange"
    fetches_over_network = True

    def __init__(
        self,
        exchange_id: str = "binance",
        *,
        base_url: str | None = None,
        stale_after_timeframes: int = 2,
        timeout_ms: int = 10_000,
    ) -> None:
        self.exchange = public_client(exchange_id, base_url=base_url, timeout_ms=timeout_ms)
        # The same budget as a broker on this venue and host: together they stay within it.
        self.request_budget = getattr(self.exchange, "otonom_request_budget", None)
        self.name = f"exchange ({exchange_id}{' @ ' + base_url if base_url else ''})"
        self.stale_after_timeframes = stale_after_timeframes

    def fetch(self, symbol: str, timeframe: str, limit: int, now: datetime) -> CandleSeries:
        unified = to_unified(symbol)
        try:
            with map_ccxt_errors("fetch_ohlcv"):
                rows = self.exchange.fetch_ohlcv(unified, timeframe, limit=limit + 1)
        except BrokerError as exc:
            issue = DataIssue(symbol, "unavailable", str(exc))
            return CandleSeries(symbol, timeframe, (), (issue,))
        # A missing or unreadable value becomes NaN: find_issues reports it and the symbol is
        # skipped for the cycle (as for a CSV), instead of the whole cycle failing.
        candles = [
            Candle(datetime.fromtimestamp(r[0] / 1000, tz=UTC), *(_number(v) for v in r[1:6]))
            for r in rows
        ]
        closed = closed_only(candles, timeframe, now)[-limit:]
        issues = find_issues(symbol, closed, timeframe, now, self.stale_after_timeframes)
        return CandleSeries(symbol, timeframe, tuple(closed), tuple(issues))

    def close(self) -> None:
        session = getattr(self.exchange, "session", None)
        if session is not None:
            session.close()


def public_client(
    exchange_id: str,
    *,
    base_url: str | None = None,
    timeout_ms: int = 10_000,
    key: str = "data.exchange_id",
) -> Any:
    """A key-less ccxt client of ``exchange_id`` for public market data (spot markets only);
    ``base_url`` routes it there. Its requests spend the venue host's shared request budget
    (``broker.request_budget``, also ``client.otonom_request_budget``) and its market list is
    the one shared with a broker of the same venue and host. ``ConfigError`` (naming ``key``)
    for an id ccxt does not know."""
    from otonom_trader.broker.ccxt_broker import share_markets
    from otonom_trader.broker.ccxt_routing import route_ccxt_to
    from otonom_trader.broker.request_budget import (
        install_request_budget,
        pooled_session,
        shared_budget,
    )

    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None:
        from otonom_trader.config.errors import ConfigError

        raise ConfigError(f"unknown ccxt exchange id {exchange_id!r}", key=key)
    options: dict[str, Any] = {"defaultType": "spot"}
    if exchange_id == "binance":
        options.update(
            {
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchMarkets": {"types": ["spot"]},
            }
        )
    client = exchange_class({"enableRateLimit": False, "timeout": timeout_ms, "options": options})
    if base_url:
        route_ccxt_to(client, base_url)
    pooled_session(client)
    # The venue's markets, shared with a broker of the same venue and host (in this process,
    # or from the disk cache): ccxt would otherwise load them once more.
    share_markets(client, exchange_id, base_url, False)
    budget = shared_budget(exchange_id, base_url)
    if budget is not None:
        install_request_budget(client, exchange_id, budget)
    client.otonom_request_budget = budget
    return client


def _number(value: object) -> float:
    """A candle value as a float; anything unreadable (None, text) is NaN."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
