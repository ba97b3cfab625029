"""Metrics on hand-built equity curves, and the walk-forward split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.backtest.metrics import (
    METRIC_KEYS,
    compute_metrics,
    strategy_hash,
    walk_forward_windows,
)
from otonom_trader.backtest.simulator import BacktestFill, BacktestResult, EquityPoint
from otonom_trader.strategy.model import load_strategy

from .conftest import BASELINE

START = datetime(2024, 1, 1, tzinfo=UTC)


def _result(equities: list[float], fills: list[BacktestFill] | None = None) -> BacktestResult:
    result = BacktestResult(load_strategy(BASELINE), "1h", Decimal(100))
    for n, value in enumerate(equities, start=1):
        held = Decimal(1) if n % 2 else Decimal(0)
        result.equity.append(
            EquityPoint(START + timedelta(hours=n), Decimal(str(value)), Decimal(0), held)
        )
    result.fills = fills or []
    return result


def _closed(hour: int, pnl: str) -> BacktestFill:
    return BacktestFill(
        START + timedelta(hours=hour),
        "BTC/USDT",
        "sell",
        Decimal(1),
        Decimal(1),
        Decimal("0.1"),
        "exit",
        Decimal(pnl),
    )


def test_drawdown_return_and_duration_of_a_known_curve() -> None:
    # 100 → 110 (peak) → 99 (−10 %) → 104.5 → 121: under the peak for two bars.
    metrics = compute_metrics(_result([110, 99, 104.5, 121]))

    assert metrics["total_return"] == pytest.approx(0.21)
    assert metrics["max_drawdown"] == pytest.approx(0.10)
    assert metrics["max_drawdown_duration_days"] == pytest.approx(2 / 24)
    assert metrics["exposure"] == pytest.approx(0.5)
    assert metrics["span_days"] == pytest.approx(4 / 24)
    assert set(METRIC_KEYS) <= set(metrics)


def test_trades_win_rate_profit_factor_and_fees_from_closed_trades() -> None:
    fills = [_closed(1, "3"), _closed(2, "-1"), _closed(3, "1"), _closed(4, "-2")]

    metrics = compute_metrics(_result([101, 100, 101, 99], fills))

    assert metrics["trades"] == 4
    assert metrics["win_rate"] == pytest.approx(0.5)
    assert metrics["profit_factor"] == pytest.approx(4 / 3)
    assert metrics["fees_paid"] == pytest.approx(0.4)


def test_sharpe_and_sortino_are_annualized_and_none_without_variation() -> None:
    flat = compute_metrics(_result([100, 100, 100]))
    rising = compute_metrics(_result([101, 103, 102, 105]))

    assert flat["sharpe"] is None and flat["sortino"] is None
    assert rising["sharpe"] > 10  # a steady hourly gain, annualized over 8760 bars
    assert rising["sortino"] > rising["sharpe"]


def test_out_of_sample_windows_count_only_their_own_bars_and_trades() -> None:
    fills = [_closed(1, "5"), _closed(4, "-1")]
    result = _result([110, 110, 110, 99], fills)

    oos = compute_metrics(result, [(2, 4)])

    assert oos["total_return"] == pytest.approx(-0.10)
    assert oos["trades"] == 1 and oos["profit_factor"] == 0.0 and oos["win_rate"] == 0.0
    assert oos["span_start"] == (START + timedelta(hours=2)).isoformat()


def test_walk_forward_windows_are_anchored_and_cover_the_rest() -> None:
    in_sample, out_of_sample = walk_forward_windows(100, 3)

    assert in_sample == [(0, 25), (0, 50), (0, 75)]
    assert out_of_sample == [(25, 50), (50, 75), (75, 100)]


def test_strategy_hash_is_the_sha256_of_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"abc")

    assert strategy_hash(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
