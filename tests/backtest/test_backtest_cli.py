"""``otonom-trader backtest`` end to end: files, the table, sweeps, one year offline, mistakes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from otonom_trader.backtest.metrics import strategy_hash
from otonom_trader.cli import main

from .conftest import BASELINE, BTC_1H, read_candles, strategy_on

#: What the promotion workflow reads from metrics.json (the research → paper gate's evidence).
PROMOTION_KEYS = {
    "strategy_name",
    "strategy_version",
    "strategy_hash",
    "span_start",
    "span_end",
    "span_days",
    "symbols",
    "timeframe",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration_days",
    "trades",
    "win_rate",
    "profit_factor",
    "exposure",
    "fees_paid",
    "kill_switch_halts",
}
PARAMETRIZED = """\
name: ema_sweep
version: "0.1"
symbols: [BTC/USDT]
timeframe: 1h
parameters: {fast: 12, slow: 26}
entry:
  - {indicator: ema_cross, fast: $fast, slow: $slow, direction: up}
exit:
  - {indicator: ema_cross, fast: $fast, slow: $slow, direction: down}
sizing: {mode: pct_equity, value: 20}
"""


def _on_btc(strategy: Path, out: Path) -> list[str]:
    """The backtest command on the shipped BTC candles."""
    return ["backtest", "--strategy", str(strategy), "--csv", str(BTC_1H), "--out", str(out)]


def test_backtest_on_a_csv_writes_trades_equity_metrics_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = strategy_on(BASELINE, tmp_path, "BTC/USDT")
    out = tmp_path / "out"

    status = main(_on_btc(strategy, out))

    assert status == 0
    with (out / "trades.csv").open() as handle:
        trades = list(csv.DictReader(handle))
    assert list(trades[0]) == ["time", "symbol", "side", "quantity", "price", "fee", "reason"]
    assert trades[0]["time"].endswith("+00:00") and trades[0]["side"] == "buy"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= PROMOTION_KEYS
    assert metrics["strategy_hash"] == strategy_hash(strategy)
    assert metrics["fills"] == len(trades)
    assert metrics["symbols"] == ["BTC/USDT"] and metrics["timeframe"] == "1h"
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    equity_lines = (out / "equity.csv").read_text().splitlines()
    assert equity_lines[0] == "time,equity,cash,positions_value" and len(equity_lines) == 401
    shown = capsys.readouterr().out
    assert "total return" in shown and "max drawdown" in shown
    assert max(len(line) for line in shown.splitlines()) <= 80


def test_one_year_hourly_baseline_on_two_symbols_completes_offline_with_walk_forward(
    tmp_path: Path,
) -> None:
    out = tmp_path / "year"

    status = main(
        [
            "backtest",
            "--strategy",
            str(BASELINE),
            "--from",
            "2025-01-01",
            "--to",
            "2026-01-01",
            "--walk-forward",
            "3",
            "--out",
            str(out),
        ]
    )

    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert metrics["span_days"] == pytest.approx(365)
    assert metrics["span_start"] == "2025-01-01T00:00:00+00:00"
    assert metrics["trades"] > 20
    oos = metrics["out_of_sample"]
    assert PROMOTION_KEYS - {
        "strategy_name",
        "strategy_version",
        "strategy_hash",
        "symbols",
        "timeframe",
        "kill_switch_halts",
    } <= set(oos)
    assert oos["span_days"] == pytest.approx(365 * 3 / 4, abs=1)
    assert 0 < oos["trades"] < metrics["trades"]


def test_sweep_runs_every_combination_sorted_with_out_of_sample_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = tmp_path / "ema_sweep.yaml"
    strategy.write_text(PARAMETRIZED)
    out = tmp_path / "sweep"

    status = main(
        [
            *_on_btc(strategy, out),
            "--walk-forward",
            "2",
            "--sweep",
            "strategy.params.fast=5,12",
            "--sweep",
            "paper.slippage_bps=0,20",
            "--sort",
            "total_return",
        ]
    )

    assert status == 0
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {r["values"] for r in rows} == {
        "fast=5 slippage_bps=0",
        "fast=5 slippage_bps=20",
        "fast=12 slippage_bps=0",
        "fast=12 slippage_bps=20",
    }
    returns = [float(r["oos_total_return"]) for r in rows]
    assert returns == sorted(returns, reverse=True)
    for n in range(1, 5):
        run = json.loads((out / f"run-{n:03d}" / "metrics.json").read_text())
        assert "out_of_sample" in run
    first = json.loads((out / "run-001" / "metrics.json").read_text())
    assert first["strategy_parameters"]["fast"] in (5, 12)
    shown = capsys.readouterr().out
    assert "sweep: 4 runs sorted by total_return (out-of-sample)" in shown
    assert "walk-forward choice" in shown


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "nope.yaml"], "strategy file not found: nope.yaml"),
        (["--from", "yesterday"], "'yesterday' is not an ISO date"),
        (["--param", "fast=8"], "fast: is not a declared parameter"),
        (["--sweep", "strategy.params.fast"], "expected KEY=V1,V2"),
        (["-o", "paper.slippage_bps=-3"], "slippage_bps"),
        (["--walk-forward", "0"], "--walk-forward"),
        (["--sweep", "paper.slippage_bps=1,2", "--sort", "luck"], "--sort"),
        (
            ["-o", "paper.slippage_bps=1000", "-o", "execution.price_band_pct=5"],
            "the paper slippage is beyond the execution price band",
        ),
    ],
)
def test_a_mistake_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    strategy = strategy_on(BASELINE, tmp_path, "BTC/USDT")
    out = tmp_path / "out"
    args = _on_btc(strategy, out)
    if extra[0] == "--strategy":
        args[2] = extra[1]
        extra = []

    status = main([*args, *extra])

    err = capsys.readouterr().err
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_symbol_missing_from_the_csv_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = strategy_on(BASELINE, tmp_path, "BTC/USDT", "ETH/USDT")

    status = main(_on_btc(strategy, tmp_path / "o"))

    assert status == 2
    assert "no 1h candles for ETH/USDT" in capsys.readouterr().err


def test_store_is_read_through_the_candle_store_or_said_to_be_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = strategy_on(BASELINE, tmp_path, "BTC/USDT")
    try:
        from otonom_trader.market.store import CandleStore
    except ImportError:
        status = main(
            ["backtest", "--strategy", str(strategy), "--store", "--out", str(tmp_path / "o")]
        )
        assert status == 2
        assert "candle store is not available" in capsys.readouterr().err
        return
    # The store is installed: the same candles through it give the same fills as the CSV.
    CandleStore().append("binance", "BTC/USDT", "1h", read_candles(BTC_1H, "BTC/USDT"))
    from_store = main(
        ["backtest", "--strategy", str(strategy), "--store", "--out", str(tmp_path / "s")]
    )
    from_csv = main(_on_btc(strategy, tmp_path / "c"))

    assert from_store == from_csv == 0
    store_trades = (tmp_path / "s" / "trades.csv").read_text()
    assert store_trades == (tmp_path / "c" / "trades.csv").read_text()
    assert store_trades.count("\n") > 2


def test_global_overrides_reach_the_backtest(tmp_path: Path) -> None:
    strategy = strategy_on(BASELINE, tmp_path, "BTC/USDT")
    out = tmp_path / "out"

    status = main(
        ["-o", "paper.initial_cash=5000", "-o", "paper.taker_fee_bps=0", *_on_btc(strategy, out)]
    )

    metrics = json.loads((out / "metrics.json").read_text())
    assert status == 0
    assert metrics["initial_cash"] == 5000.0
    assert metrics["fills"] > 0 and metrics["fees_paid"] == 0.0


def test_overridden_parameters_are_not_evidence_for_the_file_as_written(tmp_path: Path) -> None:
    strategy = tmp_path / "ema_sweep.yaml"
    strategy.write_text(PARAMETRIZED)

    as_written = main([*_on_btc(strategy, tmp_path / "a"), "--param", "fast=12"])
    changed = main([*_on_btc(strategy, tmp_path / "b"), "--param", "fast=5"])

    same = json.loads((tmp_path / "a" / "metrics.json").read_text())
    other = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert as_written == changed == 0
    assert same["strategy_hash"] == same["file_sha256"] == strategy_hash(strategy)
    assert not same["parameters_overridden"]
    assert other["file_sha256"] == strategy_hash(strategy)
    assert other["strategy_hash"] != strategy_hash(strategy)
    assert other["parameters_overridden"] and other["strategy_parameters"]["fast"] == 5
