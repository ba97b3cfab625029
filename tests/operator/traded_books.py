"""The database with trades the operator tests read: real SHADOW cycles of the always-trading
strategy (a paper ledger book and the simulated exchange's book, both with fills, snapshots and
an open position)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.daemon.summary import RunSummary
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


def run_shadow_cycles(
    path: Path, clock: ManualClock, cycles: int
) -> tuple[TradingDaemon, RunSummary]:
    """``cycles`` SHADOW cycles, one candle apart, on the database at ``path``; the daemon
    (close it) and the last cycle's summary."""
    daemon = TradingDaemon(
        db_path=path,
        strategy_path=ALWAYS_TRADE,
        mode=ExecutionMode.SHADOW,
        # guardrails off: the strategy's many small losses would trip the consecutive-loss
        # guard and keep the last buy (and so an open position) from happening
        # and no random partial fills or rejects at the simulated venue: the same trades (so an
        # open position after an odd number of cycles) on every run
        overrides=[
            "alerts.enabled=false",
            "guardrails=off",
            "broker.sim.partial_fill_probability=0",
            "broker.sim.reject_probability=0",
        ],
        clock=clock,
    )
    summary = None
    for index in range(cycles):
        if index:
            clock.advance()
        summary = daemon.run_once()
        assert summary.status == "succeeded"
    assert summary is not None
    return daemon, summary
