"""Backtest fixtures: real candles shipped with the tests, strategies made from the baseline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.market.candles import Candle
from otonom_trader.market.csv_source import CsvMarketData

CANDLES = Path(__file__).resolve().parents[1] / "fixtures" / "candles"
BASELINE = PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml"
ALWAYS_TRADE = Path(__file__).resolve().parents[1] / "fixtures" / "always_buy_v1.0.yaml"
BTC_1H = CANDLES / "btcusdt_1h.csv"  # 400 real hourly candles, 2023-01-02 →
XRP_1H = CANDLES / "xrpusdt_1h.csv"  # 166 real hourly candles, 2021-11-15 →


def read_candles(path: Path, symbol: str) -> list[Candle]:
    """Every candle of ``symbol`` in a CSV file, oldest first."""
    far = datetime(2100, 1, 1, tzinfo=UTC)
    return list(CsvMarketData(path).fetch(symbol, "1h", 100_000, far).candles)


def strategy_on(source: Path, tmp_path: Path, *symbols: str) -> Path:
    """A copy of ``source`` trading ``symbols`` instead (its rules unchanged)."""
    text = source.read_text()
    listed = "symbols:\n" + "".join(f"  - {s}\n" for s in symbols)
    if "symbols: [BTC/USDT, ETH/USDT]" in text:
        text = text.replace("symbols: [BTC/USDT, ETH/USDT]\n", listed)
    else:
        text = text.replace("symbols:\n  - BTC/USDT\n  - ETH/USDT\n", listed)
    assert listed in text, f"{source} lists its symbols differently"
    path = tmp_path / f"{source.stem}_{'_'.join(s.split('/')[0] for s in symbols)}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def baseline_btc(tmp_path: Path) -> Path:
    return strategy_on(BASELINE, tmp_path, "BTC/USDT")


@pytest.fixture
def baseline_xrp(tmp_path: Path) -> Path:
    return strategy_on(BASELINE, tmp_path, "XRP/USDT")
