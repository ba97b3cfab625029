"""The operator's views of the database, as plain values: status, trades, orders, profit, equity.

Every function reads the database only (never an exchange) and returns frozen dataclasses;
:mod:`otonom_trader.operator.render` draws them as tables or JSON and the Telegram command bot
writes them as messages.

Where the numbers come from:

* **equity and cash**: the book's *latest portfolio snapshot* — what the newest cycle valued:
  for the paper book its ledger at the snapshot's marks, for an exchange account the venue's
  own balances (the ledger of a broker book starts at zero cash and only records our fills, so
  it is not the account's cash). A book without a snapshot shows its ledger cash and positions
  at entry price. ``BookStatus.marked_at`` is the snapshot's time.
* **quantities, average entry, realized PnL, fees**: the ledger's own rows (``book_accounts``,
  ``book_positions``, ``fills``), written by :func:`otonom_trader.portfolio.ledger.book_trade`
  in the same transaction as each fill.
* **marks** (for unrealized PnL): the ``mark_price`` of each position in that latest snapshot —
  the last close the newest cycle used. No view calls an exchange; a position the snapshot did
  not mark (opened after it) shows no mark and no unrealized PnL, as
  :func:`otonom_trader.portfolio.ledger.value_book` values it.
* **unrealized PnL** = quantity × (mark − average entry). The average entry is the ledger's
  break-even price (buy fees included), so unrealized PnL is net of the fees already paid.
* **today's PnL**: equity now minus the equity at 00:00 UTC — the book's last snapshot before
  midnight or, for a book first valued today, its first snapshot.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID
from otonom_trader.broker.types import Position
from otonom_trader.fleet.books import bot_of_book
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.market.symbols import split
from otonom_trader.persistence.account_models import AccountRecord
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import (
    BookAccount,
    DaemonRun,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)
from otonom_trader.portfolio.ledger import latest_snapshot, value_book
from otonom_trader.shadow.report import equity_points

ZERO = Decimal(0)
_Row = TypeVar("_Row", bound=tuple[Any, ...])


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class GuardState:
    """The book's kill-switch as persisted (an all-books trip included)."""

    active: bool
    reason: str | None
    since: datetime | None


@dataclass(frozen=True)
class LastRun:
    """The newest daemon run of the book's account."""

    run_id: str
    status: str
    mode: str
    started_at: datetime
    finished_at: datetime | None
    age_seconds: float  # from its end (its start while it still runs) to the view's ``now``


@dataclass(frozen=True)
class BookStatus:
    """One book now: cash, marked positions, equity, today's PnL, guard and last run."""

    book: str
    account_id: str | None
    quote_asset: str
    cash: Decimal
    equity: Decimal
    positions: tuple[Position, ...]
    marked_at: datetime | None  # when the marks were taken (the latest snapshot), None: never
    today_pnl: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    initial_cash: Decimal
    guard: GuardState
    last_run: LastRun | None

    @property
    def unrealized_pnl(self) -> Decimal:
        """Σ quantity × (mark − average entry) over the positions with a mark."""
        return sum((p.unrealized_pnl for p in self.positions), ZERO)


def book_names(db: Database) -> list[str]:
    """Every book with a ledger account, sorted."""
    with db.session() as session:
        return sorted(session.scalars(select(BookAccount.book)))


def account_of_book(session: Session, book: str) -> str | None:
    """The account a book belongs to: its broker book, its shadow paper book (``paper:<id>``),
    or the paper account for ``paper``; ``None`` for a scratch book (a fire drill's)."""
    if book == PAPER_ACCOUNT_ID:
        return PAPER_ACCOUNT_ID
    if book.startswith("paper:"):
        return book.split(":", 1)[1]
    if bot_of_book(book) is not None:
        # A named bot's book: the account its cycles traded, as its latest snapshot says.
        return session.scalars(
            select(PortfolioSnapshot.account_id)
            .where(PortfolioSnapshot.book == book)
            .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
            .limit(1)
        ).first()
    return session.scalars(
        select(AccountRecord.account_id).where(AccountRecord.book == book).limit(1)
    ).first()


