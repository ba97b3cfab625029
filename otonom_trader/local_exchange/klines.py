"""Deterministic candles for the local exchanges, anchored at the current feed price.

The newest candle is the still-open one (as on Binance) and closes at the feed price; older
candles are a walk backwards whose per-candle return comes from a hash of
``(symbol, interval, open time)``. The same feed price and clock therefore always give the same
candles, and moving the feed rescales history without re-shuffling it.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any

_MINUTE = 60_000
#: Candle lengths in milliseconds, by Binance interval name (``1M`` has no fixed length).
INTERVAL_MS: dict[str, int] = {
    "1s": 1000,
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": 60 * _MINUTE,
    "2h": 120 * _MINUTE,
    "4h": 240 * _MINUTE,
    "6h": 360 * _MINUTE,
    "8h": 480 * _MINUTE,
    "12h": 720 * _MINUTE,
    "1d": 1440 * _MINUTE,
    "3d": 3 * 1440 * _MINUTE,
    "1w": 7 * 1440 * _MINUTE,
}
# Weekly candles open on Monday 00:00 UTC; the epoch was a Thursday (4 days earlier).
_OFFSET_MS = {"1w": 4 * 1440 * _MINUTE}
#: History further back than this many candles is not generated (keeps a request cheap).
MAX_WALK = 100_000
_EIGHT = Decimal("0.00000001")


@lru_cache(maxsize=65_536)  # the same bars are asked for every cycle; a hash is not free
def _uniforms(sid: str, interval: str, open_ms: int) -> tuple[float, ...]:
    digest = hashlib.blake2b(f"{sid}:{interval}:{open_ms}".encode(), digest_size=20).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "big") / 0xFFFFFFFF for i in range(0, 20, 4))


def _align(ms: int, interval_ms: int, offset: int) -> int:
    return (ms - offset) // interval_ms * interval_ms + offset


def generate_klines(
    sid: str,
    feed: Decimal,
    interval: str,
    *,
    now_ms: int,
    limit: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    tick: Decimal = _EIGHT,
    step: Decimal = _EIGHT,
) -> list[list[Any]]:
    """Binance kline rows (see ``_generate_klines``). Only the open candle's start matters of
    ``now_ms``, so the same request within one candle is answered from a cache (as a real
    exchange serves klines from storage, not by computing them)."""
    current = _align(now_ms, INTERVAL_MS[interval], _OFFSET_MS.get(interval, 0))
    rows = _cached_klines(sid, feed, interval, current, limit, start_ms, end_ms, tick, step)
    return [list(row) for row in rows]


@lru_cache(maxsize=1024)
def _cached_klines(
    sid: str,
    feed: Decimal,
    interval: str,
    now_ms: int,
    limit: int,
    start_ms: int | None,
    end_ms: int | None,
    tick: Decimal,
    step: Decimal,
) -> tuple[tuple[Any, ...], ...]:
    rows = _generate_klines(
        sid,
        feed,
        interval,
        now_ms=now_ms,
        limit=limit,
        start_ms=start_ms,
        end_ms=end_ms,
        tick=tick,
        step=step,
    )
    return tuple(tuple(row) for row in rows)


def _generate_klines(
    sid: str,
    feed: Decimal,
    interval: str,
    *,
    now_ms: int,
    limit: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    tick: Decimal = _EIGHT,
    step: Decimal = _EIGHT,
) -> list[list[Any]]:
    """Binance kline rows ``[openTime, o, h, l, c, volume, closeTime, quoteVolume, trades,
    takerBuyBase, takerBuyQuote, "0"]`` (prices and amounts as strings), oldest first.

    Follows ``GET /api/v3/klines``: with ``start_ms`` the first ``limit`` candles opening at or
    after it; else the ``limit`` candles up to ``end_ms`` (or now). Nothing after the open candle.
    """
    length = INTERVAL_MS[interval]
    offset = _OFFSET_MS.get(interval, 0)
    current = _align(now_ms, length, offset)
    last = current if end_ms is None else min(current, _align(end_ms, length, offset))
    if start_ms is not None:
        first = _align(start_ms, length, offset)
        if first < start_ms:
            first += length
        opens = list(range(first, last + 1, length))[:limit]
    else:
        opens = [last - i * length for i in range(limit - 1, -1, -1)]
    earliest_allowed = current - MAX_WALK * length
    opens = [o for o in opens if o >= earliest_allowed]
    if not opens:
        return []
    # Walk back from the open candle: close(older) = close(newer) / (1 + return(newer)).
    volatility = 0.01 * (length / (60 * _MINUTE)) ** 0.5
    closes: dict[int, float] = {current: float(feed)}
    t = current
    close = float(feed)
    while t > opens[0] - length:
        u = _uniforms(sid, interval, t)
        close = close / (1 + (u[0] - 0.5) * 2 * volatility)
        t -= length
        closes[t] = close
    rows: list[list[Any]] = []
    for open_ms in opens:
        u = _uniforms(sid, interval, open_ms)
        o = closes[open_ms - length]
        c = closes[open_ms]
        high = max(o, c) * (1 + u[1] * volatility / 2)
        low = min(o, c) * (1 - u[2] * volatility / 2)
        open_d, high_d, low_d = (_to_tick(v, tick) for v in (o, high, low))
        close_d = feed if open_ms == current else _to_tick(c, tick)
        high_d = max(high_d, open_d, close_d)
        low_d = min(low_d, open_d, close_d)
        volume = _to_tick(1000 * (0.2 + u[3]) / max((o + c) / 2, 1e-9) * 50, step)
        quote_volume = volume * (open_d + close_d) / 2
        taker_base = _to_tick(float(volume) * u[4], step)
        rows.append(
            [
                open_ms,
                _fmt(open_d),
                _fmt(high_d),
                _fmt(low_d),
                _fmt(close_d),
                _fmt(volume),
                open_ms + length - 1,
                _fmt(quote_volume),
                int(100 + u[3] * 4000),
                _fmt(taker_base),
                _fmt(taker_base * (open_d + close_d) / 2),
                "0",
            ]
        )
    return rows


def _to_tick(value: float, tick: Decimal) -> Decimal:
    units = (Decimal(repr(value)) / tick).to_integral_value(rounding=ROUND_FLOOR)
    return max(units, Decimal(1)) * tick


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(_EIGHT):f}"


def recorded_klines(
    candles: list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]],
    interval: str,
    *,
    now_ms: int,
    limit: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[list[Any]]:
    """Binance kline rows from recorded candles ``(open_ms, o, h, l, c, volume)`` (sorted by
    open time), with the same window rules as :func:`generate_klines`: nothing opening after
    ``now_ms`` (the candle open at ``now_ms`` is included, still forming, as on Binance)."""
    length = INTERVAL_MS[interval]
    last = now_ms if end_ms is None else min(now_ms, end_ms)
    window = [c for c in candles if c[0] <= last and (start_ms is None or c[0] >= start_ms)]
    chosen = window[:limit] if start_ms is not None else window[-limit:]
    rows: list[list[Any]] = []
    for open_ms, o, h, low, c, volume in chosen:
        quote_volume = volume * (o + c) / 2
        rows.append(
            [
                open_ms,
                _fmt(o),
                _fmt(h),
                _fmt(low),
                _fmt(c),
                _fmt(volume),
                open_ms + length - 1,
                _fmt(quote_volume),
                100,
                _fmt(volume / 2),
                _fmt(quote_volume / 2),
                "0",
            ]
        )
    return rows


def without_ranges(rows: list[list[Any]], omitted: list[tuple[int, int]]) -> list[list[Any]]:
    """``rows`` less those whose open time lies in one of the ``[start_ms, end_ms)`` ranges."""
    return [r for r in rows if not any(start <= r[0] < end for start, end in omitted)]
