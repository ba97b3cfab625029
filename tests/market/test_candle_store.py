"""CandleStore: Parquet month files under $OTONOM_HOME/data, read back exactly as written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from otonom_trader.config.errors import ConfigError
from otonom_trader.market.candles import Candle
from otonom_trader.market.store import CandleStore, default_store_root

HOUR = timedelta(hours=1)


def test_default_root_is_the_data_folder_of_otonom_home(isolated_home: Path) -> None:
    assert CandleStore().root == default_store_root() == isolated_home / "data"


def test_real_candles_read_back_exactly_as_written_one_file_per_month(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    candles = btc_1h
    store = CandleStore(tmp_path)

    added = store.append("binance", "BTC/USDT", "1h", candles)

    assert added == len(candles) == 916
    assert store.read("binance", "BTCUSDT", "1h") == candles
    folder = tmp_path / "binance" / "1h" / "BTC_USDT"
    assert sorted(p.name for p in folder.iterdir()) == ["2023-01.parquet", "2023-02.parquet"]
    assert pq.read_table(folder / "2023-02.parquet").column_names == [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]


def test_read_range_is_since_inclusive_until_exclusive(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    candles = btc_1h
    store = CandleStore(tmp_path)
    store.append("binance", "BTC/USDT", "1h", candles)
    since, until = candles[100].open_time, candles[110].open_time

    window = store.read("binance", "BTC/USDT", "1h", since=since, until=until)

    assert window == candles[100:110]
    assert store.read("binance", "BTC/USDT", "1h", since=candles[-1].open_time + HOUR) == []


def test_appending_overlapping_candles_adds_only_the_new_ones_without_duplicates(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    candles = btc_1h
    store = CandleStore(tmp_path)
    store.append("binance", "BTC/USDT", "1h", candles[:500])

    added = store.append("binance", "BTC/USDT", "1h", candles[400:])

    assert added == len(candles) - 500
    assert store.read("binance", "BTC/USDT", "1h") == candles
    assert not list(tmp_path.rglob("*.tmp"))  # every write was renamed into place


def test_an_appended_month_rewrites_only_that_month_file(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    candles = btc_1h
    store = CandleStore(tmp_path)
    store.append("binance", "BTC/USDT", "1h", candles[:-1])
    january = tmp_path / "binance" / "1h" / "BTC_USDT" / "2023-01.parquet"
    before = january.stat().st_mtime_ns

    store.append("binance", "BTC/USDT", "1h", candles[-1:])

    assert january.stat().st_mtime_ns == before
    assert store.last_time("binance", "BTC/USDT", "1h") == candles[-1].open_time


def test_symbols_and_times_of_stored_series_and_none_for_missing_ones(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    candles = btc_1h
    store = CandleStore(tmp_path)
    store.append("binance", "BTC/USDT", "1h", candles)
    store.append("binance", "ETH/USDT", "1h", candles[:3])

    assert store.symbols("binance", "1h") == ["BTC/USDT", "ETH/USDT"]
    assert store.symbols("binance", "5m") == [] and store.symbols("bybit", "1h") == []
    assert store.first_time("binance", "BTC/USDT", "1h") == candles[0].open_time
    assert store.last_time("binance", "ETH/USDT", "1h") == candles[2].open_time
    assert store.last_time("binance", "XRP/USDT", "1h") is None
    assert store.read("binance", "XRP/USDT", "1h") == []


def test_read_table_holds_the_same_range_as_columns(tmp_path: Path, btc_1h: list[Candle]) -> None:
    store = CandleStore(tmp_path)
    store.append("binance", "BTC/USDT", "1h", btc_1h)
    since, until = btc_1h[300].open_time, btc_1h[700].open_time  # across the month boundary

    table = store.read_table("binance", "BTC/USDT", "1h", since, until)

    assert table.num_rows == 400
    assert table.column("close").to_pylist() == [c.close for c in btc_1h[300:700]]
    assert table.column("open_time")[0].as_py() == since
    assert store.read_table("binance", "XRP/USDT", "1h").num_rows == 0


def test_a_damaged_month_file_is_one_config_error_naming_it(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    store = CandleStore(tmp_path)
    store.append("binance", "BTC/USDT", "1h", btc_1h)
    february = tmp_path / "binance" / "1h" / "BTC_USDT" / "2023-02.parquet"
    february.write_bytes(february.read_bytes()[:100])  # cut short

    with pytest.raises(ConfigError) as error:
        store.read("binance", "BTC/USDT", "1h")

    assert str(error.value).startswith(f"data.store_path: {february}: not a readable candle file")
    assert "\n" not in str(error.value)
    assert store.read("binance", "BTC/USDT", "1h", until=btc_1h[200].open_time) == btc_1h[:200]
