"""The research gate judges the metrics.json a real ``otonom-trader backtest`` wrote: the
backtest's output is the promotion's evidence, with no file written by hand in between."""

from __future__ import annotations

import json
from pathlib import Path

from otonom_trader.cli import main
from otonom_trader.testkit.clock import ManualClock

from .conftest import Promoter

BTC_1H = Path(__file__).resolve().parents[1] / "fixtures" / "candles" / "btcusdt_1h.csv"


def test_the_research_gate_reads_a_real_backtests_metrics(
    tmp_path: Path, strategy: Path, clock: ManualClock
) -> None:
    # The always-trading strategy on BTC only (the shipped candles are BTC's).
    text = strategy.read_text().replace("symbols: [BTC/USDT, ETH/USDT]", "symbols: [BTC/USDT]")
    strategy.write_text(text)
    out = tmp_path / "backtest"
    backtest = ["backtest", "--strategy", str(strategy), "--csv", str(BTC_1H), "--out", str(out)]
    assert main(backtest) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    promote = Promoter(tmp_path / "t.db", clock, strategy)

    code, printed = promote("check", "--evidence", str(out / "metrics.json"), "--json")

    report = json.loads(printed)
    checks = {c["name"]: c for c in report["gates"][0]["checks"]}
    assert code == 1  # 400 hourly candles are far short of the gate's span: judged, refused
    assert report["stage"] == "research"
    assert checks["backtest span (days)"]["passed"] is False
    assert float(checks["backtest span (days)"]["value"]) == round(metrics["span_days"], 1)
    assert checks["backtest trades"]["value"] == str(metrics["trades"])