def snapshot_marks(snapshot: PortfolioSnapshot | None) -> dict[str, Decimal]:
    """The mark of each position in a snapshot (what its cycle valued it at)."""
    if snapshot is None:
        return {}
    marks: dict[str, Decimal] = {}
    for entry in json.loads(snapshot.positions_json or "[]"):
        if isinstance(entry, dict) and entry.get("mark_price") is not None:
            marks[str(entry["symbol"])] = Decimal(str(entry["mark_price"]))
    return marks


def book_status(
    db: Database, book: str, *, now: datetime, guardrails: GuardrailConfig | None = None
) -> BookStatus:
    """The status of ``book`` at ``now`` (see the module docstring for each number's source).

    Raises ``LookupError`` when the database has no such book."""
    with db.session() as session:
        account = session.get(BookAccount, book)
        if account is None:
            raise LookupError(f"no book {book!r} in this database")
        snapshot = latest_snapshot(session, book)
        valuation = value_book(session, book, snapshot_marks(snapshot))
        cash, equity = (
            (snapshot.cash, snapshot.equity)
            if snapshot is not None
            else (valuation.cash, value_book(session, book, {}).equity)
        )
        account_id = account_of_book(session, book)
        day_start = _day_start_equity(session, book, now)
        reference = equity if day_start is None else day_start
        last_run = _last_run(session, account_id, now, bot=bot_of_book(book))
        quote, realized, fees, initial = (
            account.quote_asset,
            account.realized_pnl,
            account.fees_paid,
            account.initial_cash,
        )
    guard = _guard_state(db, book, account_id, guardrails or GuardrailConfig())
    return BookStatus(
        book=book,
        account_id=account_id,
        quote_asset=quote,
        cash=cash,
        equity=equity,
        positions=valuation.positions,
        marked_at=snapshot.taken_at if snapshot is not None else None,
        today_pnl=equity - reference,
        realized_pnl=realized,
        fees_paid=fees,
        initial_cash=initial,
        guard=guard,
        last_run=last_run,
    )


def _guard_state(
    db: Database, book: str, account_id: str | None, guardrails: GuardrailConfig
) -> GuardState:
    """The book's own switch; for a named bot's book that is clear, its account's switch when
    that halts it (the account level halts every bot on the account)."""
    detail = KillSwitch(db, guardrails, book).detail()
    if detail.active or bot_of_book(book) is None or account_id is None:
        return GuardState(detail.active, detail.reason, detail.tripped_at)
    above = KillSwitch(db, guardrails, account_id).detail()
    if not above.active:
        return GuardState(False, detail.reason, detail.tripped_at)
    return GuardState(True, f"account {account_id}: {above.reason}", above.tripped_at)


def all_statuses(
    db: Database,
    *,
    now: datetime,
    book: str | None = None,
    guardrails: GuardrailConfig | None = None,
) -> list[BookStatus]:
    """:func:`book_status` of one book or of every book."""
    books = [book] if book is not None else book_names(db)
    return [book_status(db, name, now=now, guardrails=guardrails) for name in books]


def _day_start_equity(session: Session, book: str, now: datetime) -> Decimal | None:
    """Equity at today's 00:00 UTC: the last snapshot before it, else today's first one."""
    midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    of_book = select(PortfolioSnapshot.equity).where(PortfolioSnapshot.book == book)
    before = session.scalars(
        of_book.where(PortfolioSnapshot.taken_at < midnight)
        .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
        .limit(1)
    ).first()
    if before is not None:
        return before
    return session.scalars(
        of_book.order_by(PortfolioSnapshot.taken_at, PortfolioSnapshot.id).limit(1)
    ).first()


def _last_run(
    session: Session, account_id: str | None, now: datetime, *, bot: str | None = None
) -> LastRun | None:
    if account_id is None:
        return None
    mine = [DaemonRun.bot == bot] if bot is not None else []  # a bot's book: its own runs
    run = session.scalars(
        select(DaemonRun)
        .where(DaemonRun.account_id == account_id, *mine)
        .order_by(DaemonRun.started_at.desc(), DaemonRun.id.desc())
        .limit(1)
    ).first()
    if run is None:
        return None
    end = run.finished_at or run.started_at
    return LastRun(
        run_id=run.run_id,
        status=run.status,
        mode=run.mode,
        started_at=run.started_at,
        finished_at=run.finished_at,
        age_seconds=(now - end).total_seconds(),
    )


# --------------------------------------------------------------------------- trades and orders


