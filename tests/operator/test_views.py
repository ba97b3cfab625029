"""The operator views' numbers on a database with real trades, against the ledger's own rows."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from traded_books import CYCLES, TradedDatabase

from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.operator import views
from otonom_trader.persistence import Database
from otonom_trader.persistence.models import (
    BookAccount,
    BookPosition,
    DaemonRun,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)
from otonom_trader.portfolio.ledger import latest_snapshot


@pytest.fixture
def db(traded: TradedDatabase) -> Database:
    database = Database(traded.path)
    yield database  # type: ignore[misc]
    database.dispose()


def test_status_of_the_paper_book_is_the_ledger_marked_at_the_latest_snapshot(
    traded: TradedDatabase, db: Database
) -> None:
    now = traded.last_cycle_at + timedelta(minutes=5)

    status = views.book_status(db, traded.paper_book, now=now)

    with db.session() as session:
        account = session.get(BookAccount, traded.paper_book)
        snapshot = latest_snapshot(session, traded.paper_book)
        rows = session.scalars(
            select(BookPosition).where(BookPosition.book == traded.paper_book)
        ).all()
        open_rows = [row for row in rows if row.quantity > 0]
        run = session.scalars(select(DaemonRun).order_by(DaemonRun.id.desc())).first()
    assert account is not None and snapshot is not None and run is not None
    marks = {p["symbol"]: Decimal(p["mark_price"]) for p in json.loads(snapshot.positions_json)}
    assert open_rows, "the last cycle bought: a position is open"
    assert status.equity == snapshot.equity and status.cash == snapshot.cash == account.cash
    assert status.marked_at == snapshot.taken_at
    assert [p.symbol for p in status.positions] == sorted(r.symbol for r in open_rows)
    for position, row in zip(
        status.positions, sorted(open_rows, key=lambda r: r.symbol), strict=True
    ):
        assert position.quantity == row.quantity
        assert position.avg_entry_price == row.avg_entry_price
        assert position.mark_price == marks[row.symbol]
        assert position.unrealized_pnl == row.quantity * (marks[row.symbol] - row.avg_entry_price)
    # the snapshot's equity is the ledger's cash plus the open positions at the same marks
    assert status.equity == account.cash + sum(p.quantity * p.mark_price for p in status.positions)
    assert status.realized_pnl == account.realized_pnl != 0
    assert status.fees_paid == account.fees_paid > 0
    assert status.account_id == traded.broker_book
    assert status.guard.active is False
    assert status.last_run is not None and status.last_run.run_id == run.run_id
    assert status.last_run.status == "succeeded"
    assert run.finished_at is not None
    assert status.last_run.age_seconds == (now - run.finished_at).total_seconds()


def test_todays_pnl_is_equity_minus_the_last_snapshot_before_midnight(
    traded: TradedDatabase, db: Database
) -> None:
    next_day = traded.last_cycle_at + timedelta(days=1)
    same_day = views.book_status(db, traded.paper_book, now=traded.last_cycle_at)
    later = views.book_status(db, traded.paper_book, now=next_day)

    with db.session() as session:
        first = session.scalars(
            select(PortfolioSnapshot)
            .where(PortfolioSnapshot.book == traded.paper_book)
            .order_by(PortfolioSnapshot.id)
        ).first()
    assert first is not None
    # every cycle ran on 2026-06-01: today's PnL that day counts from its first snapshot ...
    assert same_day.today_pnl == same_day.equity - first.equity != 0
    # ... and the next day from the last snapshot before midnight (no cycle since: zero)
    assert later.today_pnl == 0


def test_status_shows_a_tripped_kill_switch(traded: TradedDatabase, db: Database) -> None:
    KillSwitch(db, GuardrailConfig(), traded.broker_book).trip(
        "exchange incident", traded.last_cycle_at, "alice"
    )

    status = views.book_status(db, traded.broker_book, now=traded.last_cycle_at)

    assert status.guard.active is True
    assert status.guard.reason is not None and "exchange incident" in status.guard.reason
    assert status.guard.since == traded.last_cycle_at


def test_unknown_book_is_a_lookup_error(db: Database, traded: TradedDatabase) -> None:
    with pytest.raises(LookupError, match="no book 'nope'"):
        views.book_status(db, "nope", now=traded.last_cycle_at)


def test_profit_equals_the_ledger_and_adds_up_by_symbol(
    traded: TradedDatabase, db: Database
) -> None:
    for book in (traded.paper_book, traded.broker_book):
        profit = views.book_profit(db, book, now=traded.last_cycle_at)
        status = views.book_status(db, book, now=traded.last_cycle_at)
        with db.session() as session:
            account = session.get(BookAccount, book)
            closing = session.scalars(
                select(FillRecord.realized_pnl).where(
                    FillRecord.book == book, FillRecord.realized_pnl.is_not(None)
                )
            ).all()
        assert account is not None
        assert profit.realized_pnl == account.realized_pnl
        assert sum(s.realized_pnl for s in profit.by_symbol) == account.realized_pnl
        # the simulated venues charge fees in the quote asset: by symbol adds up to the total
        assert profit.fees == account.fees_paid == sum(s.fees for s in profit.by_symbol)
        assert profit.unrealized_pnl == status.unrealized_pnl
        assert profit.total_pnl == profit.realized_pnl + profit.unrealized_pnl
        assert profit.closing_fills == len(closing) > 0
        assert profit.winning_fills == sum(1 for pnl in closing if pnl is not None and pnl > 0)
        assert profit.win_rate == Decimal(profit.winning_fills) / Decimal(len(closing))


def test_trades_filter_by_symbol_book_and_time(traded: TradedDatabase, db: Database) -> None:
    everything = views.trades(db, views.HistoryFilter(limit=10_000))
    btc = views.trades(db, views.HistoryFilter(symbol="BTC/USDT", limit=10_000))
    paper = views.trades(db, views.HistoryFilter(book=traded.paper_book, limit=10_000))
    last_hour = views.trades(
        db, views.HistoryFilter(since=traded.last_cycle_at - timedelta(minutes=1), limit=10_000)
    )
    first_hour = views.trades(
        db,
        views.HistoryFilter(until=traded.last_cycle_at - timedelta(hours=CYCLES - 1), limit=10_000),
    )

    with db.session() as session:
        fills = session.scalars(select(FillRecord)).all()
    assert len(everything) == len(fills) > 0
    assert [t.at for t in everything] == sorted(t.at for t in everything)  # oldest first
    assert btc and {t.symbol for t in btc} == {"BTC/USDT"}
    assert len(btc) == sum(1 for f in fills if f.symbol == "BTC/USDT")
    assert paper and {t.book for t in paper} == {traded.paper_book}
    assert last_hour and all(t.at >= traded.last_cycle_at - timedelta(minutes=1) for t in last_hour)
    assert first_hour and len(first_hour) + len(last_hour) < len(everything)
    assert views.trades(db, views.HistoryFilter(limit=3)) == everything[-3:]


def test_orders_filter_and_show_every_outcome(traded: TradedDatabase, db: Database) -> None:
    broker = views.orders(db, views.HistoryFilter(book=traded.broker_book, limit=10_000))
    eth = views.orders(db, views.HistoryFilter(symbol="ETH/USDT", limit=10_000))

    with db.session() as session:
        rows = session.scalars(
            select(OrderRecord).where(OrderRecord.book == traded.broker_book)
        ).all()
    assert {o.client_order_id for o in broker} == {r.client_order_id for r in rows}
    assert {o.status for o in broker} == {r.status for r in rows}
    assert eth and {o.symbol for o in eth} == {"ETH/USDT"}


def test_equity_curve_is_every_snapshot_with_drawdown_from_the_running_peak(
    traded: TradedDatabase, db: Database
) -> None:
    curve = views.equity_curve(db, traded.paper_book)

    with db.session() as session:
        snapshots = session.scalars(
            select(PortfolioSnapshot)
            .where(PortfolioSnapshot.book == traded.paper_book)
            .order_by(PortfolioSnapshot.id)
        ).all()
    assert [p.equity for p in curve.points] == [s.equity for s in snapshots]
    assert len(curve.points) == CYCLES
    peak = Decimal(0)
    for point in curve.points:
        peak = max(peak, point.equity)
        assert point.peak == peak and point.drawdown == (peak - point.equity) / peak
    assert curve.max_drawdown == max(p.drawdown for p in curve.points)
