"""Candles, the market-data interface, and the checks that keep bad data from being traded on.

Every source returns *closed* candles only (a candle whose close time is after ``now`` is still
forming and is dropped), checked for gaps, duplicates, out-of-order timestamps and non-finite or
non-positive values. A series with any such issue is reported and not traded on that cycle.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_seconds(timeframe: str) -> int:
    """``"1h"`` → 3600. Supports m, h, d, w (ccxt's spelling)."""
    text = timeframe.strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ValueError(f"invalid timeframe {timeframe!r}: use e.g. 1m, 5m, 15m, 1h, 4h, 1d")
    return int(text[:-1]) * _UNITS[text[-1]]


@dataclass(frozen=True)
class Candle:
    """One OHLCV bar. ``open_time`` is aware UTC; prices are floats (indicators only — every
    amount that reaches an order is converted to ``Decimal`` from the float's shortest repr)."""

    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class DataIssue:
    """A problem found in a series: ``kind`` is gap, duplicate, out_of_order, bad_value, jump,
    stale, unavailable or empty."""

    symbol: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.symbol}: {self.kind} — {self.detail}"


@dataclass(frozen=True)
class CandleSeries:
    """Closed candles of one symbol, oldest first, with any issues found in them."""

    symbol: str
    timeframe: str
    candles: tuple[Candle, ...]
    issues: tuple[DataIssue, ...] = field(default=())

    @property
    def tradable(self) -> bool:
        """True when there are candles and nothing is wrong with them."""
        return bool(self.candles) and not self.issues

    @property
    def last_close(self) -> float:
        """Close of the newest closed candle."""
        return self.candles[-1].close

    def closes(self) -> list[float]:
        """Closing prices, oldest first."""
        return [c.close for c in self.candles]


def closed_only(candles: list[Candle], timeframe: str, now: datetime) -> list[Candle]:
    """Drop candles still forming at ``now`` (close time after ``now``)."""
    step = timedelta(seconds=timeframe_seconds(timeframe))
    return [c for c in candles if c.open_time + step <= now]


def find_issues(
    symbol: str,
    candles: list[Candle],
    timeframe: str,
    now: datetime | None = None,
    stale_after_timeframes: int | None = None,
) -> list[DataIssue]:
    """Every problem in ``candles``: gaps, duplicates, out-of-order, non-finite or impossible
    values, and (when ``stale_after_timeframes`` is given) staleness against ``now``."""
    issues: list[DataIssue] = []
    if not candles:
        return [DataIssue(symbol, "empty", "no closed candles")]
    step = timedelta(seconds=timeframe_seconds(timeframe))
    for prev, cur in zip(candles, candles[1:], strict=False):
        if cur.open_time == prev.open_time:
            issues.append(
                DataIssue(symbol, "duplicate", f"two candles at {cur.open_time:%Y-%m-%d %H:%M}")
            )
        elif cur.open_time < prev.open_time:
            issues.append(
                DataIssue(
                    symbol,
                    "out_of_order",
                    f"{cur.open_time:%Y-%m-%d %H:%M} after {prev.open_time:%Y-%m-%d %H:%M}",
                )
            )
        elif cur.open_time - prev.open_time != step:
            distance = cur.open_time - prev.open_time
            detail = (
                f"{int(distance / step) - 1} candle(s) missing after "
                if distance % step == timedelta(0)
                else f"next candle {distance} (not a multiple of {timeframe}) after "
            )
            issues.append(DataIssue(symbol, "gap", f"{detail}{prev.open_time:%Y-%m-%d %H:%M}"))
    for candle in candles:
        values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
        if not all(math.isfinite(v) for v in values):
            issues.append(
                DataIssue(symbol, "bad_value", f"NaN/inf at {candle.open_time:%Y-%m-%d %H:%M}")
            )
        elif min(candle.open, candle.high, candle.low, candle.close) <= 0 or candle.volume < 0:
            issues.append(
                DataIssue(
                    symbol, "bad_value", f"non-positive price at {candle.open_time:%Y-%m-%d %H:%M}"
                )
            )
        elif candle.high < max(candle.open, candle.close) or candle.low > min(
            candle.open, candle.close
        ):
            issues.append(
                DataIssue(
                    symbol,
                    "bad_value",
                    f"high/low do not bound open/close at {candle.open_time:%Y-%m-%d %H:%M}",
                )
            )
    if now is not None and stale_after_timeframes is not None:
        newest_close = candles[-1].open_time + step
        if now - newest_close > step * stale_after_timeframes:
            age = now - newest_close
            issues.append(
                DataIssue(
                    symbol,
                    "stale",
                    f"newest closed candle ended {age} ago "
                    f"(limit {stale_after_timeframes} × {timeframe})",
                )
            )
    return issues


def with_jump_check(series: CandleSeries, max_jump_pct: float) -> CandleSeries:
    """``series`` with a ``jump`` issue for every close that moved more than ``max_jump_pct``
    from the previous close (a 5e9 BTC print, a decimal slip). Applied to every source's series
    alike, so such a symbol is skipped for the cycle whatever the data came from."""
    issues = list(series.issues)
    for prev, cur in zip(series.candles, series.candles[1:], strict=False):
        if not (math.isfinite(prev.close) and math.isfinite(cur.close)) or prev.close <= 0:
            continue  # already a bad_value issue
        move = abs(cur.close / prev.close - 1) * 100
        if move > max_jump_pct:
            issues.append(
                DataIssue(
                    series.symbol,
                    "jump",
                    f"close moved {move:.1f}% (limit {max_jump_pct:g}%) at "
                    f"{cur.open_time:%Y-%m-%d %H:%M}",
                )
            )
    if len(issues) == len(series.issues):
        return series
    return CandleSeries(series.symbol, series.timeframe, series.candles, tuple(issues))


class MarketDataSource(ABC):
    """Where candles come from. ``fetch`` returns closed candles only, with issues attached."""

    name: str = "data"
    #: True when ``fetch`` waits on the network (an exchange) and may be called from several
    #: threads at once: the cycle then asks for every symbol's candles in parallel.
    fetches_over_network: bool = False

    @abstractmethod
    def fetch(self, symbol: str, timeframe: str, limit: int, now: datetime) -> CandleSeries:
        """The newest ``limit`` closed candles of ``symbol`` at ``now``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def utc(dt: datetime) -> datetime:
    """Attach UTC to a naive datetime; convert an aware one to UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
