"""Candles from the local store (``data=store``): history downloaded with ``data download``.

A cycle at clock ``now`` sees the closed candles up to ``now`` (a candle opening less than one
timeframe before ``now`` had not closed yet), the newest ``limit`` of them, checked like any
source's (gaps, bad values, and stale when the store has not been refreshed lately). Only the
month files around ``now`` are read, so a cycle stays cheap however long the history is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from otonom_trader.config.errors import ConfigError
from otonom_trader.market.candles import (
    CandleSeries,
    MarketDataSource,
    closed_only,
    find_issues,
    timeframe_seconds,
)
from otonom_trader.market.store import CandleStore
from otonom_trader.market.symbols import to_unified


class StoreMarketData(MarketDataSource):
    """Closed candles of ``exchange_id`` read from a :class:`CandleStore`."""

    name = "store"

    def __init__(
        self,
        root: str | Path | None = None,
        exchange_id: str = "binance",
        *,
        stale_after_timeframes: int = 2,
    ) -> None:
        self.store = CandleStore(root)
        self.exchange_id = exchange_id
        self.stale_after_timeframes = stale_after_timeframes
        self.name = f"store ({self.store.root / exchange_id})"

    def require(self, symbols: list[str], timeframe: str) -> None:
        """``ConfigError`` naming the first symbol with no stored ``timeframe`` candles, and the
        command that downloads them."""
        stored = self.store.symbols(self.exchange_id, timeframe)
        for symbol in symbols:
            if to_unified(symbol) not in stored:
                raise ConfigError(
                    f"no {timeframe} candles of {symbol} from {self.exchange_id} in "
                    f"{self.store.root} (have: {', '.join(stored) or 'none'}); run "
                    f"otonom-trader data download --exchange {self.exchange_id} "
                    f"--symbols {symbol} --timeframe {timeframe} --since YYYY-MM-DD",
                    key="data.store_path",
                )

    def fetch(self, symbol: str, timeframe: str, limit: int, now: datetime) -> CandleSeries:
        step = timedelta(seconds=timeframe_seconds(timeframe))
        # One candle more than asked, so that the one still forming at ``now`` can be dropped.
        since = now - step * (limit + 1)
        candles = self.store.read(self.exchange_id, symbol, timeframe, since=since, until=now)
        closed = closed_only(candles, timeframe, now)[-limit:]
        issues = find_issues(symbol, closed, timeframe, now, self.stale_after_timeframes)
        return CandleSeries(symbol, timeframe, tuple(closed), tuple(issues))
