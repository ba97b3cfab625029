"""The ledger's average cost and realized PnL, exact in Decimal on a worked example."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from otonom_trader.broker.types import OrderFill, OrderRequest, OrderSide, OrderStatus
from otonom_trader.execution.journal import journal_order
from otonom_trader.persistence import Database
from otonom_trader.persistence.models import BookAccount, FillRecord
from otonom_trader.portfolio.ledger import apply_fill, ensure_account, positions_of, value_book

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _fill(db: Database, cid: str, side: OrderSide, qty: str, price: str, fee: str) -> FillRecord:
    with db.session() as session:
        req = OrderRequest("BTC/USDT", side, qty, client_order_id=cid)
        order = journal_order(
            session, req, book="b", mode="paper", run_id=None, signal_price=None, now=NOW
        )
        fill = OrderFill(
            "BTC/USDT", side, qty, price, qty, OrderStatus.FILLED, cid, cid, Decimal(fee), "USDT"
        )
        record = apply_fill(session, "b", order, fill, NOW)
        assert record is not None
        session.expunge(record)
        return record


def test_worked_example_when_two_buys_and_two_sells_then_exact_average_and_pnl(
    sqlite_db: Database,
) -> None:
    with sqlite_db.session() as session:
        ensure_account(session, "b", Decimal("1000"), "USDT")

    # buy 1 @ 100 fee 0.10, buy 3 @ 120 fee 0.36 → basis 100.10 + 360.36 = 460.46 over 4
    assert _fill(sqlite_db, "1", OrderSide.BUY, "1", "100", "0.10").realized_pnl is None
    _fill(sqlite_db, "2", OrderSide.BUY, "3", "120", "0.36")
    with sqlite_db.session() as session:
        assert positions_of(session, "b")["BTC/USDT"].avg_entry_price == Decimal("115.115")
    # sell 2 @ 130 fee 0.26 → (130 − 115.115) × 2 − 0.26 = 29.51
    assert _fill(sqlite_db, "3", OrderSide.SELL, "2", "130", "0.26").realized_pnl == Decimal(
        "29.51"
    )
    # sell 2 @ 110 fee 0.22 → (110 − 115.115) × 2 − 0.22 = −10.45
    assert _fill(sqlite_db, "4", OrderSide.SELL, "2", "110", "0.22").realized_pnl == Decimal(
        "-10.45"
    )

    with sqlite_db.session() as session:
        account = session.get(BookAccount, "b")
        assert account is not None
        assert account.realized_pnl == Decimal("19.06")
        assert account.fees_paid == Decimal("0.94")
        # the closed book's realized PnL is exactly the cash it made
        assert account.cash - account.initial_cash == account.realized_pnl
        assert positions_of(session, "b") == {}


def test_round_trip_when_only_fees_lost_then_realized_is_a_loss(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        ensure_account(session, "b", Decimal("1000"), "USDT")
    _fill(sqlite_db, "1", OrderSide.BUY, "1", "100", "0.10")

    sell = _fill(sqlite_db, "2", OrderSide.SELL, "1", "100", "0.10")

    assert sell.realized_pnl == Decimal("-0.20")


def test_value_book_when_marked_then_unrealized_from_cost_basis(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        ensure_account(session, "b", Decimal("1000"), "USDT")
    _fill(sqlite_db, "1", OrderSide.BUY, "2", "100", "0.20")

    with sqlite_db.session() as session:
        valuation = value_book(session, "b", {"BTC/USDT": Decimal("105")})

    [position] = valuation.positions
    assert valuation.cash == Decimal("799.80")
    assert valuation.equity == Decimal("799.80") + 2 * Decimal("105")
    assert position.unrealized_pnl == (Decimal("105") - Decimal("100.1")) * 2
