"""Market data configuration: where candles come from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Optional  # noqa: UP035 - OmegaConf 2.3 needs typing.Optional

from otonom_trader.config.errors import parse_choice, require


class DataSource(StrEnum):
    """``synthetic``: seeded generated candles (offline default). ``csv``: a user's OHLCV file.
    ``exchange``: public candles through ccxt. ``store``: history downloaded into the local
    candle store (``otonom-trader data download``)."""

    SYNTHETIC = "synthetic"
    CSV = "csv"
    EXCHANGE = "exchange"
    STORE = "store"


@dataclass
class DataConfig:
    """Candle source and how much history a cycle reads."""

    source: str = DataSource.SYNTHETIC.value
    history_bars: int = 200
    seed: int = 42
    # Synthetic generator: yearly volatility and the typical length of a trend regime.
    annual_volatility_pct: float = 60.0
    trend_bars: int = 48
    csv_path: Optional[str] = None  # noqa: UP045
    # Public candles: which exchange (ccxt id) and where (None: the exchange's own host).
    exchange_id: str = "binance"
    exchange_base_url: Optional[str] = None  # noqa: UP045
    # data=store: the candle store's folder (None: $OTONOM_HOME/data); exchange_id names whose
    # downloaded candles are read.
    store_path: Optional[str] = None  # noqa: UP045
    # Newest closed candle older than this many timeframes: stale, no new orders.
    stale_after_timeframes: int = 2
    # A close that moves more than this from the previous close is a bad print: the symbol is
    # skipped for the cycle (any source).
    max_jump_pct: float = 30.0

    def __post_init__(self) -> None:
        self.source = parse_choice(self.source, DataSource, "source")
        require(
            self.history_bars >= 2, "history_bars", f"must be at least 2, got {self.history_bars}"
        )
        require(
            self.annual_volatility_pct > 0,
            "annual_volatility_pct",
            f"must be positive, got {self.annual_volatility_pct}",
        )
        require(self.trend_bars >= 1, "trend_bars", f"must be at least 1, got {self.trend_bars}")
        require(
            self.stale_after_timeframes >= 1,
            "stale_after_timeframes",
            f"must be at least 1, got {self.stale_after_timeframes}",
        )
        require(
            0 < self.max_jump_pct <= 1000,
            "max_jump_pct",
            f"must be in (0, 1000], got {self.max_jump_pct}",
        )
        if self.source == DataSource.CSV:
            require(bool(self.csv_path), "csv_path", "is required when source is csv")