@dataclass(frozen=True)
class HistoryFilter:
    """Which trades or orders to list: every field ``None`` means no restriction; ``limit``
    keeps the newest rows."""

    symbol: str | None = None
    book: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    #: ``--bot`` / ``--account``: the books they select (``otonom_trader.fleet.scope``) and, for
    #: orders, the named bot (a bot's orders are journaled on its account's book).
    books: tuple[str, ...] | None = None
    bot: str | None = None


@dataclass(frozen=True)
class TradeView:
    """One booked fill (a venue trade) of a book."""

    id: int
    at: datetime
    book: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    realized_pnl: Decimal | None  # set on fills that reduced a position
    client_order_id: str
    bot: str | None = None  # the named bot whose order filled (None: the unnamed bot)


@dataclass(frozen=True)
class OrderView:
    """One journaled order and its outcome."""

    id: int
    at: datetime
    book: str
    mode: str
    symbol: str
    side: str
    order_type: str
    status: str
    requested_qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    fee: Decimal
    fee_currency: str | None
    client_order_id: str
    error: str | None
    bot: str | None = None  # the named bot that sent it (None: the unnamed bot)


def trades(db: Database, where: HistoryFilter) -> list[TradeView]:
    """The newest fills matching ``where`` (by ``filled_at``), oldest first."""
    query = select(FillRecord, OrderRecord.client_order_id).join(
        OrderRecord, FillRecord.order_id == OrderRecord.id
    )
    query = _filtered(query, where, FillRecord.book, FillRecord.symbol, FillRecord.filled_at)
    query = query.order_by(FillRecord.filled_at.desc(), FillRecord.id.desc()).limit(where.limit)
    with db.session() as session:
        rows = session.execute(query).all()
    views = [
        TradeView(
            id=fill.id,
            at=fill.filled_at,
            book=fill.book,
            symbol=fill.symbol,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            fee_currency=fill.fee_currency,
            realized_pnl=fill.realized_pnl,
            client_order_id=client_order_id,
            bot=fill.bot,
        )
        for fill, client_order_id in rows
    ]
    return views[::-1]


def orders(db: Database, where: HistoryFilter) -> list[OrderView]:
    """The newest orders matching ``where`` (by ``created_at``), oldest first."""
    query = select(OrderRecord)
    if where.bot is not None:
        query = query.where(OrderRecord.bot == where.bot)
        where = replace(where, books=None)  # on its account's book and on its paper book
    query = _filtered(query, where, OrderRecord.book, OrderRecord.symbol, OrderRecord.created_at)
    query = query.order_by(OrderRecord.created_at.desc(), OrderRecord.id.desc()).limit(where.limit)
    with db.session() as session:
        rows = session.scalars(query).all()
    views = [
        OrderView(
            id=row.id,
            at=row.created_at,
            book=row.book,
            mode=row.mode,
            symbol=row.symbol,
            side=row.side,
            order_type=row.order_type,
            status=row.status,
            requested_qty=row.requested_qty,
            filled_qty=row.filled_qty,
            avg_fill_price=row.avg_fill_price,
            fee=row.fee,
            fee_currency=row.fee_currency,
            client_order_id=row.client_order_id,
            error=row.error,
            bot=row.bot,
        )
        for row in rows
    ]
    return views[::-1]


def _filtered(
    query: Select[_Row],
    where: HistoryFilter,
    book: InstrumentedAttribute[str],
    symbol: InstrumentedAttribute[str],
    at: InstrumentedAttribute[datetime],
) -> Select[_Row]:
    if where.book is not None:
        query = query.where(book == where.book)
    if where.books is not None:
        query = query.where(book.in_(where.books))
    if where.symbol is not None:
        query = query.where(symbol == where.symbol)
    if where.since is not None:
        query = query.where(at >= where.since)
    if where.until is not None:
        query = query.where(at <= where.until)
    return query


# --------------------------------------------------------------------------- profit


