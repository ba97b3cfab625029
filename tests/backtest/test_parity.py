"""Parity: the backtest and PAPER ``run_once()`` cycles over the same candles make exactly the
same fills (time, symbol, side, quantity, price, fee), halts included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from otonom_trader.backtest.history import write_candles_csv
from otonom_trader.backtest.runner import BacktestRequest, run_backtest
from otonom_trader.market.synthetic import SyntheticMarketData

from .conftest import ALWAYS_TRADE, BASELINE, BTC_1H, XRP_1H, read_candles, strategy_on
from .parity import Fill, daemon_fills

END = datetime(2025, 6, 1, tzinfo=UTC)


def _backtest_fills(strategy: Path, csv_path: Path, overrides: list[str]) -> tuple[list[Fill], int]:
    run = run_backtest(BacktestRequest(strategy, tuple(overrides), csv_path=csv_path))
    fills = [
        (
            f.time.strftime("%Y-%m-%dT%H:%M"),
            f.symbol,
            f.side,
            str(f.quantity),
            str(f.price),
            str(f.fee),
        )
        for f in run.result.fills
    ]
    return fills, run.metrics["kill_switch_halts"]


@pytest.mark.parametrize(
    ("csv_path", "symbol", "bars"),
    [(BTC_1H, "BTC/USDT", 200), (XRP_1H, "XRP/USDT", 166)],
    ids=["btc-1h", "xrp-1h"],
)
def test_baseline_backtest_fills_equal_paper_run_once_fills(
    tmp_path: Path, csv_path: Path, symbol: str, bars: int
) -> None:
    strategy = strategy_on(BASELINE, tmp_path, symbol)
    candles = read_candles(csv_path, symbol)[:bars]
    window = tmp_path / "candles.csv"
    window.write_text("".join(csv_path.read_text().splitlines(keepends=True)[: bars + 1]))

    expected = daemon_fills(tmp_path, strategy, window, candles, "1h")
    fills, _halts = _backtest_fills(strategy, window, [])

    assert len(expected) >= 4  # the baseline trades on this window: buys and sells
    assert {f[2] for f in expected} == {"buy", "sell"}
    assert fills == expected


def test_halting_variant_fills_and_halts_equal_paper_run_once(tmp_path: Path) -> None:
    # Enters and exits on alternate bars; a two-loss streak halts for five hours, and a 1 %
    # daily loss halts for the day: the kill-switch trips and clears many times.
    strategy = strategy_on(ALWAYS_TRADE, tmp_path, "XRP/USDT")
    overrides = [
        "guardrails.max_consecutive_losses=2",
        "guardrails.consecutive_loss_cooldown_hours=5",
        "guardrails.max_daily_loss_pct=1.0",
    ]
    candles = read_candles(XRP_1H, "XRP/USDT")[:110]
    window = tmp_path / "candles.csv"
    window.write_text("".join(XRP_1H.read_text().splitlines(keepends=True)[:111]))

    expected = daemon_fills(tmp_path, strategy, window, candles, "1h", overrides)
    fills, halts = _backtest_fills(strategy, window, overrides)

    assert halts >= 4
    assert len(expected) > 30
    assert fills == expected


def test_two_symbols_sharing_one_cash_balance_fill_as_in_paper_run_once(tmp_path: Path) -> None:
    # Both symbols enter on the same bars at 60 % of equity each: the second buy is cut to the
    # cash the first one left, on both sides. Seeded synthetic candles on one clock.
    strategy = strategy_on(ALWAYS_TRADE, tmp_path, "BTC/USDT", "ETH/USDT")
    rules = strategy.read_text()
    strategy.write_text(rules.replace("value: 20, max_position_quote: 5000", "value: 60"))
    assert strategy.read_text() != rules
    source = SyntheticMarketData()
    history = {s: list(source.fetch(s, "1h", 60, END).candles) for s in ("BTC/USDT", "ETH/USDT")}
    csv_path = tmp_path / "two.csv"
    write_candles_csv(history, csv_path)
    candles = history["BTC/USDT"]

    expected = daemon_fills(tmp_path, strategy, csv_path, candles, "1h", ["guardrails=off"])
    fills, _halts = _backtest_fills(strategy, csv_path, ["guardrails=off"])

    assert {f[1] for f in expected} == {"BTC/USDT", "ETH/USDT"}
    assert len(expected) > 30
    assert fills == expected


@pytest.mark.parametrize(
    "overrides",
    [
        ["guardrails.halt_policy=reduce_only"],
        ["guardrails.halt_policy=reject_all", "guardrails.max_drawdown_pct=3"],
    ],
    ids=["reduce-only", "reject-all-drawdown"],
)
def test_halts_between_two_symbols_orders_fill_as_in_paper_run_once(
    tmp_path: Path, overrides: list[str]
) -> None:
    # Two symbols enter and exit on the same bars; a two-loss streak halts for three hours. The
    # first symbol's losing sell can trip the switch before the second symbol's order of the
    # same bar: the halt then refuses that order (or, under reduce_only, lets an exit through).
    strategy = strategy_on(ALWAYS_TRADE, tmp_path, "BTC/USDT", "ETH/USDT")
    overrides = [
        *overrides,
        "guardrails.max_consecutive_losses=2",
        "guardrails.consecutive_loss_cooldown_hours=3",
    ]
    source = SyntheticMarketData()
    history = {s: list(source.fetch(s, "1h", 80, END).candles) for s in ("BTC/USDT", "ETH/USDT")}
    csv_path = tmp_path / "two.csv"
    write_candles_csv(history, csv_path)

    expected = daemon_fills(tmp_path, strategy, csv_path, history["BTC/USDT"], "1h", overrides)
    fills, halts = _backtest_fills(strategy, csv_path, overrides)

    assert halts >= 5
    assert len(expected) > 40
    assert fills == expected
