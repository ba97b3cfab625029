"""Deterministic synthetic candles: the offline default data source.

A seeded random walk with realistic volatility plus slow trend regimes, defined for *every* bar
index since a fixed anchor, so any window is reproducible and the series advances with the wall
clock (each run sees the candles that closed since the last one).

How it stays cheap for any time: the walk is built in blocks of ``BLOCK`` bars. Block endpoints
form a coarse random walk (one Gaussian draw per block, variance ``BLOCK · σ²``); inside a block
the path is a Brownian bridge between its endpoints, drawn from the block's own seed. So reading
200 recent bars costs a few blocks, not every bar since the anchor.
"""

from __future__ import annotations

import math
import random
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


class SyntheticMarketData(MarketDataSource):
    """Seeded candles for any symbol. Same seed, symbol, timeframe and time → same candles."""

    name = "synthetic"

    def __init__(self, seed: int = 42, annual_volatility_pct: float = 60.0, trend_bars: int = 48):
        self.seed = seed
        self.annual_volatility = annual_volatility_pct / 100
        self.trend_bars = trend_bars
        self._walks: dict[tuple[str, int], list[float]] = {}
        self._bridges: dict[tuple[str, int, int], tuple[float, ...]] = {}

    def fetch(self, symbol: str, timeframe: str, limit: int, now: datetime) -> CandleSeries:
        """The newest ``limit`` bars whose close time is at or before ``now``."""
        # BTCUSDT and BTC/USDT are one market: they must get the same prices.
        market = to_unified(symbol)
        step = timeframe_seconds(timeframe)
        # Index of the newest *closed* bar: its close time (open + step) is <= now.
        newest = math.floor((now - ANCHOR).total_seconds() / step) - 1
        first = max(0, newest - limit + 1)
        candles = [self._candle(market, timeframe, step, i) for i in range(first, newest + 1)]
        return CandleSeries(
            symbol, timeframe, tuple(candles), tuple(find_issues(symbol, candles, timeframe))
        )

    # -- the price path -------------------------------------------------------------------

    def _sigma(self, step: int) -> float:
        return self.annual_volatility * math.sqrt(step / SECONDS_PER_YEAR)

    def _log_price(self, symbol: str, step: int, index: int) -> float:
        block, offset = divmod(index, BLOCK)
        start = self._block_start(symbol, step, block)
        end = self._block_start(symbol, step, block + 1)
        bridge = self._bridge(symbol, step, block)
        walk = start + bridge[offset] + (offset / BLOCK) * (end - start)
        return math.log(BASE_PRICES.get(symbol, 100.0)) + walk + self._trend(symbol, step, index)

    def _trend(self, symbol: str, step: int, index: int) -> float:
        # Two slow waves with symbol-specific phases: up and down regimes of about trend_bars
        # bars, with an amplitude of a few sigmas so crossovers and breakouts do occur.
        phase = (zlib.crc32(symbol.encode()) % 1000) / 1000 * 2 * math.pi
        amplitude = 2 * self._sigma(step) * math.sqrt(self.trend_bars)
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
            if len(self._bridges) > 256:
                self._bridges.clear()
            self._bridges[key] = cached
        return cached

    def _candle(self, symbol: str, timeframe: str, step: int, index: int) -> Candle:
        open_price = math.exp(self._log_price(symbol, step, index - 1)) if index > 0 else None
        close = math.exp(self._log_price(symbol, step, index))
        open_price = open_price if open_price is not None else close
        rng = self._rng(symbol, step, index, "bar")
        wick = abs(rng.gauss(0, 0.5 * self._sigma(step)))
        high = max(open_price, close) * (1 + wick)
        low = min(open_price, close) * (1 - abs(rng.gauss(0, 0.5 * self._sigma(step))))
        volume = BASE_VOLUME_QUOTE / close * math.exp(rng.gauss(0, 0.5))
        return Candle(
            ANCHOR + timedelta(seconds=index * step), open_price, high, low, close, volume
        )


BASE_VOLUME_QUOTE = 2_000_000.0
