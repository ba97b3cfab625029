"""Book accounting: cash, positions at average cost, realized PnL, fees — exact, in ``Decimal``.

One ledger serves every book: the paper trader's own book ("paper") and our record of what the
broker filled ("broker"). A fill and its effect on cash and position are written in one
transaction, so a book is never half-updated. Cost-basis rules: a buy adds its cost *and its
fee* to the position's cost basis (``avg_entry_price`` = basis / quantity, the break-even price
per unit); a sell realizes its proceeds minus the basis of what it sold. Counting the buy fee in
the basis is what makes a closed round trip's realized PnL equal the cash it made or lost — to
the last digit (a trade that only lost its fees is a loss, which the consecutive-loss guardrail
must see). Fees are booked in the asset the venue charged them in (``book_trade``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otonom_trader.broker.types import OrderFill, OrderSide, Position, Trade
from otonom_trader.market.symbols import split
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
    """The book's account row, created with ``initial_cash`` on first use.

    Two processes may open the same new book at once (two cycles started together, before
    the account's lease decides which one trades): the loser of the insert reads the winner's
    row instead of failing."""
    account = session.get(BookAccount, book)
    if account is not None:
        return account
    try:
        with session.begin_nested():
            session.add(
                BookAccount(
                    book=book, quote_asset=quote_asset, cash=initial_cash, initial_cash=initial_cash
                )
            )
    except IntegrityError:
        pass
    account = session.get(BookAccount, book, populate_existing=True)
    assert account is not None
    return account


def positions_of(session: Session, book: str) -> dict[str, BookPosition]:
    """Open positions (quantity > 0) of a book, by symbol."""
    rows = session.scalars(select(BookPosition).where(BookPosition.book == book)).all()
    return {row.symbol: row for row in rows if row.quantity > 0}


def apply_fill(
    session: Session, book: str, order: OrderRecord, fill: OrderFill, now: datetime
) -> FillRecord | None:
    """Book the venue's trades of ``fill`` against ``order``: cash, position, fees, PnL.

    Each trade is booked once per book, keyed by the venue's trade id (a fill that reports no
    trades is booked as one trade keyed by its order id), so booking the same fill again — by
    the paper venue itself, a re-run or recovery — changes nothing. Fees are booked in the asset
    the venue charged them in (see ``book_trade``). Returns the newest fill row of the order, or
    ``None`` when nothing was filled.
    """
    if fill.quantity <= 0 or fill.price is None:
        return None
    account = session.get(BookAccount, book)
    if account is None:
        raise RuntimeError(f"book {book!r} has no account; call ensure_account first")
    trades = fill.trades or (
        Trade(fill.order_id, fill.quantity, fill.price, fill.fee, fill.fee_currency),
    )
    ids = [t.trade_id for t in trades] + [fill.order_id]
    booked = set(
        session.scalars(
            select(FillRecord.exchange_trade_id).where(
                FillRecord.book == book, FillRecord.exchange_trade_id.in_(ids)
            )
        )
    )
    if fill.order_id in booked and fill.trades:
        return _newest_fill(session, order)  # booked before as one aggregate trade
    for trade in trades:
        if trade.trade_id not in booked:
            book_trade(session, account, order, fill.side, trade, now)
    session.flush()
    return _newest_fill(session, order)


def _newest_fill(session: Session, order: OrderRecord) -> FillRecord | None:
    return session.scalars(
        select(FillRecord).where(FillRecord.order_id == order.id).order_by(FillRecord.id.desc())
    ).first()


@dataclass(frozen=True)
class TradeArithmetic:
    """A position and the cash after one trade (``trade_arithmetic``)."""

    quantity: Decimal
    cost_basis: Decimal
    cash_change: Decimal
    realized_pnl: Decimal | None  # set for a sell only


def trade_arithmetic(
    side: OrderSide,
    *,
    held: Decimal,
    cost_basis: Decimal,
    quantity: Decimal,
    price: Decimal,
    quote_fee: Decimal,
    base_fee: Decimal = ZERO,
    third_cost: Decimal = ZERO,
) -> TradeArithmetic:
    """The book arithmetic of one trade (see ``book_trade``), pure: the ledger and the
    backtest's in-memory book both move a position and its cash with it.

    A buy adds the quantity less a base-asset fee and adds its cost, quote fee and third-asset
    fee cost to the basis. A sell takes the quantity plus a base-asset fee out of the position
    (never more than held) with its share of the basis, and realizes proceeds minus that basis.
    """
    notional = quantity * price
    if side is OrderSide.BUY:
        return TradeArithmetic(
            held + (quantity - base_fee),
            cost_basis + (notional + quote_fee + third_cost),
            -(notional + quote_fee),
            None,
        )
    matched = min(quantity, held)
    leaving = min(quantity + base_fee, held)
    cost_part = cost_basis if leaving >= held else cost_basis * leaving / held
    proceeds = notional - quote_fee - third_cost
    # Selling more than the book recorded (holdings bought outside this system) realizes
    # nothing on the excess and never leaves a negative spot position.
    share = proceeds if matched == quantity else proceeds * matched / quantity
    realized = share - cost_part if held > 0 else ZERO
    return TradeArithmetic(held - leaving, cost_basis - cost_part, notional - quote_fee, realized)


def book_trade(
    session: Session,
    account: BookAccount,
    order: OrderRecord,
    side: OrderSide,
    trade: Trade,
    now: datetime,
) -> FillRecord:
    """Move the book's cash and position by one trade, its fee where the venue charged it.

    * a fee in the quote asset comes out of cash;
    * a fee in the base asset comes out of the position (Binance: a BUY without BNB receives
      0.999 of what it bought), so the book holds what the exchange holds;
    * a fee in a third asset (BNB) comes out of the book's holding of that asset, and its cost
      basis moves into this trade's cost (a buy) or out of its proceeds (a sell).

    Realized PnL is proceeds minus the cost basis of what was sold: closing a whole position
    realizes exactly its cash result (break-even is zero, not −1E-27).
    """
    book = account.book
    base, quote = split(order.symbol)
    position = _position(session, book, order.symbol)
    currency = (trade.fee_currency or quote).upper()
    quote_fee = trade.fee if currency == quote else ZERO
    base_fee = trade.fee if currency == base else ZERO
    third_cost = ZERO
    if currency not in (base, quote) and trade.fee > 0:
        third_cost = _spend_holding(session, book, f"{currency}/{quote}", trade.fee, now)
    moved = trade_arithmetic(
        side,
        held=position.quantity,
        cost_basis=position.cost_basis,
        quantity=trade.quantity,
        price=trade.price,
        quote_fee=quote_fee,
        base_fee=base_fee,
        third_cost=third_cost,
    )
    position.quantity = moved.quantity
    position.cost_basis = moved.cost_basis
    account.cash += moved.cash_change
    realized = moved.realized_pnl
    if realized is not None:
        position.realized_pnl += realized
        account.realized_pnl += realized
    refresh_average(position)
    fee_value = quote_fee + base_fee * trade.price + third_cost
    account.fees_paid += fee_value
    account.updated_at = now
    position.updated_at = now
    record = FillRecord(
        order_id=order.id,
        book=book,
        symbol=order.symbol,
        side=side.value,
        quantity=trade.quantity,
        price=trade.price,
        fee=trade.fee,
        fee_currency=currency,
        realized_pnl=realized,
        exchange_trade_id=trade.trade_id,
        filled_at=now,
        bot=order.bot,  # a fill belongs to the bot and account whose order it filled
        account_id=order.account_id,
    )
    session.add(record)
    session.flush()
    return record


def _position(session: Session, book: str, symbol: str) -> BookPosition:
    position = session.get(BookPosition, (book, symbol))
    if position is None:
        position = BookPosition(
            book=book, symbol=symbol, quantity=ZERO, avg_entry_price=ZERO, cost_basis=ZERO
        )
        session.add(position)
    return position


def _spend_holding(
    session: Session, book: str, symbol: str, amount: Decimal, now: datetime
) -> Decimal:
    """Take ``amount`` of an asset the book holds (a fee paid in it); return its cost basis."""
    holding = session.get(BookPosition, (book, symbol))
    if holding is None or holding.quantity <= 0:
        return ZERO  # not an asset this book bought: the account pays it, the book does not
    spent = min(amount, holding.quantity)
    cost = (
        holding.cost_basis
        if spent >= holding.quantity
        else holding.cost_basis * spent / (holding.quantity)
    )
    holding.quantity -= spent
    holding.cost_basis -= cost
    holding.updated_at = now
    refresh_average(holding)
    return cost


def refresh_average(position: BookPosition) -> None:
    """``avg_entry_price`` from the cost basis; a position at or below zero is flat (no cost)."""
    position.quantity, position.avg_entry_price, position.cost_basis = average_entry(
        position.quantity, position.cost_basis
    )


def average_entry(quantity: Decimal, cost_basis: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """``(quantity, avg_entry_price, cost_basis)`` of a position: the average is the basis per
    unit; a position at or below zero is flat (no quantity, no cost). Pure."""
    if quantity > 0:
        return quantity, cost_basis / quantity, cost_basis
    return max(quantity, ZERO), ZERO, ZERO


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
    session: Session,
    valuation: BookValuation,
    run_id: str | None,
    now: datetime,
    *,
    bot: str | None = None,
    account_id: str | None = None,
) -> PortfolioSnapshot:
    """Persist a snapshot; ``peak_equity`` carries the running maximum forward. ``bot`` and
    ``account_id`` say whose book it is (the named bot, the account it trades)."""
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
        bot=bot,
        account_id=account_id,
    )
    session.add(snapshot)
    session.flush()
    return snapshot
