"""Benchmark: the candle store's write and read speed on one year of 5-minute candles.

Writes 105,120 candles of one symbol (12 month files) into a temporary store, then prints:

* ``append``      — the whole year in one call;
* ``read``        — all of it as ``Candle`` objects (what ``data=store`` cycles use);
* ``read_table``  — all of it as one Arrow table (columns, no object per candle);
* ``read 8 days`` — a cycle-sized window (only its month file is opened);

and the ratio read / read_table (what a backtest gains from the columns).

    .venv/bin/python bench/bench_candle_store.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from otonom_trader.market.candles import Candle
from otonom_trader.market.store import CandleStore

YEAR_OF_5M = 365 * 288
START = datetime(2024, 1, 1, tzinfo=UTC)


def _seconds(action: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="median of this many runs")
    runs = parser.parse_args().runs
    candles = [
        Candle(START + timedelta(minutes=5 * i), 100.0 + i % 7, 101.0 + i % 7, 99.0, 100.5, 3.0)
        for i in range(YEAR_OF_5M)
    ]
    with tempfile.TemporaryDirectory() as root:
        store = CandleStore(root)
        started = time.perf_counter()
        store.append("binance", "BTC/USDT", "5m", candles)
        append_s = time.perf_counter() - started
        assert store.read("binance", "BTC/USDT", "5m") == candles
        read_s = _seconds(lambda: store.read("binance", "BTC/USDT", "5m"), runs)
        table_s = _seconds(lambda: store.read_table("binance", "BTC/USDT", "5m"), runs)
        since = datetime(2024, 6, 10, tzinfo=UTC)
        window_s = _seconds(
            lambda: store.read("binance", "BTC/USDT", "5m", since, since + timedelta(days=8)), runs
        )
    print(f"candles            {YEAR_OF_5M:>10,}")
    print(f"append             {append_s * 1000:>10.0f} ms")
    print(f"read               {read_s * 1000:>10.0f} ms  ({YEAR_OF_5M / read_s:,.0f} candles/s)")
    print(f"read_table         {table_s * 1000:>10.0f} ms  ({YEAR_OF_5M / table_s:,.0f} candles/s)")
    print(f"read 8 days        {window_s * 1000:>10.1f} ms")
    print(f"read / read_table  {read_s / table_s:>10.1f}×")


if __name__ == "__main__":
    main()
