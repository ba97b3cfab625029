"""Deterministic synthetic candles: the offline default data source.

A seeded random walk with realistic volatility plus slow trend regimes, defined for *every* bar
index since a fixed anchor, so any window is reproducible and the series advances with the wall
clock (each run sees the candles that closed since the last one).

How it stays cheap for any time: the walk is built in blocks of ``BLOCK`` bars. Block endpoints
form a coarse random walk (one Gaussian draw per block, variance ``BLOCK · σ²``); inside a block
the path is a Brownian bridge between its endpoints, drawn from the block's own seed. So reading
200 recent bars costs a few blocks, not every bar since the anchor.

How it stays cheap cycle after cycle: a bar's values depend only on (seed, volatility, trend,
symbol, timeframe, index), so the bars already made are kept, per process, in a window per
symbol and timeframe (``SyntheticPath``); a cycle one bar later makes only the new bar. Every
``SyntheticMarketData`` with the same parameters shares one path, so a daemon that rebuilds its
components each cycle still reuses the bars of the previous cycle.
"""

from __future__ import annotations

import math
import random
import threading
import zlib
from datetime import UTC, datetime, timedelta

from otonom_trader.market.candles import (
    Candle,
    CandleSeries,
    MarketDataSource,
    find_issues,
    timeframe_seconds,
)
from otonom_trader.market.symbols import to_unified

ANCHOR = datetime(2025, 1, 1, tzinfo=UTC)
BLOCK = 256
# Starting prices near the real markets' levels, so lot steps and minimum notionals bite as they
# would live. Unknown symbols start at 100.
BASE_PRICES = {
    "BTC/USDT": 60_000.0,
    "ETH/USDT": 3_000.0,
    "LTC/USDT": 80.0,
    "ADA/USDT": 0.45,
    "XRP/USDT": 0.6,
    "DOGE/USDT": 0.12,
    "TRX/USDT": 0.12,
}
SECONDS_PER_YEAR = 365 * 86_400


#: Most bars kept per symbol and timeframe (the largest window asked for, up to this).
MAX_WINDOW = 5_000
#: Brownian bridges kept per path (a block of 256 bars each; a few per symbol and timeframe).
MAX_BRIDGES = 4_096


class SyntheticMarketData(MarketDataSource):
    """Seeded candles for any symbol. Same seed, symbol, timeframe and time → same candles."""

    name = "synthetic"

    def __init__(self, seed: int = 42, annual_volatility_pct: float = 60.0, trend_bars: int = 48):
        self.seed = seed
        self.annual_volatility = annual_volatility_pct / 100
        self.trend_bars = trend_bars
        self._path = SyntheticPath.shared(seed, self.annual_volatility, trend_bars)

    def fetch(self, symbol: str, timeframe: str, limit: int, now: datetime) -> CandleSeries:
        """The newest ``limit`` bars whose close time is at or before ``now``."""
        # BTCUSDT and BTC/USDT are one market: they must get the same prices.
        market = to_unified(symbol)
        step = timeframe_seconds(timeframe)
        # Index of the newest *closed* bar: its close time (open + step) is <= now.
        newest = math.floor((now - ANCHOR).total_seconds() / step) - 1
        first = max(0, newest - limit + 1)
        candles, flawless = self._path.candles(market, timeframe, first, newest)
        # A window is contiguous by construction, so when each of its bars passed the value
        # checks as it was made, the whole series has no issue; otherwise check it all.
        issues = () if flawless else tuple(find_issues(symbol, candles, timeframe))
        return CandleSeries(symbol, timeframe, tuple(candles), issues)


