"""The candles a backtest replays: from a CSV file, the local historical store, or the
configured data source (the seeded synthetic candles by default), checked before any bar runs.

A backtest needs clean history: a gap, a duplicate, a non-finite or impossible value or an
implausible jump makes the daemon skip that symbol's cycles, which the backtest does not model.
Such a series is refused with one line naming the symbol and the first problem.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from otonom_trader.config.errors import ConfigError
from otonom_trader.market.candles import (
    Candle,
    CandleSeries,
    MarketDataSource,
    find_issues,
    timeframe_seconds,
    with_jump_check,
)
from otonom_trader.market.config import DataConfig, DataSource
from otonom_trader.strategy.model import Strategy

#: The most candles one symbol's backtest reads (ten years of 5-minute candles).
MAX_BARS = 1_100_000
_FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


def parse_when(text: str | None, key: str) -> datetime | None:
    """``--from``/``--to``: ISO 8601 (UTC when no offset is given)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not an ISO date or time (e.g. 2024-01-01 or 2024-01-01T12:00)", key=key
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def load_history(
    strategy: Strategy,
    data: DataConfig,
    *,
    csv_path: str | Path | None = None,
    use_store: bool = False,
    store_root: str | Path | None = None,
    until: datetime | None = None,
    since: datetime | None = None,
) -> dict[str, list[Candle]]:
    """Closed candles of every strategy symbol up to ``until``, checked.

    ``since`` bounds what is read from the synthetic source and the store (plus the strategy's
    warm-up history before it); a CSV file is read whole.
    """
    end = until or _FAR_FUTURE
    series: list[CandleSeries] = []
    # data=store (the configured source) reads the store too, from its configured folder.
    if use_store or (csv_path is None and str(data.source) == "store"):
        root = store_root or getattr(data, "store_path", None)
        for symbol, candles in _from_store(strategy, data.exchange_id, root, since, until).items():
            issues = find_issues(symbol, candles, strategy.timeframe)
            series.append(CandleSeries(symbol, strategy.timeframe, tuple(candles), tuple(issues)))
    else:
        source = _source(data, csv_path, since, until)
        limit = _bars_wanted(strategy, since, until)
        # A source's series comes with its issues found (``find_issues``), as a cycle gets it.
        series = [source.fetch(s, strategy.timeframe, limit, end) for s in strategy.symbols]
    for one in series:
        _check(one, data.max_jump_pct)
    return {one.symbol: list(one.candles) for one in series}


def _source(
    data: DataConfig,
    csv_path: str | Path | None,
    since: datetime | None,
    until: datetime | None,
) -> MarketDataSource:
    from otonom_trader.market.csv_source import CsvMarketData

    if csv_path is not None:
        return CsvMarketData(csv_path)
    if data.source == DataSource.CSV:
        assert data.csv_path  # DataConfig requires it
        return CsvMarketData(data.csv_path)
    if data.source == DataSource.SYNTHETIC:
        if since is None or until is None:
            raise ConfigError(
                "the synthetic data source needs a span: give --from and --to "
                "(or --csv PATH / --store)",
                key="--from",
            )
        from otonom_trader.market.synthetic import SyntheticMarketData

        return SyntheticMarketData(data.seed, data.annual_volatility_pct, data.trend_bars)
    raise ConfigError(
        "a backtest reads history offline: give --csv PATH or --store "
        f"(data={data.source} would fetch from the network)",
        key="data.source",
    )


def _bars_wanted(strategy: Strategy, since: datetime | None, until: datetime | None) -> int:
    if since is None or until is None:
        return MAX_BARS
    if until <= since:
        raise ConfigError(f"--to ({until:%Y-%m-%d %H:%M}) is not after --from", key="--to")
    step = timeframe_seconds(strategy.timeframe)
    bars = int((until - since).total_seconds() // step) + strategy.required_history + 1
    if bars > MAX_BARS:
        raise ConfigError(
            f"{bars} {strategy.timeframe} candles per symbol; a backtest reads at most "
            f"{MAX_BARS}: shorten --from/--to",
            key="--from",
        )
    return bars


def _from_store(
    strategy: Strategy,
    exchange: str,
    root: str | Path | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, list[Candle]]:
    try:
        from otonom_trader.market.store import CandleStore
    except ImportError:
        raise ConfigError(
            "the historical candle store is not available in this installation "
            "(otonom_trader.market.store); use --csv PATH",
            key="--store",
        ) from None
    store = CandleStore(root)  # None: the store's own default folder
    warmup = timedelta(seconds=timeframe_seconds(strategy.timeframe) * strategy.required_history)
    start = since - warmup if since is not None else None
    return {
        symbol: list(store.read(exchange, symbol, strategy.timeframe, start, until))
        for symbol in strategy.symbols
    }


def _check(series: CandleSeries, max_jump_pct: float) -> None:
    if not series.candles:
        raise ConfigError(
            f"no {series.timeframe} candles for {series.symbol} in the chosen data", key="--csv"
        )
    issues = with_jump_check(series, max_jump_pct).issues
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise ConfigError(
            f"{issues[0]}{more}: a backtest needs clean, gap-free candles "
            "(the daemon would skip those cycles)",
            key="--csv",
        )


def write_candles_csv(history: dict[str, list[Candle]], path: Path) -> None:
    """Write candles in the ``data=csv`` format (epoch-ms open time, one ``symbol`` column), so
    the same history can be replayed by a backtest and by daemon cycles alike."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume", "symbol"])
        for symbol, candles in history.items():
            for c in candles:
                stamp = int(c.open_time.timestamp() * 1000)
                writer.writerow([stamp, c.open, c.high, c.low, c.close, c.volume, symbol])
