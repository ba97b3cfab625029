"""Divergence statistics on the hand-computed example (see conftest), rendering, edge cases."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rich.console import Console

from otonom_trader.broker.errors import BrokerNetworkError, InvalidOrderError, KillSwitchError
from otonom_trader.broker.types import OrderSide
from otonom_trader.persistence import Database
from otonom_trader.shadow.ledger import ShadowLedger, ShadowLeg
from otonom_trader.shadow.report import NO_PAIRS_MESSAGE, build_report, render_report

from .conftest import Example

FillLeg = Callable[..., ShadowLeg]
BASE = datetime(2025, 3, 1, tzinfo=UTC)


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=160, color_system=None), buffer


def test_build_report_on_the_hand_computed_example_gives_exact_numbers(example: Example) -> None:
    # Act
    report = build_report(example.db, since=example.since, until=example.until)

    # Assert
    assert report.pair_count == 4
    paper, broker = report.paper, report.broker
    assert (paper.legs, paper.filled, paper.fill_rate) == (4, 4, Decimal(1))
    assert (broker.legs, broker.filled, broker.fill_rate) == (4, 2, Decimal("0.5"))
    assert paper.mean_slippage_bps == Decimal("12.5")
    assert paper.worst_slippage_bps == Decimal("20")
    assert broker.mean_slippage_bps == Decimal("0")
    assert broker.worst_slippage_bps == Decimal("5")
    assert paper.mean_latency_ms == 1.0
    assert broker.mean_latency_ms == 100.0
    assert paper.total_fee == Decimal("0.624525")
    assert broker.total_fee == Decimal("0.50025")
    assert report.fee_difference == Decimal("-0.124275")
    assert dict(broker.status_counts) == {"filled": 2, "halted": 1, "rejected": 1}
    assert (report.status_mismatches, report.quantity_mismatches) == (2, 2)
    assert (paper.equity_start, paper.equity_end, paper.equity_change) == (
        Decimal(10000),
        Decimal(10050),
        Decimal(50),
    )
    assert broker.equity_change == Decimal(20)
    assert report.pnl_difference == Decimal(-30)


def test_halted_rejected_and_error_legs_count_against_the_fill_rate(
    sqlite_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange: paper fills all four; the broker fills one, is halted, rejected and errors
    ledger = ShadowLedger(sqlite_db)
    paper = make_fill_leg(OrderSide.BUY, "1", "100", "0.1")
    broker_legs = [
        make_fill_leg(OrderSide.BUY, "1", "100", "0.1"),
        ShadowLeg.from_error(KillSwitchError("daily loss 6% > 5%"), "b2"),
        ShadowLeg.from_error(InvalidOrderError("LOT_SIZE"), "b3"),
        ShadowLeg.from_error(BrokerNetworkError("connection reset"), "b4"),
    ]
    for index, broker in enumerate(broker_legs):
        ledger.record(
            run_id="r",
            intent_id=str(index),
            symbol="BTC/USDT",
            side=OrderSide.BUY,
            requested_qty=Decimal(1),
            signal_price=Decimal(100),
            paper=paper,
            broker=broker,
            at=BASE + timedelta(minutes=index),
        )

    # Act
    report = build_report(sqlite_db, since=None, until=None)

    # Assert
    assert report.paper.fill_rate == Decimal(1)
    assert report.broker.fill_rate == Decimal("0.25")
    assert dict(report.broker.status_counts) == {
        "filled": 1,
        "halted": 1,
        "rejected": 1,
        "error": 1,
    }
    assert report.broker.mean_slippage_bps == Decimal(0)  # only the filled leg has a price


def test_build_report_with_a_run_id_measures_that_runs_equity_change(example: Example) -> None:
    # Act
    report = build_report(example.db, since=None, until=None, run_id=example.run_id)

    # Assert
    assert report.pair_count == 4
    assert report.paper.equity_change == Decimal(50)  # 10000 before the run → 10050 after it
    assert report.broker.equity_change == Decimal(20)
    assert report.pnl_difference == Decimal(-30)


def test_build_report_on_an_empty_window_reports_zero_pairs_without_failing(
    example: Example,
) -> None:
    # Arrange
    since = example.until + timedelta(days=10)

    # Act
    report = build_report(example.db, since=since, until=since + timedelta(days=1))

    # Assert
    assert report.empty
    assert report.paper.fill_rate is None and report.broker.mean_slippage_bps is None
    assert report.fee_difference == Decimal(0)
    assert report.pnl_difference is None  # one snapshot (the opening one) is not a change


def test_render_report_prints_every_statistic(example: Example) -> None:
    # Arrange
    report = build_report(example.db, since=example.since, until=example.until)
    console, buffer = _console()

    # Act
    render_report(report, console)

    # Assert
    text = buffer.getvalue()
    assert "4 shadow pairs" in text
    assert "100.0% (4/4)" in text and "50.0% (2/4)" in text
    assert "12.50" in text and "20.00" in text and "5.00" in text
    assert "0.624525" in text and "0.50025" in text and "-0.124275" in text
    assert "PnL difference (broker − paper): -30" in text
    assert "+50" in text and "+20" in text
    assert "different statuses: 2" in text


def test_render_report_on_an_empty_window_says_so_plainly(sqlite_db: Database) -> None:
    # Arrange
    report = build_report(sqlite_db, since=None, until=None)
    console, buffer = _console()

    # Act
    render_report(report, console)

    # Assert
    text = buffer.getvalue()
    assert NO_PAIRS_MESSAGE in text
    assert "not enough portfolio snapshots" in text
