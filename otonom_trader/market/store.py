"""The local candle store: closed OHLCV candles as Parquet files under ``$OTONOM_HOME/data``.

Layout, one folder per exchange, timeframe and symbol, one file per calendar month (UTC)::

    $OTONOM_HOME/data/binance/1h/BTC_USDT/2024-01.parquet
    $OTONOM_HOME/data/binance/1h/BTC_USDT/2024-02.parquet

Columns ``open_time`` (timestamp[ms, UTC]), ``open``, ``high``, ``low``, ``close``, ``volume``
(float64), sorted by ``open_time`` with no duplicates. Appending rewrites only the months the new
candles fall in (an hourly month is ~744 rows); each file is written to a temporary name and
renamed over the old one, so a download killed at any moment leaves every file either as it was
or complete: a resumed download never finds a half-written month.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from otonom_trader.home import otonom_home
from otonom_trader.market.candles import Candle, timeframe_seconds, utc
from otonom_trader.market.symbols import to_unified

SCHEMA = pa.schema(
    [
        ("open_time", pa.timestamp("ms", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
    ]
)
_SUFFIX = ".parquet"


def default_store_root() -> Path:
    """``$OTONOM_HOME/data``."""
    return otonom_home() / "data"


def symbol_folder(symbol: str) -> str:
    """``BTC/USDT`` → ``BTC_USDT`` (``:`` of a derivative symbol → ``__``); see
    :func:`folder_symbol` for the way back."""
    return to_unified(symbol).replace(":", "__").replace("/", "_")


def folder_symbol(folder: str) -> str:
    """``BTC_USDT`` → ``BTC/USDT`` (the inverse of :func:`symbol_folder`)."""
    return folder.replace("__", ":").replace("_", "/")


class CandleStore:
    """Closed candles per exchange, symbol and timeframe, read and appended by month.

    ``root`` defaults to ``$OTONOM_HOME/data``. Symbols may be given as ``BTC/USDT`` or
    ``BTCUSDT``. Reads never fail on a missing series: they return ``[]`` / ``None``.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()

    # ------------------------------------------------------------------------------- reading
    def read(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Candle]:
        """Stored candles with ``since <= open_time < until`` (either bound optional), oldest
        first. Only the month files that overlap the range are opened."""
        low = utc(since) if since is not None else None
        high = utc(until) if until is not None else None
        candles: list[Candle] = []
        for month, path in self._month_files(exchange, symbol, timeframe):
            if low is not None and _month_end(month) <= low:
                continue
            if high is not None and _month_start(month) >= high:
                break
            for candle in _read_file(path):
                if (low is None or candle.open_time >= low) and (
                    high is None or candle.open_time < high
                ):
                    candles.append(candle)
        return candles

    def symbols(self, exchange: str, timeframe: str) -> list[str]:
        """Unified symbols with at least one stored month for ``exchange`` and ``timeframe``."""
        folder = self.root / exchange / timeframe
        if not folder.is_dir():
            return []
        return sorted(
            folder_symbol(child.name)
            for child in folder.iterdir()
            if child.is_dir() and any(p.suffix == _SUFFIX for p in child.iterdir())
        )

    def first_time(self, exchange: str, symbol: str, timeframe: str) -> datetime | None:
        """Open time of the oldest stored candle, or ``None`` when nothing is stored."""
        files = self._month_files(exchange, symbol, timeframe)
        for _, path in files:
            candles = _read_file(path)
            if candles:
                return candles[0].open_time
        return None

    def last_time(self, exchange: str, symbol: str, timeframe: str) -> datetime | None:
        """Open time of the newest stored candle, or ``None`` when nothing is stored."""
        for _, path in reversed(self._month_files(exchange, symbol, timeframe)):
            candles = _read_file(path)
            if candles:
                return candles[-1].open_time
        return None

    def series_path(self, exchange: str, symbol: str, timeframe: str) -> Path:
        """The folder holding one series' month files."""
        timeframe_seconds(timeframe)  # ValueError for a bad timeframe
        return self.root / exchange / timeframe / symbol_folder(symbol)

    # ------------------------------------------------------------------------------- writing
    def append(self, exchange: str, symbol: str, timeframe: str, candles: Iterable[Candle]) -> int:
        """Merge ``candles`` into the stored series; return how many were new.

        A candle whose open time is already stored replaces the stored one (the exchange's
        latest word on a closed candle). Only the months the candles fall in are rewritten,
        each atomically.
        """
        by_month: dict[str, dict[datetime, Candle]] = {}
        for candle in candles:
            by_month.setdefault(_month_key(candle.open_time), {})[candle.open_time] = candle
        if not by_month:
            return 0
        folder = self.series_path(exchange, symbol, timeframe)
        folder.mkdir(parents=True, exist_ok=True)
        added = 0
        for month, fresh in sorted(by_month.items()):
            path = folder / f"{month}{_SUFFIX}"
            merged = {c.open_time: c for c in _read_file(path)} if path.exists() else {}
            added += sum(1 for t in fresh if t not in merged)
            merged.update(fresh)
            _write_file(path, [merged[t] for t in sorted(merged)])
        return added

    def _month_files(self, exchange: str, symbol: str, timeframe: str) -> list[tuple[str, Path]]:
        folder = self.series_path(exchange, symbol, timeframe)
        if not folder.is_dir():
            return []
        return sorted(
            (p.name.removesuffix(_SUFFIX), p)
            for p in folder.iterdir()
            if p.suffix == _SUFFIX and p.is_file()
        )


def _month_key(when: datetime) -> str:
    return f"{when.year:04d}-{when.month:02d}"


def _month_start(key: str) -> datetime:
    year, month = (int(part) for part in key.split("-"))
    return datetime(year, month, 1, tzinfo=UTC)


def _month_end(key: str) -> datetime:
    start = _month_start(key)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def _read_file(path: Path) -> list[Candle]:
    table = pq.read_table(path, schema=SCHEMA)
    columns = table.to_pydict()
    return [
        Candle(utc(t), o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            columns["open_time"],
            columns["open"],
            columns["high"],
            columns["low"],
            columns["close"],
            columns["volume"],
            strict=True,
        )
    ]


def _write_file(path: Path, candles: list[Candle]) -> None:
    table = pa.table(
        {
            "open_time": [c.open_time for c in candles],
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
        },
        schema=SCHEMA,
    )
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    # fsync before the rename: after a power cut the month is the old file or the new one.
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
