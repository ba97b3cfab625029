"""Shadow-ledger fixtures: real ``OrderFill``s and broker errors turned into legs, and one
hand-computed example window whose statistics the tests assert digit for digit.

The example (window ``T0`` … ``T0 + 1 day``)::

    pair  side  qty  signal   paper fill (fee, slip)          broker fill (fee, slip)
    1     buy   1    100      1 @ 100.10 (0.1001, +10 bps)    1 @ 100.05 (0.10005, +5 bps)
    2     sell  2    200      2 @ 199.80 (0.3996, +10 bps)    2 @ 200.10 (0.4002, −5 bps)
    3     buy   0.5  50       0.5 @ 50.05 (0.025025, +10)     halted (kill-switch)
    4     sell  1    100      1 @ 99.80 (0.0998, +20 bps)     rejected (insufficient funds)

    paper:  fill rate 4/4, mean slip 12.5, worst 20, fees 0.624525, latency 1 ms each
    broker: fill rate 2/4, mean slip 0, worst 5, fees 0.50025, latency 120 and 80 ms
    fee difference (broker − paper) −0.124275; status and quantity mismatches: 2 each
    equity: paper 10000 → 10050 (+50), broker 10000 → 10020 (+20); PnL difference −30

Plus data *outside* the window (a pair two days before, snapshots before and after) that must
not change any of those numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from otonom_trader.broker.errors import InsufficientFundsError, KillSwitchError
from otonom_trader.broker.types import OrderFill, OrderSide, OrderStatus
from otonom_trader.persistence import Database, PortfolioSnapshot
from otonom_trader.shadow.ledger import ShadowLedger, ShadowLeg

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = (T0, T0 + timedelta(days=1))
RUN_ID = "run-2025-03-01"


def fill_leg(
    side: OrderSide,
    qty: str,
    price: str,
    fee: str,
    *,
    latency_ms: float = 1.0,
    coid: str = "coid",
    status: OrderStatus = OrderStatus.FILLED,
) -> ShadowLeg:
    """A leg made the way the daemon makes it: from the ``OrderFill`` a broker returned."""
    fill = OrderFill(
        symbol="BTC/USDT",
        side=side,
        quantity=Decimal(qty),
        price=Decimal(price),
        requested_quantity=Decimal(qty),
        status=status,
        order_id=f"ex-{coid}",
        client_order_id=coid,
        fee=Decimal(fee),
        fee_currency="USDT",
        latency_ms=latency_ms,
    )
    return ShadowLeg.from_fill(fill)


@dataclass(frozen=True)
class Example:
    """Where the hand-computed example lives."""

    db: Database
    since: datetime
    until: datetime
    run_id: str


def _snapshot(db: Database, book: str, at: datetime, equity: str, run_id: str | None) -> None:
    with db.session() as session:
        session.add(
            PortfolioSnapshot(
                book=book,
                run_id=run_id,
                taken_at=at,
                equity=Decimal(equity),
                cash=Decimal(equity),
                peak_equity=Decimal(equity),
                positions_json="[]",
            )
        )


def record_example(db: Database) -> Example:
    """Write the example of the module docstring into ``db``."""
    ledger = ShadowLedger(db)
    buy, sell = OrderSide.BUY, OrderSide.SELL
    rows = [
        (
            "i1",
            buy,
            "1",
            "100",
            fill_leg(buy, "1", "100.10", "0.1001", coid="p1"),
            fill_leg(buy, "1", "100.05", "0.10005", latency_ms=120.0, coid="b1"),
        ),
        (
            "i2",
            sell,
            "2",
            "200",
            fill_leg(sell, "2", "199.80", "0.3996", coid="p2"),
            fill_leg(sell, "2", "200.10", "0.4002", latency_ms=80.0, coid="b2"),
        ),
        (
            "i3",
            buy,
            "0.5",
            "50",
            fill_leg(buy, "0.5", "50.05", "0.025025", coid="p3"),
            ShadowLeg.from_error(KillSwitchError("max drawdown 12% > 10%"), "b3"),
        ),
        (
            "i4",
            sell,
            "1",
            "100",
            fill_leg(sell, "1", "99.80", "0.0998", coid="p4"),
            ShadowLeg.from_error(InsufficientFundsError("Account has insufficient balance"), "b4"),
        ),
    ]
    for hour, (intent, side, qty, signal, paper, broker) in enumerate(rows, start=1):
        ledger.record(
            run_id=RUN_ID,
            intent_id=intent,
            symbol="BTC/USDT",
            side=side,
            requested_qty=Decimal(qty),
            signal_price=Decimal(signal),
            paper=paper,
            broker=broker,
            at=T0 + timedelta(hours=hour),
        )
    # Outside the window: an awful old pair that must not leak into the statistics.
    ledger.record(
        run_id="run-old",
        intent_id="i0",
        symbol="BTC/USDT",
        side=buy,
        requested_qty=Decimal("1"),
        signal_price=Decimal("100"),
        paper=fill_leg(buy, "1", "110", "9", coid="p0"),
        broker=fill_leg(buy, "1", "120", "9", coid="b0"),
        at=T0 - timedelta(days=2),
    )
    _snapshot(db, "paper", T0 - timedelta(days=1), "9000", "run-old")
    _snapshot(db, "paper", T0, "10000", "run-before")
    _snapshot(db, "broker", T0, "10000", "run-before")
    _snapshot(db, "paper", T0 + timedelta(hours=5), "10050", RUN_ID)
    _snapshot(db, "broker", T0 + timedelta(hours=5), "10020", RUN_ID)
    _snapshot(db, "paper", T0 + timedelta(days=2), "11000", "run-later")
    _snapshot(db, "broker", T0 + timedelta(days=2), "9000", "run-later")
    return Example(db=db, since=WINDOW[0], until=WINDOW[1], run_id=RUN_ID)


@pytest.fixture
def example(sqlite_db: Database) -> Example:
    """The hand-computed example on a fresh SQLite database."""
    return record_example(sqlite_db)


@pytest.fixture
def make_fill_leg() -> Callable[..., ShadowLeg]:
    """``make_fill_leg(side, qty, price, fee, latency_ms=…, coid=…, status=…)`` → a leg."""
    return fill_leg
