"""Issue 13, points 1 and 6: what a cycle did reaches the operator as log lines, Markdown and a
few key numbers, and ``run_once()`` logs it (the guide's snippet prints nothing otherwise)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from otonom_trader.daemon import ExecutionMode, RunSummary, TradingDaemon
from otonom_trader.testkit.clock import ManualClock


@pytest.fixture
def buying_cycle(tmp_path: Path, always_trade: Path, clock: ManualClock) -> RunSummary:
    """One PAPER cycle of the always-buying strategy (one order, one fill), its logs captured."""
    daemon = TradingDaemon(
        db_path=tmp_path / "trader.db",
        strategy_path=always_trade,
        mode=ExecutionMode.PAPER,
        clock=clock,
    )
    try:
        return daemon.run_once()
    finally:
        daemon.close()


def test_run_once_logs_the_headline_and_one_line_per_order_and_per_fill(
    tmp_path: Path, always_trade: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otonom_trader.daemon")
    daemon = TradingDaemon(db_path=tmp_path / "trader.db", strategy_path=always_trade, clock=clock)

    summary = daemon.run_once()
    daemon.close()

    lines = [r.getMessage() for r in caplog.records if r.name == "otonom_trader.daemon"]
    assert summary.orders and summary.fills  # the strategy buys on its first cycle
    assert lines[0] == summary.headline()
    assert lines[0].startswith("PAPER succeeded: 2 signal(s), 2 to act on; ")
    order_lines = [line for line in lines if line.startswith("order paper ")]
    fill_lines = [line for line in lines if line.startswith("fill paper ")]
    assert len(order_lines) == len(summary.orders)
    assert len(fill_lines) == len(summary.fills)
    assert " BUY " in order_lines[0] and "filled" in order_lines[0]


def test_the_markdown_has_the_signals_orders_books_and_guard(buying_cycle: RunSummary) -> None:
    text = buying_cycle.to_markdown()

    assert text.startswith("## PAPER cycle: succeeded\n")
    assert "- **guard**: clear" in text
    assert "### Signals" in text and "| BTC/USDT | BUY |" in text
    assert "### Orders and fills" in text and "| paper | BTC/USDT | buy |" in text
    assert "### Books" in text and "| paper | " in text


def test_key_numbers_are_small_and_json_friendly(buying_cycle: RunSummary) -> None:
    import json

    numbers = buying_cycle.key_numbers()

    assert numbers["status"] == "succeeded" and numbers["mode"] == "paper"
    assert numbers["orders"] == len(buying_cycle.orders) >= 1
    assert numbers["fills"] == len(buying_cycle.fills) >= 1
    assert set(numbers["equity"]) == {"paper"}
    assert json.loads(json.dumps(numbers)) == numbers


def test_the_stored_summary_reads_back_equal(buying_cycle: RunSummary) -> None:
    assert RunSummary.from_json(buying_cycle.to_json()) == buying_cycle
