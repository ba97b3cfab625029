"""The paper book on SQLite and PostgreSQL: modelled price, fee, rules, cash, persistence."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from otonom_trader.broker.errors import (
    BelowMinimumNotionalError,
    InsufficientFundsError,
    InvalidOrderError,
)
from otonom_trader.broker.types import OrderRequest, OrderSide, OrderStatus
from otonom_trader.paper.broker import PaperBroker
from otonom_trader.paper.config import PaperConfig
from otonom_trader.persistence import Database
from otonom_trader.persistence.models import BookAccount, FillRecord, OrderRecord
from otonom_trader.portfolio.ledger import latest_snapshot, take_snapshot, value_book

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CFG = PaperConfig(initial_cash=10_000.0, slippage_bps=5.0, taker_fee_bps=10.0)


def _broker(db: Database, cfg: PaperConfig = CFG) -> PaperBroker:
    broker = PaperBroker(db, "paper", cfg, "USDT", mode="paper", clock=lambda: NOW)
    broker.set_price("BTCUSDT", Decimal("60000.00"))
    return broker


def test_buy_when_filled_then_close_plus_slippage_fee_and_cash_exact(any_db: Database) -> None:
    broker = _broker(any_db)

    fill = broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, 0.01, client_order_id="c1"))

    assert fill.price == Decimal("60030.00")  # 60000 × (1 + 5 bps)
    assert fill.quantity == Decimal("0.01") and fill.status is OrderStatus.FILLED
    assert fill.fee == Decimal("0.60030000")  # 600.30 × 10 bps
    balances = {b.asset: b.free for b in broker.get_balances()}
    assert balances == {
        "USDT": Decimal("10000") - Decimal("600.30") - Decimal("0.6003"),
        "BTC": Decimal("0.01"),
    }


def test_sell_when_filled_then_close_minus_slippage_rounded_to_tick(any_db: Database) -> None:
    broker = _broker(any_db)
    broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01"))
    broker.set_price("BTC/USDT", Decimal("61234.57"))

    fill = broker.place_order(OrderRequest("BTCUSDT", OrderSide.SELL, "0.01"))

    # 61234.57 × 0.9995 = 61203.952715 → rounded down (against the seller) to 61203.95
    assert fill.price == Decimal("61203.95")


def test_quantity_when_off_the_lot_step_then_rounded_down(any_db: Database) -> None:
    fill = _broker(any_db).place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.0123456"))
    assert fill.quantity == Decimal("0.01234")
    assert fill.status is OrderStatus.PARTIALLY_FILLED


def test_order_when_below_min_notional_then_refused_and_journaled(any_db: Database) -> None:
    broker = _broker(any_db)

    with pytest.raises(BelowMinimumNotionalError):
        broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.00008", client_order_id="t"))

    with any_db.session() as session:
        order = session.scalars(select(OrderRecord).where(OrderRecord.client_order_id == "t")).one()
        assert order.status == "rejected" and "minimum notional" in (order.error or "")
        assert session.get(BookAccount, "paper").cash == Decimal("10000")  # type: ignore[union-attr]


def test_buy_when_cash_short_then_insufficient_funds(any_db: Database) -> None:
    broker = _broker(any_db, PaperConfig(initial_cash=100.0))
    with pytest.raises(InsufficientFundsError, match="order needs"):
        broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01"))


def test_sell_when_more_than_held_then_clamped_to_holding(any_db: Database) -> None:
    broker = _broker(any_db)
    broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01"))

    fill = broker.place_order(OrderRequest("BTCUSDT", OrderSide.SELL, "0.5"))

    assert fill.quantity == Decimal("0.01") and fill.status is OrderStatus.PARTIALLY_FILLED
    assert broker.get_open_positions() == []
    with pytest.raises(InsufficientFundsError, match="holds no BTC"):
        broker.place_order(OrderRequest("BTCUSDT", OrderSide.SELL, "0.01"))


def test_order_when_no_price_or_limit_then_invalid_order(any_db: Database) -> None:
    broker = _broker(any_db)
    with pytest.raises(InvalidOrderError, match="no price for ETH/USDT"):
        broker.place_order(OrderRequest("ETHUSDT", OrderSide.BUY, "1"))
    with pytest.raises(InvalidOrderError, match="market orders only"):
        broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01", "limit", 50_000))


def test_same_client_id_when_placed_twice_then_filled_once(any_db: Database) -> None:
    broker = _broker(any_db)
    req = OrderRequest("BTCUSDT", OrderSide.BUY, "0.01", client_order_id="once")

    first = broker.place_order(req)
    second = broker.place_order(req)

    assert (second.quantity, second.price, second.fee) == (first.quantity, first.price, first.fee)
    with any_db.session() as session:
        assert session.scalar(select(func.count()).select_from(FillRecord)) == 1


def test_book_when_new_broker_on_same_db_then_continues(any_db: Database) -> None:
    _broker(any_db).place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01"))

    again = _broker(any_db)
    again.set_price("BTCUSDT", Decimal("62000"))
    again.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.02"))

    [position] = again.get_open_positions()
    assert position.quantity == Decimal("0.03")
    with any_db.session() as session:
        assert session.scalar(select(func.count()).select_from(OrderRecord)) == 2
        assert session.get(BookAccount, "paper").initial_cash == Decimal("10000")  # type: ignore[union-attr]


def test_equity_when_marked_then_cash_plus_quantity_times_mark_exactly(any_db: Database) -> None:
    broker = _broker(any_db)
    broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01"))
    broker.set_price("ETHUSDT", Decimal("3000"))
    broker.place_order(OrderRequest("ETHUSDT", OrderSide.BUY, "0.5"))
    broker.set_price("BTCUSDT", Decimal("59000.01"))
    broker.set_price("ETHUSDT", Decimal("3100.5"))

    cash = {b.asset: b.free for b in broker.get_balances()}["USDT"]

    assert broker.equity() == cash + Decimal("0.01") * Decimal("59000.01") + Decimal(
        "0.5"
    ) * Decimal("3100.5")


def test_snapshot_when_taken_then_persisted_with_peak(any_db: Database) -> None:
    broker = _broker(any_db)
    broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, "0.01"))
    with any_db.session() as session:
        valuation = value_book(session, "paper", {"BTC/USDT": Decimal("70000")})
        take_snapshot(session, valuation, "run-1", NOW)
    with any_db.session() as session:
        valuation = value_book(session, "paper", {"BTC/USDT": Decimal("50000")})
        take_snapshot(session, valuation, "run-2", NOW.replace(hour=13))
    with any_db.session() as session:
        snap = latest_snapshot(session, "paper")
        assert snap is not None and snap.run_id == "run-2"
        assert snap.equity == valuation.equity
        assert snap.peak_equity > snap.equity  # the 70 000 mark is remembered
