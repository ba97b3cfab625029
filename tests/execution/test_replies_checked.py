"""Exchange replies are checked before they are believed: an absurd reply to a placed order (a
negative or oversized filled quantity, a price far off the signal, missing fields) is never
booked; the order is resolved from the exchange's own records (real ``ccxt.binance`` against the
local exchange, whose ``bad_reply`` fault executes the order and then answers wrongly)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from otonom_trader.daemon import TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence.models import FillRecord, OrderRecord
from otonom_trader.portfolio.ledger import positions_of

if TYPE_CHECKING:
    from conftest import LiveFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ABSURD_FILL = {"price": "0.00000001", "qty": "1000000", "commission": "0", "tradeId": 7}

REPLIES: dict[str, dict[str, Any]] = {
    "negative executedQty": {"executedQty": "-5.0"},
    "a million filled at 1e-8": {
        "executedQty": "1000000",
        "cummulativeQuoteQty": "0.01",
        "fills": [{**ABSURD_FILL, "commissionAsset": "BTC"}],
    },
    "price 5e9": {
        "cummulativeQuoteQty": "5000000000",
        "fills": [
            {
                "price": "5000000000",
                "qty": "0.01",
                "commission": "0",
                "commissionAsset": "BTC",
                "tradeId": 8,
            }
        ],
    },
    "status and quantities missing": {
        "status": None,
        "executedQty": None,
        "cummulativeQuoteQty": None,
        "fills": None,
    },
}


@pytest.fixture
def live(make_live: LiveFactory) -> TradingDaemon:
    return make_live()


@pytest.mark.parametrize("case", sorted(REPLIES))
def test_an_absurd_reply_is_never_booked_and_the_exchanges_records_are(
    case: str, live: TradingDaemon, local_binance: LocalBinanceExchange
) -> None:
    local_binance.inject_fault(
        "bad_reply", count=1, path="/api/v3/order", method="POST", patch=REPLIES[case]
    )

    summary = live.run_once()

    book = live.context.account.book
    with live.context.db.session() as session:
        fills = list(session.scalars(select(FillRecord).where(FillRecord.book == book)))
        orders = list(session.scalars(select(OrderRecord).where(OrderRecord.book == book)))
        held = {s: p.quantity for s, p in positions_of(session, book).items()}
    placed = [o for o in local_binance.orders if o.client_order_id.startswith("ot-")]
    assert summary.status == "succeeded"
    assert len(placed) == 2 and all(o.status == "FILLED" for o in placed)  # each sent once
    assert all(Decimal(0) < f.quantity <= Decimal(1) for f in fills)  # nothing absurd booked
    assert all(Decimal(1000) < f.price < Decimal(100000) for f in fills)
    assert {o.status for o in orders} == {"filled"}
    # The book holds exactly what the exchange holds.
    assert held["BTC/USDT"] == local_binance.balance("BTC")
    assert held["ETH/USDT"] == local_binance.balance("ETH")


def test_a_reply_that_cannot_be_resolved_blocks_the_symbol_and_alerts_once(
    live: TradingDaemon, local_binance: LocalBinanceExchange
) -> None:
    # The reply is absurd and so is every lookup of the order (the exchange's records agree
    # with nothing): the order stays anomalous, nothing is booked, the symbol is blocked.
    local_binance.inject_fault(
        "bad_reply", count=1, path="/api/v3/order", method="POST", patch={"executedQty": "-5"}
    )
    local_binance.inject_fault(
        "bad_reply", count=20, path="/api/v3/order", method="GET", patch={"executedQty": "-5"}
    )

    first = live.run_once()
    second = live.run_once()

    book = live.context.account.book
    lines = [o for o in first.orders if o.book == book]
    assert [o.status for o in lines].count("anomalous") == 1
    # The symbols' orders go out in parallel: whichever reached the exchange first got the
    # absurd reply.
    hit = next(o for o in lines if o.status == "anomalous")
    again = [o for o in second.orders if o.book == book and o.symbol == hit.symbol]
    assert all(o.status in ("blocked", "already_sent") for o in again)
    with live.context.db.session() as session:
        anomalous = session.scalars(
            select(OrderRecord).where(OrderRecord.status == "anomalous")
        ).one()
        assert anomalous.fills == []
