"""The CSV source: timestamp formats, symbol column, closed candles only, one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otonom_trader.config.errors import ConfigError
from otonom_trader.market.csv_source import CsvMarketData

T0 = datetime(2025, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)
NOW = T0 + 10 * H


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text(text)
    return path


def _rows(stamps: list[str], symbol: str | None = None) -> str:
    lines = []
    for i, stamp in enumerate(stamps):
        prefix = f"{symbol}," if symbol else ""
        lines.append(f"{prefix}{stamp},{100 + i},{102 + i},{99 + i},{101 + i},7.5")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "stamp",
    [
        lambda t: str(int(t.timestamp() * 1000)),  # epoch ms
        lambda t: str(int(t.timestamp())),  # epoch s
        lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),  # ISO with Z
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S"),  # ISO without offset → UTC
        lambda t: (t + 2 * H).strftime("%Y-%m-%dT%H:%M:%S+02:00"),  # ISO with an offset
    ],
)
def test_timestamps_when_any_supported_format_then_same_utc_candles(
    tmp_path: Path, stamp: object
) -> None:
    times = [T0 + i * H for i in range(3)]
    header = "timestamp,open,high,low,close,volume\n"
    path = _file(tmp_path, header + _rows([stamp(t) for t in times]))  # type: ignore[operator]

    series = CsvMarketData(path).fetch("BTC/USDT", "1h", 10, NOW)

    assert [c.open_time for c in series.candles] == times
    assert series.candles[0].close == 101.0 and series.tradable


def test_symbol_column_when_several_symbols_then_each_gets_its_own_rows(tmp_path: Path) -> None:
    stamps = [str(int((T0 + i * H).timestamp())) for i in range(3)]
    text = (
        "symbol,timestamp,open,high,low,close,volume\n"
        + _rows(stamps, "BTCUSDT")
        + _rows(stamps[:2], "ETH/USDT")
    )
    source = CsvMarketData(_file(tmp_path, text))

    assert len(source.fetch("BTC/USDT", "1h", 10, NOW).candles) == 3
    assert len(source.fetch("ETHUSDT", "1h", 10, NOW).candles) == 2
    assert [i.kind for i in source.fetch("LTC/USDT", "1h", 10, NOW).issues] == ["empty"]


def test_fetch_when_last_row_still_forming_then_dropped_and_limit_applies(tmp_path: Path) -> None:
    stamps = [str(int((T0 + i * H).timestamp())) for i in range(6)]
    source = CsvMarketData(
        _file(tmp_path, "timestamp,open,high,low,close,volume\n" + _rows(stamps))
    )

    series = source.fetch("BTC/USDT", "1h", 3, T0 + 5 * H + timedelta(minutes=30))

    assert [c.open_time for c in series.candles] == [T0 + 2 * H, T0 + 3 * H, T0 + 4 * H]


def test_rows_when_duplicate_out_of_order_or_empty_cell_then_reported_not_repaired(
    tmp_path: Path,
) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2025-06-01T00:00:00Z,1,2,0.5,1.5,1\n"
        "2025-06-01T02:00:00Z,1,2,0.5,1.5,1\n"
        "2025-06-01T01:00:00Z,1,2,0.5,1.5,1\n"
        "2025-06-01T01:00:00Z,1,2,0.5,,1\n"
    )
    kinds = {
        i.kind for i in CsvMarketData(_file(tmp_path, text)).fetch("X/USDT", "1h", 9, NOW).issues
    }
    assert {"out_of_order", "duplicate", "bad_value"} <= kinds


def test_missing_column_when_loaded_then_one_line_config_error_naming_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "timestamp,open,high,low,close\n1,1,1,1,1\n")
    with pytest.raises(ConfigError) as info:
        CsvMarketData(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "missing column(s) volume" in message
    assert info.value.key == "data.csv_path"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("yesterday,1,2,0.5,1.5,1", "timestamp 'yesterday'"),
        ("99999999999999999999,1,2,0.5,1.5,1", "is not epoch ms"),
        ("2025-06-01T00:00:00Z,1,2,0.5,abc,1", "close 'abc' is not a number"),
    ],
)
def test_bad_row_when_loaded_then_one_line_error_with_file_and_line(
    tmp_path: Path, row: str, expected: str
) -> None:
    path = _file(tmp_path, f"timestamp,open,high,low,close,volume\n{row}\n")
    with pytest.raises(ConfigError) as info:
        CsvMarketData(path)
    assert f"{path}:2:" in str(info.value) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_when_loaded_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CSV file not found"):
        CsvMarketData(tmp_path / "none.csv")
