"""Reconciliation every cycle: a manual trade on the exchange between two cycles (real
``ccxt.binance`` against the local exchange) is detected, recorded and handled per policy —
``adopt`` sets the book to the exchange with a recorded adjustment, ``halt`` trips the kill-switch
— and it is announced once per episode."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from otonom_trader.broker.types import OrderRequest, OrderSide, OrderType
from otonom_trader.daemon import TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence.models import BookAdjustment, DriftEvent
from otonom_trader.portfolio.ledger import positions_of

if TYPE_CHECKING:
    from conftest import LiveFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _manual_sell(daemon: TradingDaemon, quantity: str) -> None:
    """A person sells BTC on the exchange by hand (not through the daemon)."""
    leg = daemon.context.legs[0]
    leg.gate.raw_broker.place_order(  # type: ignore[attr-defined]
        OrderRequest("BTC/USDT", OrderSide.SELL, Decimal(quantity), client_order_id="by-hand-1")
    )


def _book_btc(daemon: TradingDaemon) -> Decimal:
    with daemon.context.db.session() as session:
        held = positions_of(session, daemon.context.account.book).get("BTC/USDT")
        return held.quantity if held is not None else Decimal(0)


def test_adopt_sets_the_book_to_the_exchange_and_records_why(
    make_live: LiveFactory, local_binance: LocalBinanceExchange
) -> None:
    daemon = make_live("execution.reconcile_policy=adopt")
    daemon.run_once()  # buys BTC and ETH
    bought = _book_btc(daemon)
    assert bought == local_binance.balance("BTC") > 0
    _manual_sell(daemon, "0.01")

    summary = daemon.run_once()
    again = daemon.run_once()  # the episode is over: no second drift
    book = daemon.context.account.book
    with daemon.context.db.session() as session:
        drifts = list(session.scalars(select(DriftEvent).where(DriftEvent.book == book)))
        adjustments = list(
            session.scalars(select(BookAdjustment).where(BookAdjustment.book == book))
        )
    daemon.close()

    assert len(drifts) == 1 and drifts[0].asset == "BTC"
    assert drifts[0].book_qty == bought and drifts[0].venue_qty == bought - Decimal("0.01")
    assert "unknown trade" in drifts[0].cause and drifts[0].resolved_at is not None
    assert [(a.before_qty, a.after_qty) for a in adjustments] == [
        (bought, bought - Decimal("0.01"))
    ]
    assert any("reconciliation drift" in n for n in summary.notes)
    assert not any("reconciliation drift" in n for n in again.notes)
    # After adopting, the daemon's own sell closed exactly what the exchange held.
    assert local_binance.balance("BTC") == _book_btc(make_live())


def test_halt_trips_the_kill_switch_and_no_new_order_is_sent(
    make_live: LiveFactory, local_binance: LocalBinanceExchange
) -> None:
    daemon = make_live("execution.reconcile_policy=halt")
    daemon.run_once()
    _manual_sell(daemon, "0.01")
    sent = len(local_binance.orders)

    summary = daemon.run_once()
    daemon.close()

    assert summary.guard_active and "reconciliation" in (summary.guard_reason or "")
    assert len(local_binance.orders) == sent
    assert all((o.error or "").startswith("KILL-SWITCH") for o in summary.orders)


def test_the_cause_names_the_unknown_trade_and_an_unknown_open_order_is_listed(
    make_live: LiveFactory, local_binance: LocalBinanceExchange
) -> None:
    daemon = make_live("execution.reconcile_policy=adopt")
    daemon.run_once()
    _manual_sell(daemon, "0.01")
    by_hand = local_binance.orders[-1]
    # ... and a resting limit order placed by hand, far below the market
    leg = daemon.context.legs[0]
    leg.gate.raw_broker.place_order(  # type: ignore[attr-defined]
        OrderRequest(
            "ETH/USDT", OrderSide.BUY, Decimal("0.01"), OrderType.LIMIT, Decimal(1000), "by-hand-2"
        )
    )

    summary = daemon.run_once()
    book = daemon.context.account.book
    with daemon.context.db.session() as session:
        drift = session.scalars(select(DriftEvent).where(DriftEvent.book == book)).one()
    daemon.close()

    assert drift.cause.startswith("unknown trade(s) on the exchange: #")
    assert str(by_hand.fills[0].trade_id) in drift.cause
    assert any("not placed by this book" in n and "ETH/USDT" in n for n in summary.notes)
    assert any(o.client_order_id == "by-hand-2" and o.is_open for o in local_binance.orders)
