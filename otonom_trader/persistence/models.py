"""The core tables: daemon runs, orders, fills, portfolio snapshots and the books' holdings.

A *book* is one set of holdings: ``paper`` (the paper trader), ``broker`` (our accounting of the
executing broker's fills), or a scratch book such as a fire drill's. Guardrail, alert and shadow
tables live in their own modules and migrations (each domain adds its tables by migration).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from otonom_trader.persistence.column_types import ExactDecimal, UTCDateTime


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table; its metadata is what migrations are checked against."""

    type_annotation_map = {Decimal: ExactDecimal, datetime: UTCDateTime}


class DaemonRun(Base):
    """One cycle of the daemon: when, how it ended, in which mode, with which config."""

    __tablename__ = "daemon_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    mode: Mapped[str] = mapped_column(String(8))
    broker: Mapped[str] = mapped_column(String(128))
    data_source: Mapped[str] = mapped_column(String(16))
    config_hash: Mapped[str] = mapped_column(String(32))
    strategy_name: Mapped[str] = mapped_column(String(128))
    strategy_version: Mapped[str] = mapped_column(String(32))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    # The account the run traded (its lease, its books); NULL for runs before accounts existed.
    account_id: Mapped[str | None] = mapped_column(String(32))
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    summary_json: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_daemon_runs_status_finished", "status", "finished_at"),
        Index("ix_daemon_runs_account_status", "account_id", "status"),
        # The first run's start and the newest run, in one probe (migration 0007).
        Index("ix_daemon_runs_started_id", "started_at", "id"),
        Index("ix_daemon_runs_bot_started", "bot", "started_at"),
    )


class OrderRecord(Base):
    """An order intent, journaled *before* it is sent, then updated with its outcome."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(36), unique=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    book: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_qty: Mapped[Decimal]
    requested_price: Mapped[Decimal | None]
    signal_price: Mapped[Decimal | None]
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_fill_price: Mapped[Decimal | None]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    fills: Mapped[list[FillRecord]] = relationship(back_populates="order")

    __table_args__ = (
        Index("ix_orders_book_created", "book", "created_at"),
        Index("ix_orders_book_status", "book", "status"),
        Index("ix_orders_bot_created", "bot", "created_at"),
    )


class FillRecord(Base):
    """One execution of an order. ``realized_pnl`` is set on fills that reduce a position."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    book: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    realized_pnl: Mapped[Decimal | None]
    exchange_trade_id: Mapped[str | None] = mapped_column(String(64))
    filled_at: Mapped[datetime] = mapped_column(default=utc_now)
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))

    order: Mapped[OrderRecord] = relationship(back_populates="fills")

    __table_args__ = (
        Index("ix_fills_book_id", "book", "id"),
        # A venue trade is booked once per book (a NULL id — none known — never collides).
        Index("ux_fills_book_trade", "book", "exchange_trade_id", unique=True),
        Index("ix_fills_bot_id", "bot", "id"),
    )


class PortfolioSnapshot(Base):
    """Equity of one book at one time. ``peak_equity`` is the running maximum, carried forward
    so the drawdown check reads one row instead of scanning history."""

    __tablename__ = "portfolio_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(default=utc_now)
    equity: Mapped[Decimal]
    cash: Mapped[Decimal]
    peak_equity: Mapped[Decimal]
    positions_json: Mapped[str] = mapped_column(Text, default="[]")
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_snapshots_book_taken", "book", "taken_at"),
        Index("ix_snapshots_bot_taken", "bot", "taken_at"),
    )


class BookAccount(Base):
    """Cash and realized PnL of a book (updated in the same transaction as each fill)."""

    __tablename__ = "book_accounts"

    book: Mapped[str] = mapped_column(String(32), primary_key=True)
    quote_asset: Mapped[str] = mapped_column(String(16))
    cash: Mapped[Decimal]
    initial_cash: Mapped[Decimal]
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fees_paid: Mapped[Decimal] = mapped_column(default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class BookPosition(Base):
    """An open (or closed, quantity 0) position of a book in one symbol."""

    __tablename__ = "book_positions"

    book: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[Decimal]
    avg_entry_price: Mapped[Decimal]  # cost_basis / quantity, for display and stops
    # What the held quantity cost, fees included: realized PnL is computed from it, so closing a
    # position realizes exactly its cash result (no rounding of an average price).
    cost_basis: Mapped[Decimal] = mapped_column(default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class DriftEvent(Base):
    """A difference between a book and its venue's balance of one asset, found by
    reconciliation. One *episode* per book and asset: opened when the drift is first seen (and
    announced once), resolved when the book and the venue agree again."""

    __tablename__ = "drift_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(16))
    book_qty: Mapped[Decimal]
    venue_qty: Mapped[Decimal]
    cause: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))
    seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_drift_events_book_asset_open", "book", "asset", "resolved_at"),)


class BookAdjustment(Base):
    """A correction of a book to its venue (reconciliation's ``adopt`` policy, or the opening
    balance of a new account's book): the book's quantity before and after, and why."""

    __tablename__ = "book_adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(16))
    before_qty: Mapped[Decimal]
    after_qty: Mapped[Decimal]
    cost_change: Mapped[Decimal] = mapped_column(default=Decimal(0))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (Index("ix_book_adjustments_book_id", "book", "id"),)
