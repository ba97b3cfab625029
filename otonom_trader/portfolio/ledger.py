"""Book accounting: cash, positions at average cost, realized PnL, fees — exact, in ``Decimal``.

One ledger serves every book: the paper trader's own book ("paper") and our record of what the
broker filled ("broker"). A fill and its effect on cash and position are written in one
transaction, so a book is never half-updated. Average-cost rules: a buy adds its cost *and its
fee* to the position's cost basis (``avg_entry_price`` is the break-even price per unit); a sell
realizes ``(price − avg_entry) × qty − fee`` and leaves the average unchanged. Counting the buy
fee in the basis is what makes a closed round trip's realized PnL equal the cash it made or lost
(a trade that only lost its fees is a loss, which the consecutive-loss guardrail must see).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.types import OrderFill, OrderSide, Position
from otonom_trader.persistence.models import (
    BookAccount,
    BookPosition,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)

ZERO = Decimal(0)


@dataclass(frozen=True)
class BookValuation:
    """A book marked to market: ``equity = cash + Σ quantity × mark``."""

    book: str
    cash: Decimal
    positions: tuple[Position, ...]

    @property
    def equity(self) -> Decimal:
        """Cash plus the market value of every position."""
        return self.cash + sum((p.market_value for p in self.positions), ZERO)


def ensure_account(
    session: Session, book: str, initial_cash: Decimal, quote_asset: str
) -> BookAccount:
    """The book's account row, created with ``initial_cash`` on first use."""
    account = session.get(BookAccount, book)
    if account is None:
        account = BookAccount(
            book=book, quote_asset=quote_asset, cash=initial_cash, initial_cash=initial_cash
        )
        session.add(account)
        session.flush()
    return account


def positions_of(session: Session, book: str) -> dict[str, BookPosition]:
    """Open positions (quantity > 0) of a book, by symbol."""
    rows = session.scalars(select(BookPosition).where(BookPosition.book == book)).all()
    return {row.symbol: row for row in rows if row.quantity > 0}


def apply_fill(
    session: Session, book: str, order: OrderRecord, fill: OrderFill, now: datetime
) -> FillRecord | None:
    """Record ``fill`` against ``order`` and move the book's cash and position.

    Fees are in the quote asset (brokers convert before this point). Returns the fill row, or
    ``None`` when nothing was filled. Booking is once per order: an order that already has its
    fill row (booked by the broker itself, by an earlier attempt or by recovery) is not booked
    again, whoever calls.
    """
    if fill.quantity <= 0 or fill.price is None:
        return None
    if order.id is not None:
        booked = session.scalars(
            select(FillRecord).where(FillRecord.order_id == order.id).limit(1)
        ).first()
        if booked is not None:
            return booked
    account = session.get(BookAccount, book)
    if account is None:
        raise RuntimeError(f"book {book!r} has no account; call ensure_account first")
    position = session.get(BookPosition, (book, order.symbol))
    if position is None:
        position = BookPosition(book=book, symbol=order.symbol, quantity=ZERO, avg_entry_price=ZERO)
        session.add(position)
    notional = fill.quantity * fill.price
    realized: Decimal | None = None
    if fill.side is OrderSide.BUY:
        new_qty = position.quantity + fill.quantity
        # The buy fee is part of what the position cost (see the module docstring).
        position.avg_entry_price = (
            position.quantity * position.avg_entry_price + notional + fill.fee
        ) / new_qty
        position.quantity = new_qty
        account.cash -= notional + fill.fee
    else:
        sold = min(fill.quantity, position.quantity)
        realized = (fill.price - position.avg_entry_price) * sold - fill.fee
        # Selling more than the book recorded (holdings bought outside this system) realizes
        # nothing on the excess and never leaves a negative spot position.
        position.quantity -= sold
        position.realized_pnl += realized
        account.cash += notional - fill.fee
        account.realized_pnl += realized
        if position.quantity <= 0:
            position.avg_entry_price = ZERO
    account.fees_paid += fill.fee
    account.updated_at = now
    position.updated_at = now
    record = FillRecord(
        order_id=order.id,
        book=book,
        symbol=order.symbol,
        side=fill.side.value,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        realized_pnl=realized,
        exchange_trade_id=fill.order_id,
        filled_at=now,
    )
    session.add(record)
    session.flush()
    return record


def value_book(session: Session, book: str, marks: dict[str, Decimal]) -> BookValuation:
    """Mark a book's positions to ``marks`` (last closes); unmarked positions use entry price."""
    account = session.get(BookAccount, book)
    cash = account.cash if account is not None else ZERO
    positions = tuple(
        Position(
            symbol=row.symbol,
            quantity=row.quantity,
            avg_entry_price=row.avg_entry_price,
            mark_price=marks.get(row.symbol),
            realized_pnl=row.realized_pnl,
        )
        for row in sorted(positions_of(session, book).values(), key=lambda r: r.symbol)
    )
    return BookValuation(book, cash, positions)


def latest_snapshot(session: Session, book: str) -> PortfolioSnapshot | None:
    """The newest snapshot of a book (one indexed read)."""
    return session.scalars(
        select(PortfolioSnapshot)
        .where(PortfolioSnapshot.book == book)
        .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
        .limit(1)
    ).first()


def take_snapshot(
    session: Session, valuation: BookValuation, run_id: str | None, now: datetime
) -> PortfolioSnapshot:
    """Persist a snapshot; ``peak_equity`` carries the running maximum forward."""
    previous = latest_snapshot(session, valuation.book)
    equity = valuation.equity
    peak = max(previous.peak_equity, equity) if previous is not None else equity
    positions = [
        {
            "symbol": p.symbol,
            "quantity": str(p.quantity),
            "avg_entry_price": str(p.avg_entry_price),
            "mark_price": None if p.mark_price is None else str(p.mark_price),
        }
        for p in valuation.positions
    ]
    snapshot = PortfolioSnapshot(
        book=valuation.book,
        run_id=run_id,
        taken_at=now,
        equity=equity,
        cash=valuation.cash,
        peak_equity=peak,
        positions_json=json.dumps(positions),
    )
    session.add(snapshot)
    session.flush()
    return snapshot
