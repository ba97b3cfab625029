"""Performance metrics of a backtest, over its whole span or over chosen windows of bars.

Returns are per bar (``equity[t] / equity[t-1] - 1``, the first against the starting cash);
Sharpe and Sortino are annualized with the bars a year holds at the strategy's timeframe (risk-free
rate 0). Over several windows (the out-of-sample windows of a walk-forward split) the returns of
the windows are chained, so the numbers describe trading only inside them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from otonom_trader.backtest.simulator import BacktestFill, BacktestResult, EquityPoint
from otonom_trader.market.candles import timeframe_seconds

SECONDS_PER_YEAR = 365 * 86_400
#: The keys every metrics dictionary has (``metrics.json`` and its ``out_of_sample``).
METRIC_KEYS = (
    "span_start",
    "span_end",
    "span_days",
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
)

Window = tuple[int, int]  # [first, last) indices into the equity curve


def strategy_hash(path: str | Path) -> str:
    """sha256 of the strategy file's bytes: the version's identity for promotion."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def compute_metrics(
    result: BacktestResult, windows: Sequence[Window] | None = None
) -> dict[str, Any]:
    """The metrics over ``windows`` of the equity curve (default: all of it)."""
    curve = result.equity
    if windows is None:
        windows = [(0, len(curve))]
    windows = [(a, b) for a, b in windows if b > a]
    step = timedelta(seconds=timeframe_seconds(result.timeframe))
    returns: list[float] = []
    held_bars = 0
    chained = [1.0]
    inside: list[tuple[datetime, datetime]] = []
    for first, last in windows:
        before = float(curve[first - 1].equity) if first > 0 else float(result.initial_cash)
        for point in curve[first:last]:
            value = float(point.equity)
            r = value / before - 1 if before > 0 else 0.0
            returns.append(r)
            chained.append(chained[-1] * (1 + r))
            held_bars += point.positions_value > 0
            before = value
        inside.append((curve[first].time - step, curve[last - 1].time))
    if not returns:
        return _empty()
    span_seconds = sum((b - a).total_seconds() for a, b in inside)
    span_days = span_seconds / 86_400
    total = chained[-1] - 1
    years = span_seconds / SECONDS_PER_YEAR
    cagr = (chained[-1] ** (1 / years) - 1) if years > 0 and chained[-1] > 0 else None
    per_year = SECONDS_PER_YEAR / step.total_seconds()
    drawdown, duration_bars = _drawdown(chained)
    closed = [f for f in _fills_inside(result.fills, inside) if f.realized_pnl is not None]
    wins = [
        float(f.realized_pnl) for f in closed if f.realized_pnl is not None and f.realized_pnl > 0
    ]
    losses = [
        -float(f.realized_pnl) for f in closed if f.realized_pnl is not None and f.realized_pnl < 0
    ]
    fees = sum(float(f.fee) for f in _fills_inside(result.fills, inside))
    return {
        "span_start": inside[0][0].isoformat(),
        "span_end": inside[-1][1].isoformat(),
        "span_days": span_days,
        "total_return": total,
        "cagr": cagr,
        "sharpe": _sharpe(returns, per_year),
        "sortino": _sortino(returns, per_year),
        "max_drawdown": drawdown,
        "max_drawdown_duration_days": duration_bars * step.total_seconds() / 86_400,
        "trades": len(closed),
        "win_rate": len(wins) / len(closed) if closed else None,
        "profit_factor": (sum(wins) / sum(losses)) if losses else None,
        "exposure": held_bars / len(returns),
        "fees_paid": fees,
    }


def run_metrics(
    result: BacktestResult,
    strategy_path: str | Path,
    oos_windows: Sequence[Window] | None,
    declared: dict[str, float] | None = None,
) -> dict[str, Any]:
    """``metrics.json``: the strategy's identity, the whole span's metrics, the kill-switch
    halts and, with a walk-forward split, the out-of-sample metrics.

    ``strategy_hash`` identifies what was backtested, for the promotion gate: the file's sha256
    when its parameters were used as declared (``declared``: the file's own values); when
    overrides changed any, a hash of the file *and* those values — evidence for a version that
    is not the file, which the gate refuses. ``file_sha256`` is always the file's."""
    strategy = result.strategy
    used = dict(strategy.parameters)
    file_hash = strategy_hash(strategy_path)
    tested = file_hash
    if declared is not None and used != declared:
        canonical = json.dumps(used, sort_keys=True)
        tested = hashlib.sha256(f"{file_hash}\n{canonical}".encode()).hexdigest()
    metrics: dict[str, Any] = {
        "strategy_name": strategy.name,
        "strategy_version": strategy.version,
        "strategy_hash": tested,
        "file_sha256": file_hash,
        "strategy_parameters": used,
        "parameters_overridden": tested != file_hash,
        "symbols": list(strategy.symbols),
        "timeframe": strategy.timeframe,
        "initial_cash": float(result.initial_cash),
        "final_equity": float(result.equity[-1].equity) if result.equity else None,
        "fills": len(result.fills),
        "kill_switch_halts": result.kill_switch_halts,
        **compute_metrics(result),
    }
    if oos_windows is not None:
        metrics["walk_forward_windows"] = len(oos_windows)
        metrics["out_of_sample"] = compute_metrics(result, oos_windows)
    return metrics


def walk_forward_windows(bars: int, folds: int) -> tuple[list[Window], list[Window]]:
    """Split ``bars`` into ``folds + 1`` equal segments; fold k's in-sample window is every
    segment before k (anchored), its out-of-sample window segment k. Returns the in-sample
    windows and the out-of-sample windows, one per fold."""
    size = bars // (folds + 1)
    bounds = [i * size for i in range(folds + 1)] + [bars]
    in_sample = [(0, bounds[k]) for k in range(1, folds + 1)]
    out_of_sample = [(bounds[k], bounds[k + 1]) for k in range(1, folds + 1)]
    return in_sample, out_of_sample


def _fills_inside(
    fills: Sequence[BacktestFill], spans: Sequence[tuple[datetime, datetime]]
) -> list[BacktestFill]:
    return [f for f in fills if any(a < f.time <= b for a, b in spans)]


def _drawdown(chained: Sequence[float]) -> tuple[float, int]:
    """Deepest fall from a peak (a positive fraction) and the longest stretch of bars spent
    under a previous peak."""
    peak = chained[0]
    deepest = 0.0
    under = longest = 0
    for value in chained[1:]:
        if value >= peak:
            peak, under = value, 0
            continue
        under += 1
        longest = max(longest, under)
        deepest = max(deepest, (peak - value) / peak if peak > 0 else 0.0)
    return deepest, longest


def _sharpe(returns: Sequence[float], per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return mean / math.sqrt(var) * math.sqrt(per_year) if var > 0 else None


def _sortino(returns: Sequence[float], per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return mean / downside * math.sqrt(per_year) if downside > 0 else None


def _empty() -> dict[str, Any]:
    return dict.fromkeys(METRIC_KEYS) | {"trades": 0, "fees_paid": 0.0}


def equity_rows(curve: Sequence[EquityPoint]) -> list[tuple[str, str, str, str]]:
    """``equity.csv`` rows: time, equity, cash, positions_value."""
    return [(p.time.isoformat(), str(p.equity), str(p.cash), str(p.positions_value)) for p in curve]
