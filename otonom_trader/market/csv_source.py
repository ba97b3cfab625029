"""OHLCV candles from a user's CSV file (``data=csv``).

Columns: ``timestamp,open,high,low,close,volume`` and optionally ``symbol`` (then one file may
hold several symbols). ``timestamp`` is the candle's open time: epoch milliseconds, epoch seconds
or ISO 8601 (UTC when no offset is given). Rows are kept in file order so that duplicates and
out-of-order rows are *reported*, not silently repaired.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

from otonom_trader.config.errors import ConfigError
from otonom_trader.market.candles import (
    Candle,
    CandleSeries,
    MarketDataSource,
    closed_only,
    find_issues,
    utc,
)
from otonom_trader.market.symbols import to_unified

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")


def parse_timestamp(text: str) -> datetime:
    """Epoch ms, epoch s, or ISO 8601 → aware UTC datetime (``ValueError`` when it is none)."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    try:
        if value.replace(".", "", 1).isdigit():
            number = float(value)
            # Epoch seconds stay below 1e11 until the year 5138; milliseconds are above it
            # for any date after 1973.
            seconds = number / 1000 if number > 1e11 else number
            return datetime.fromtimestamp(seconds, tz=UTC)
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp {text!r} is not epoch ms, epoch s or ISO 8601") from None


MAX_CSV_BYTES = 100_000_000
# Far beyond any real price or volume; a larger number is a damaged cell (and would overflow the
# book's Decimal arithmetic).
MAX_VALUE = 1e15


def _value(text: str, column: str) -> float:
    # An empty cell is a missing value: NaN, which the candle checks report (never traded on).
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if not -MAX_VALUE <= value <= MAX_VALUE:
        raise ValueError(f"{column} {text!r} is not a finite number of at most {MAX_VALUE:g}")
    return value


class CsvMarketData(MarketDataSource):
    """Candles read from one CSV file (read once, then served from memory)."""

    name = "csv"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._rows = self._read()

    def _read(self) -> dict[str | None, list[Candle]]:
        if not self.path.exists():
            raise ConfigError(f"CSV file not found: {self.path}", key="data.csv_path")
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: expected a CSV file", key="data.csv_path")
        size = self.path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise ConfigError(
                f"{self.path}: {size} bytes; expected a CSV file of at most {MAX_CSV_BYTES}",
                key="data.csv_path",
            )
        try:
            return self._parse()
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(
                f"{self.path}: not a readable CSV file ({exc})", key="data.csv_path"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot read: {exc.strerror or exc}", key="data.csv_path"
            ) from None

    def _parse(self) -> dict[str | None, list[Candle]]:
        rows: dict[str | None, list[Candle]] = {}
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise ConfigError(
                    f"{self.path}: missing column(s) {', '.join(missing)}", key="data.csv_path"
                )
            for line_no, raw in enumerate(reader, start=2):
                row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
                try:
                    candle = Candle(
                        parse_timestamp(row["timestamp"]),
                        *(_value(row[c], c) for c in ("open", "high", "low", "close", "volume")),
                    )
                    symbol = to_unified(row["symbol"]) if row.get("symbol") else None
                except ValueError as exc:
                    raise ConfigError(
                        f"{self.path}:{line_no}: {exc}", key="data.csv_path"
                    ) from None
                rows.setdefault(symbol, []).append(candle)
        return rows

    def fetch(self, symbol: str, timeframe: str, limit: int, now: datetime) -> CandleSeries:
        candles = self._rows.get(to_unified(symbol)) or self._rows.get(None) or []
        closed = closed_only(candles, timeframe, now)[-limit:]
        return CandleSeries(
            symbol, timeframe, tuple(closed), tuple(find_issues(symbol, closed, timeframe))
        )
