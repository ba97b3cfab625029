"""Prices that cannot be believed SKIP their symbol for the cycle, from every data source
alike: a close that jumps far from the previous one (a 5e9 BTC print), NaN, zero. The cycle
completes, the other symbols trade, the reason is in the summary."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.market.candles import Candle, CandleSeries, with_jump_check
from otonom_trader.market.exchange_source import _number
from otonom_trader.testkit.clock import ManualClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _candles(closes: list[float]) -> list[Candle]:
    return [
        Candle(T0 + timedelta(hours=i), c, max(c, 1.0) * 1.01 if math.isfinite(c) else c, c, c, 1.0)
        for i, c in enumerate(closes)
    ]


def test_a_jump_beyond_the_band_is_an_issue_and_a_normal_move_is_not() -> None:
    calm = CandleSeries("BTC/USDT", "1h", tuple(_candles([100.0, 104.0, 101.0])))
    spike = CandleSeries("BTC/USDT", "1h", tuple(_candles([50000.0, 5e9])))

    assert with_jump_check(calm, 30.0).issues == ()
    assert [i.kind for i in with_jump_check(spike, 30.0).issues] == ["jump"]


def test_an_unreadable_exchange_value_becomes_nan_instead_of_failing_the_cycle() -> None:
    assert math.isnan(_number(None)) and math.isnan(_number("x")) and _number("1.5") == 1.5


# (A NaN in a CSV is refused before the cycle starts, as a bad input file; from the exchange,
# where no one can fix the file, it becomes NaN and skips the symbol: see the test above.)
@pytest.mark.parametrize(("bad_close", "reason"), [("5000000000", "jump"), ("0", "non-positive")])
def test_a_bad_close_in_a_csv_skips_its_symbol_and_the_cycle_trades_the_rest(
    tmp_path: Path, bad_close: str, reason: str
) -> None:
    rows = ["timestamp,open,high,low,close,volume,symbol"]
    for i in range(60):
        at = int((T0 + timedelta(hours=i)).timestamp() * 1000)
        btc = 50000 + (i % 7) * 100
        eth = 3000 + (i % 5) * 10
        rows.append(f"{at},{btc},{btc + 50},{btc - 50},{btc},10,BTC/USDT")
        eth_close = bad_close if i == 59 else str(eth)
        high = eth + 5 if i != 59 else bad_close
        low = eth - 5 if i != 59 else bad_close
        rows.append(f"{at},{eth},{high},{low},{eth_close},10,ETH/USDT")
    data = tmp_path / "candles.csv"
    data.write_text("\n".join(rows) + "\n")
    daemon = TradingDaemon(
        db_path=tmp_path / "trader.db",
        strategy_path=FIXTURES / "always_buy_v1.0.yaml",
        mode=ExecutionMode.PAPER,
        overrides=["alerts.enabled=false", "data=csv", f"data.csv_path={data}"],
        clock=ManualClock(T0 + timedelta(hours=60, seconds=30)),
    )
    summary = daemon.run_once()
    daemon.close()

    signals = {s.symbol: s for s in summary.signals}
    assert summary.status == "succeeded"
    assert signals["ETH/USDT"].action == "skip" and reason in signals["ETH/USDT"].reason
    assert {o.symbol for o in summary.orders} == {"BTC/USDT"}
