"""The database with trades the operator tests read: real SHADOW cycles of the always-trading
strategy (a paper ledger book and the simulated exchange's book, both with fills, snapshots and
an open position)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.testkit.clock import ManualClock

ALWAYS_TRADE = Path(__file__).resolve().parents[1] / "fixtures" / "always_buy_v1.0.yaml"
START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
CYCLES = 5  # odd: the last cycle bought, so a position is open


@dataclass(frozen=True)
class TradedDatabase:
    """The SQLite file, its two books and the time of the last cycle."""

    path: Path
    paper_book: str
    broker_book: str
    last_cycle_at: datetime


def run_shadow_cycles(path: Path, clock: ManualClock, cycles: int) -> TradingDaemon:
    """``cycles`` SHADOW cycles, one candle apart, on the database at ``path``."""
    daemon = TradingDaemon(
        db_path=path,
        strategy_path=ALWAYS_TRADE,
        mode=ExecutionMode.SHADOW,
        # guardrails off: the strategy's many small losses would trip the consecutive-loss
        # guard and keep the last buy (and so an open position) from happening
        overrides=["alerts.enabled=false", "guardrails=off"],
        clock=clock,
    )
    for index in range(cycles):
        if index:
            clock.advance()
        assert daemon.run_once().status == "succeeded"
    return daemon