@dataclass(frozen=True)
class SymbolProfit:
    """One symbol of a book: realized PnL, closing fills and their wins, fees in quote.

    ``fees`` counts fees charged in the quote or the base asset (the base valued at the fill's
    price); a fee in a third asset (BNB) is counted in the book's total (``BookProfit.fees``),
    where the ledger valued it at that asset's cost."""

    symbol: str
    realized_pnl: Decimal
    closing_fills: int
    winning_fills: int
    fees: Decimal
    open_quantity: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class BookProfit:
    """One book's profit: the ledger's realized PnL and fees, the unrealized PnL at the latest
    snapshot's marks, and the win rate of its closing fills."""

    book: str
    quote_asset: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    closing_fills: int
    winning_fills: int
    by_symbol: tuple[SymbolProfit, ...]

    @property
    def total_pnl(self) -> Decimal:
        """Realized plus unrealized."""
        return self.realized_pnl + self.unrealized_pnl

    @property
    def win_rate(self) -> Decimal | None:
        """Share of closing fills with a positive realized PnL (0 to 1); ``None`` without any."""
        if not self.closing_fills:
            return None
        return Decimal(self.winning_fills) / Decimal(self.closing_fills)


def book_profit(db: Database, book: str, *, now: datetime) -> BookProfit:
    """The profit of ``book`` (``LookupError`` when there is no such book)."""
    status = book_status(db, book, now=now)
    with db.session() as session:
        fills = session.scalars(select(FillRecord).where(FillRecord.book == book)).all()
    realized: dict[str, Decimal] = defaultdict(lambda: ZERO)
    fees: dict[str, Decimal] = defaultdict(lambda: ZERO)
    closing: dict[str, int] = defaultdict(int)
    wins: dict[str, int] = defaultdict(int)
    for fill in fills:
        base, quote = split(fill.symbol)
        currency = (fill.fee_currency or quote).upper()
        fees[fill.symbol] += (
            fill.fee if currency == quote else fill.fee * fill.price if currency == base else ZERO
        )
        if fill.realized_pnl is not None:
            realized[fill.symbol] += fill.realized_pnl
            closing[fill.symbol] += 1
            wins[fill.symbol] += fill.realized_pnl > 0
    held = {p.symbol: p for p in status.positions}
    by_symbol = tuple(
        SymbolProfit(
            symbol=symbol,
            realized_pnl=realized[symbol],
            closing_fills=closing[symbol],
            winning_fills=wins[symbol],
            fees=fees[symbol],
            open_quantity=held[symbol].quantity if symbol in held else ZERO,
            unrealized_pnl=held[symbol].unrealized_pnl if symbol in held else ZERO,
        )
        for symbol in sorted({*realized, *fees, *held})
    )
    return BookProfit(
        book=book,
        quote_asset=status.quote_asset,
        realized_pnl=status.realized_pnl,
        unrealized_pnl=status.unrealized_pnl,
        fees=status.fees_paid,
        closing_fills=sum(closing.values()),
        winning_fills=sum(wins.values()),
        by_symbol=by_symbol,
    )


def all_profits(db: Database, *, now: datetime, book: str | None = None) -> list[BookProfit]:
    """:func:`book_profit` of one book or of every book."""
    books = [book] if book is not None else book_names(db)
    return [book_profit(db, name, now=now) for name in books]


# --------------------------------------------------------------------------- equity


@dataclass(frozen=True)
class EquityPoint:
    """A book's equity at one snapshot, its running peak and the drawdown from it (0 to 1)."""

    at: datetime
    equity: Decimal
    peak: Decimal
    drawdown: Decimal


@dataclass(frozen=True)
class EquityCurve:
    """A book's equity over a window, with drawdown from the running peak."""

    book: str
    points: tuple[EquityPoint, ...]

    @property
    def max_drawdown(self) -> Decimal:
        """The deepest drawdown of the window (0 to 1)."""
        return max((p.drawdown for p in self.points), default=ZERO)


def equity_curve(
    db: Database, book: str, *, since: datetime | None = None, until: datetime | None = None
) -> EquityCurve:
    """The snapshots of ``book`` in the window (the shadow report's series, so both agree),
    with the peak running from the window's first point."""
    with db.session() as session:
        raw = equity_points(session, book, since=since, until=until)
    points: list[EquityPoint] = []
    peak: Decimal | None = None
    for point in raw:
        peak = point.equity if peak is None else max(peak, point.equity)
        drawdown = (peak - point.equity) / peak if peak > 0 else ZERO
        points.append(EquityPoint(point.taken_at, point.equity, peak, drawdown))
    return EquityCurve(book, tuple(points))
