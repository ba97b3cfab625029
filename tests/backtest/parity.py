"""Replaying candles through PAPER ``TradingDaemon.run_once()`` cycles on a simulated clock: the
reference the backtest's fills are compared with (the parity test and the benchmark use it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.market.candles import Candle, timeframe_seconds
from otonom_trader.persistence import FillRecord
from otonom_trader.testkit.clock import ManualClock

Fill = tuple[str, str, str, str, str, str]  # time, symbol, side, quantity, price, fee


def daemon_fills(
    tmp_path: Path,
    strategy: Path,
    csv_path: Path,
    candles: list[Candle],
    timeframe: str,
    overrides: list[str] | None = None,
) -> list[Fill]:
    """One PAPER cycle at each candle's close, over a CSV of ``candles``; the book's fills.

    ``data.history_bars`` covers the whole file, so every cycle computes its indicators from the
    first candle on, as the backtest does."""
    step = timedelta(seconds=timeframe_seconds(timeframe))
    clock = ManualClock(candles[0].open_time + step)
    daemon = TradingDaemon(
        db_path=tmp_path / "parity.db",
        strategy_path=strategy,
        mode=ExecutionMode.PAPER,
        overrides=[
            "alerts.enabled=false",
            "data=csv",
            f"data.csv_path={csv_path}",
            f"data.history_bars={len(candles)}",
            *(overrides or []),
        ],
        clock=clock,
    )
    try:
        for candle in candles:
            clock.now = candle.open_time + step
            summary = daemon.run_once()
            assert summary.status == "succeeded", summary.notes
        with daemon.context.db.session() as session:
            rows = session.scalars(select(FillRecord).order_by(FillRecord.id)).all()
            return [
                (
                    row.filled_at.strftime("%Y-%m-%dT%H:%M"),
                    row.symbol,
                    row.side,
                    str(row.quantity),
                    str(row.price),
                    str(row.fee),
                )
                for row in rows
            ]
    finally:
        daemon.close()
