"""Build the configured market-data source."""

from __future__ import annotations

from otonom_trader.market.candles import MarketDataSource
from otonom_trader.market.config import DataConfig, DataSource


def build_market_data(cfg: DataConfig) -> MarketDataSource:
    """``synthetic`` (offline default), ``csv``, ``exchange`` or ``store``, as ``cfg.source``
    says."""
    if cfg.source == DataSource.SYNTHETIC:
        from otonom_trader.market.synthetic import SyntheticMarketData

        return SyntheticMarketData(cfg.seed, cfg.annual_volatility_pct, cfg.trend_bars)
    if cfg.source == DataSource.CSV:
        from otonom_trader.market.csv_source import CsvMarketData

        assert cfg.csv_path  # validated by DataConfig
        return CsvMarketData(cfg.csv_path)
    if cfg.source == DataSource.STORE:
        from otonom_trader.market.store_source import StoreMarketData

        return StoreMarketData(
            cfg.store_path, cfg.exchange_id, stale_after_timeframes=cfg.stale_after_timeframes
        )
    from otonom_trader.market.exchange_source import ExchangeMarketData

    return ExchangeMarketData(
        cfg.exchange_id,
        base_url=cfg.exchange_base_url,
        stale_after_timeframes=cfg.stale_after_timeframes,
    )
