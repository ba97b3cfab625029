"""Download public OHLCV history through ccxt into the :class:`CandleStore`.

Each symbol is paged forward with ``fetch_ohlcv(since=…, limit=…)``, at most the exchange's own
per-request limit (Binance: 1000), paced by the venue host's shared request budget (its
published request weights, shared with any broker and candle source of this process). Every
page is written to the store as it arrives, so an interrupted download keeps what it had; the
next run resumes after the newest stored candle (and fills in before the oldest one when
``since`` reaches further back). The candle still forming at the download's clock is never
stored. Missing intervals inside the stored range are
reported as :class:`Gap` values; nothing is invented to fill them.

Everything the user typed is checked before the first candle is fetched: the exchange id, the
timeframe, the range and every symbol against the exchange's markets. A mistake is one
``ConfigError`` and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from otonom_trader.broker.ccxt_broker import RetryPolicy
from otonom_trader.broker.ccxt_errors import map_ccxt_errors
from otonom_trader.broker.errors import TemporaryBrokerError
from otonom_trader.config.errors import ConfigError
from otonom_trader.market.candles import Candle, timeframe_seconds, utc
from otonom_trader.market.exchange_source import _number, public_client
from otonom_trader.market.store import CandleStore
from otonom_trader.market.symbols import to_unified

#: Used when ccxt does not publish the venue's per-request candle limit.
FALLBACK_PAGE_LIMIT = 500


@dataclass(frozen=True)
class Gap:
    """Candles missing between two stored ones: ``after`` and ``before`` are the open times of
    the stored neighbours, ``missing`` the number of absent candles between them."""

    after: datetime
    before: datetime
    missing: int

    def __str__(self) -> str:
        return f"{self.missing} candle(s) missing after {self.after:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class SeriesReport:
    """One symbol after a download: stored rows in the requested range, how many this run
    added, the first and last stored open times, and the gaps between them."""

    symbol: str
    rows: int
    added: int
    first: datetime | None
    last: datetime | None
    gaps: tuple[Gap, ...]


def find_gaps(candles: list[Candle], timeframe: str) -> list[Gap]:
    """Every run of missing candles between consecutive ``candles`` (sorted, no duplicates)."""
    step = timedelta(seconds=timeframe_seconds(timeframe))
    return [
        Gap(prev.open_time, cur.open_time, int((cur.open_time - prev.open_time) / step) - 1)
        for prev, cur in zip(candles, candles[1:], strict=False)
        if cur.open_time - prev.open_time > step
    ]


class HistoryDownloader:
    """Pages one exchange's public candles into ``store``.

    ``clock`` (aware UTC) decides which candles are closed; ``page_limit`` caps the candles per
    request below the exchange's own limit; ``on_page(symbol, stored)`` is called after each
    page is stored (progress output, and the hook a test interrupts a download with). A page
    that fails with a temporary error (network, 429, 5xx) is retried as ``retry`` says,
    waiting with ``sleep``; any other error ends the download (what is stored stays).
    """

    def __init__(
        self,
        store: CandleStore,
        exchange_id: str = "binance",
        *,
        base_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        page_limit: int | None = None,
        on_page: Callable[[str, int], None] | None = None,
        timeout_ms: int = 10_000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_limit is not None and page_limit < 1:
            raise ConfigError(f"must be at least 1, got {page_limit}", key="--limit")
        self.store = store
        self.exchange_id = exchange_id
        self.exchange = public_client(
            exchange_id, base_url=base_url, timeout_ms=timeout_ms, key="--exchange"
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.page_limit = min(page_limit or self.exchange_limit(), self.exchange_limit())
        self.on_page = on_page
        self.retry = retry or RetryPolicy()
        self.sleep = sleep

    def close(self) -> None:
        """Release the HTTP session."""
        session = getattr(self.exchange, "session", None)
        if session is not None:
            session.close()

    def exchange_limit(self) -> int:
        """The most candles the exchange returns per request, as ccxt publishes it."""
        features = getattr(self.exchange, "features", None) or {}
        spot = features.get("spot") or {}
        limit = (spot.get("fetchOHLCV") or {}).get("limit")
        return int(limit) if limit else FALLBACK_PAGE_LIMIT

    def check(
        self, symbols: list[str], timeframe: str, since: datetime, until: datetime | None
    ) -> list[str]:
        """The unified symbols, once everything is known to be valid; ``ConfigError`` naming the
        first mistake otherwise. Loads the exchange's markets (one public request)."""
        try:
            timeframe_seconds(timeframe)
        except ValueError as exc:
            raise ConfigError(str(exc), key="--timeframe") from None
        offered = getattr(self.exchange, "timeframes", None) or {}
        if offered and timeframe not in offered:
            raise ConfigError(
                f"{self.exchange_id} has no {timeframe!r} candles (it offers {', '.join(offered)})",
                key="--timeframe",
            )
        now = self.clock()
        if since >= now:
            raise ConfigError(f"{since:%Y-%m-%d %H:%M} is in the future", key="--since")
        if until is not None and until <= since:
            raise ConfigError(
                f"{until:%Y-%m-%d %H:%M} is not after --since {since:%Y-%m-%d %H:%M}",
                key="--until",
            )
        if not symbols:
            raise ConfigError("give at least one symbol, e.g. BTC/USDT", key="--symbols")
        try:
            unified = [to_unified(s) for s in symbols]
        except ValueError as exc:
            raise ConfigError(str(exc), key="--symbols") from None
        with map_ccxt_errors("load_markets"):
            markets = self.exchange.load_markets()
        unknown = [s for s in unified if s not in markets]
        if unknown:
            raise ConfigError(
                f"{', '.join(unknown)}: not a market on {self.exchange_id}", key="--symbols"
            )
        return list(dict.fromkeys(unified))

    def download(
        self, symbols: list[str], timeframe: str, since: datetime, until: datetime | None = None
    ) -> list[SeriesReport]:
        """Check the request, then download each symbol; one :class:`SeriesReport` each."""
        since = utc(since)
        until = utc(until) if until is not None else None
        unified = self.check(symbols, timeframe, since, until)
        return [self._download_one(symbol, timeframe, since, until) for symbol in unified]

    def _download_one(
        self, symbol: str, timeframe: str, since: datetime, until: datetime | None
    ) -> SeriesReport:
        step = timedelta(seconds=timeframe_seconds(timeframe))
        now = self.clock()
        # A candle is stored once closed: it opened at least one timeframe before now.
        end = min(until, now) if until is not None else now
        first = self.store.first_time(self.exchange_id, symbol, timeframe)
        last = self.store.last_time(self.exchange_id, symbol, timeframe)
        spans: list[tuple[datetime, datetime]] = []
        if first is None or last is None:
            spans.append((since, end))
        else:
            if since < first:
                spans.append((since, min(first, end)))
            spans.append((max(since, last + step), end))
        added = sum(self._page_span(symbol, timeframe, start, stop, now) for start, stop in spans)
        stored = self.store.read(self.exchange_id, symbol, timeframe, since, until)
        return SeriesReport(
            symbol,
            len(stored),
            added,
            stored[0].open_time if stored else None,
            stored[-1].open_time if stored else None,
            tuple(find_gaps(stored, timeframe)),
        )

    def _page_span(
        self, symbol: str, timeframe: str, start: datetime, stop: datetime, now: datetime
    ) -> int:
        """Page ``[start, stop)`` forward; return how many candles were new to the store."""
        step = timedelta(seconds=timeframe_seconds(timeframe))
        cursor = start
        added = 0
        while cursor < stop:
            page = [_candle(row) for row in self._fetch_page(symbol, timeframe, cursor)]
            page = [c for c in page if c.open_time >= cursor]
            if not page:
                break  # nothing more on the exchange after the cursor
            keep = [c for c in page if c.open_time < stop and c.open_time + step <= now]
            added += self.store.append(self.exchange_id, symbol, timeframe, keep)
            if self.on_page is not None:
                self.on_page(symbol, len(keep))
            cursor = page[-1].open_time + step
        return added

    def _fetch_page(self, symbol: str, timeframe: str, cursor: datetime) -> list[list[Any]]:
        attempts = self.retry.read_attempts
        for attempt in range(attempts):
            try:
                with map_ccxt_errors("fetch_ohlcv"):
                    rows: list[list[Any]] = self.exchange.fetch_ohlcv(
                        symbol, timeframe, since=_ms(cursor), limit=self.page_limit
                    )
                return rows
            except TemporaryBrokerError:
                if attempt + 1 == attempts:
                    raise
                self.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _candle(row: list[Any]) -> Candle:
    # An unreadable value is stored as NaN: the candle checks report it wherever it is read.
    return Candle(datetime.fromtimestamp(row[0] / 1000, tz=UTC), *(_number(v) for v in row[1:6]))
