"""A backtest's outputs: ``trades.csv``, ``equity.csv``, ``metrics.json``, ``report.png`` and
the metrics as a terminal table."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from otonom_trader.backtest.metrics import equity_rows
from otonom_trader.backtest.simulator import BacktestResult

TRADE_COLUMNS = ("time", "symbol", "side", "quantity", "price", "fee", "reason")


def write_outputs(result: BacktestResult, metrics: dict[str, Any], out: Path) -> list[Path]:
    """Write every output file into ``out`` (created); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    trades = out / "trades.csv"
    with trades.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRADE_COLUMNS)
        for f in result.fills:
            writer.writerow(
                (f.time.isoformat(), f.symbol, f.side, f.quantity, f.price, f.fee, f.reason)
            )
    equity = out / "equity.csv"
    with equity.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("time", "equity", "cash", "positions_value"))
        writer.writerows(equity_rows(result.equity))
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    png = out / "report.png"
    plot_report(result, png)
    return [trades, equity, metrics_path, png]


def plot_report(result: BacktestResult, path: Path) -> None:
    """Equity, drawdown, and each symbol's closes with its buys and sells (Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    symbols = list(result.prices)
    rows = 2 + len(symbols)
    figure = Figure(figsize=(10, 2.4 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True)
    times = [p.time for p in result.equity]
    equity = [float(p.equity) for p in result.equity]
    axes[0].plot(times, equity, color="tab:blue", linewidth=1)
    axes[0].set_title(
        f"{result.strategy.name} v{result.strategy.version}: equity ({len(result.fills)} fills)"
    )
    peak = -math.inf
    drawdown = []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(-(peak - value) / peak * 100 if peak > 0 else 0.0)
    axes[1].fill_between(times, drawdown, 0, color="tab:red", alpha=0.4)
    axes[1].set_title("drawdown (%)")
    for ax, symbol in zip(axes[2:], symbols, strict=True):
        prices = result.prices[symbol]
        ax.plot([t for t, _ in prices], [c for _, c in prices], color="grey", linewidth=0.8)
        for side, marker, color in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
            fills = [f for f in result.fills if f.symbol == symbol and f.side == side]
            ax.scatter(
                [f.time for f in fills],
                [float(f.price) for f in fills],
                marker=marker,
                color=color,
                s=30,
                label=f"{side} ({len(fills)})",
                zorder=3,
            )
        ax.set_title(f"{symbol} close with trades")
        ax.legend(loc="upper left", fontsize="small")
    figure.savefig(path, dpi=90)


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key in {"total_return", "cagr", "max_drawdown", "win_rate", "exposure"}:
        return f"{value * 100:.2f} %"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


SHOWN = (
    ("total_return", "total return"),
    ("cagr", "CAGR"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("max_drawdown", "max drawdown"),
    ("max_drawdown_duration_days", "longest drawdown (days)"),
    ("trades", "closed trades"),
    ("win_rate", "win rate"),
    ("profit_factor", "profit factor"),
    ("exposure", "exposure"),
    ("fees_paid", "fees paid"),
)


def metrics_table(metrics: dict[str, Any]) -> Table:
    """The metrics as a two- or three-column table (with out-of-sample numbers when present)."""
    oos = metrics.get("out_of_sample")
    title = (
        f"{metrics['strategy_name']} v{metrics['strategy_version']} · {metrics['timeframe']} · "
        f"{metrics['span_days']:.0f} days"
    )
    table = Table(title=title, title_justify="left", caption=", ".join(metrics["symbols"]))
    table.add_column("metric")
    table.add_column("whole span", justify="right")
    if oos:
        table.add_column("out-of-sample", justify="right")
    rows: Sequence[tuple[str, str]] = (
        *SHOWN,
        ("kill_switch_halts", "kill-switch halts"),
        ("final_equity", "final equity"),
    )
    for key, label in rows:
        cells = [label, _fmt(key, metrics.get(key))]
        if oos:
            cells.append(_fmt(key, oos.get(key)) if key in oos else "")
        table.add_row(*cells)
    return table


def print_metrics(metrics: dict[str, Any], written: Sequence[Path], console: Console) -> None:
    """The table, then where the files are."""
    console.print(metrics_table(metrics))
    console.print(f"{metrics['fills']} fills · files: " + ", ".join(str(p) for p in written))