class SyntheticPath:
    """The price path of one (seed, volatility, trend) for every symbol and timeframe, with the
    bars already made kept in a window per symbol and timeframe. Thread-safe: concurrent
    fetches of several symbols share it."""

    _shared: dict[tuple[int, float, int], SyntheticPath] = {}
    _shared_lock = threading.Lock()

    def __init__(self, seed: int, annual_volatility: float, trend_bars: int) -> None:
        self.seed = seed
        self.annual_volatility = annual_volatility
        self.trend_bars = trend_bars
        self._walks: dict[tuple[str, int], list[float]] = {}
        self._bridges: dict[tuple[str, int, int], tuple[float, ...]] = {}
        # (symbol, step) → (index of the first kept bar, the kept bars in index order)
        self._windows: dict[tuple[str, int], tuple[int, list[Candle]]] = {}
        self._keep: dict[tuple[str, int], int] = {}  # the largest window asked for, per key
        self._flawed: dict[tuple[str, int], set[int]] = {}  # kept bars that failed a check
        self._lock = threading.RLock()
        # Per (symbol, step): the log of the base price, the trend's phase and amplitude, sigma.
        self._constants: dict[tuple[str, int], tuple[float, float, float, float]] = {}

    @classmethod
    def shared(cls, seed: int, annual_volatility: float, trend_bars: int) -> SyntheticPath:
        """The process's path for these parameters (made on first use)."""
        key = (seed, annual_volatility, trend_bars)
        with cls._shared_lock:
            path = cls._shared.get(key)
            if path is None:
                path = cls._shared[key] = cls(seed, annual_volatility, trend_bars)
            return path

    def candles(
        self, symbol: str, timeframe: str, first: int, last: int
    ) -> tuple[list[Candle], bool]:
        """Bars ``first`` … ``last`` (inclusive) of ``symbol`` and whether every one of them
        passed the value checks of ``find_issues``; only bars not in the kept window are made."""
        if last < first:
            return [], False
        step = timeframe_seconds(timeframe)
        key = (symbol, step)
        flawed = self._flawed.setdefault(key, set())

        def make(lo: int, hi: int) -> list[Candle]:
            made = self.bars(symbol, step, lo, hi)
            # New bars are contiguous: any issue among them is a bar's own value (rare).
            if made and find_issues(symbol, made, timeframe):
                flawed.update(range(lo, hi + 1))
            return made

        with self._lock:
            start, kept = self._windows.get(key, (first, []))
            end = start + len(kept) - 1  # the newest kept bar (start - 1 when none are kept)
            if not kept or first > end + 1 or last < start - 1:
                start, end, kept = first, first - 1, []  # no overlap: start a window here
            if first < start:
                kept[:0] = make(first, start - 1)
                start = first
            kept.extend(make(end + 1, last))
            wanted = kept[first - start : last - start + 1]
            # Keep the largest window asked for so far (bounded), ending at the newest bar.
            keep = min(max(self._keep.get(key, 0), last - first + 1), MAX_WINDOW)
            self._keep[key] = keep
            if len(kept) > keep:
                drop = len(kept) - keep
                del kept[:drop]
                start += drop
            self._windows[key] = (start, kept)
            for index in [i for i in flawed if i < start]:
                flawed.discard(index)  # dropped from the window
            return wanted, not any(first <= i <= last for i in flawed)

    def _sigma(self, step: int) -> float:
        return self.annual_volatility * math.sqrt(step / SECONDS_PER_YEAR)

    def _constants_of(self, symbol: str, step: int) -> tuple[float, float, float, float]:
        """``(log base price, trend phase, trend amplitude, sigma)`` of ``symbol`` at ``step``."""
        key = (symbol, step)
        constants = self._constants.get(key)
        if constants is None:
            phase = (zlib.crc32(symbol.encode()) % 1000) / 1000 * 2 * math.pi
            amplitude = 2 * self._sigma(step) * math.sqrt(self.trend_bars)
            log_base = math.log(BASE_PRICES.get(symbol, 100.0))
            constants = self._constants[key] = (log_base, phase, amplitude, self._sigma(step))
        return constants

    def _log_price(self, symbol: str, step: int, index: int) -> float:
        block, offset = divmod(index, BLOCK)
        start = self._block_start(symbol, step, block)
        end = self._block_start(symbol, step, block + 1)
        bridge = self._bridge(symbol, step, block)
        walk = start + bridge[offset] + (offset / BLOCK) * (end - start)
        log_base, phase, amplitude, _ = self._constants_of(symbol, step)
        return log_base + walk + self._trend(phase, amplitude, index)

    def _trend(self, phase: float, amplitude: float, index: int) -> float:
        # Two slow waves with symbol-specific phases: up and down regimes of about trend_bars
        # bars, with an amplitude of a few sigmas so crossovers and breakouts do occur.
        period = 4 * self.trend_bars
        return amplitude * (
            math.sin(2 * math.pi * index / period + phase)
            + 0.5 * math.sin(2 * math.pi * index / (period * 3.7) + 2 * phase)
        )

    def _rng(self, symbol: str, step: int, block: int, salt: str) -> random.Random:
        return random.Random(f"{self.seed}:{symbol}:{step}:{block}:{salt}")

    def _block_start(self, symbol: str, step: int, block: int) -> float:
        """Cumulative walk at the start of ``block`` (extended on demand, cached)."""
        walk = self._walks.setdefault((symbol, step), [0.0])
        sigma_block = self._sigma(step) * math.sqrt(BLOCK)
        while len(walk) <= block:
            rng = self._rng(symbol, step, len(walk), "block")
            walk.append(walk[-1] + rng.gauss(0, sigma_block))
        return walk[block]

    def _bridge(self, symbol: str, step: int, block: int) -> tuple[float, ...]:
        """A Brownian bridge from 0 to 0 over one block (BLOCK + 1 points), cached."""
        key = (symbol, step, block)
        cached = self._bridges.get(key)
        if cached is None:
            rng = self._rng(symbol, step, block, "bridge")
            sigma = self._sigma(step)
            path = [0.0]
            for _ in range(BLOCK):
                path.append(path[-1] + rng.gauss(0, sigma))
            total = path[-1]
            cached = tuple(p - (i / BLOCK) * total for i, p in enumerate(path))
            if len(self._bridges) > MAX_BRIDGES:
                self._bridges.clear()
            self._bridges[key] = cached
        return cached

    def candle(self, symbol: str, step: int, index: int) -> Candle:
        """Bar ``index`` (counted from ``ANCHOR``) of ``symbol``, made from scratch."""
        return self.bars(symbol, step, index, index)[0]

    def bars(self, symbol: str, step: int, lo: int, hi: int) -> list[Candle]:
        """Bars ``lo`` … ``hi`` (inclusive) made from scratch: each bar opens at the previous
        bar's close (bar 0 at its own close), its wicks and volume drawn from the bar's seed."""
        with self._lock:
            half_sigma = 0.5 * self._constants_of(symbol, step)[3]
            prices = {
                i: math.exp(self._log_price(symbol, step, i)) for i in range(max(lo - 1, 0), hi + 1)
            }
            made = []
            for index in range(lo, hi + 1):
                close = prices[index]
                open_price = prices[index - 1] if index > 0 else close
                rng = self._rng(symbol, step, index, "bar")
                wick = abs(rng.gauss(0, half_sigma))
                high = max(open_price, close) * (1 + wick)
                low = min(open_price, close) * (1 - abs(rng.gauss(0, half_sigma)))
                volume = BASE_VOLUME_QUOTE / close * math.exp(rng.gauss(0, 0.5))
                made.append(
                    Candle(
                        ANCHOR + timedelta(seconds=index * step),
                        open_price,
                        high,
                        low,
                        close,
                        volume,
                    )
                )
            return made


BASE_VOLUME_QUOTE = 2_000_000.0
