"""What the health check reads: the last completed daemon run and each book's drawdown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.persistence.models import DaemonRun, PortfolioSnapshot

#: Books always watched: the paper trader's and the pre-accounts broker book; every account's
#: book and shadow paper book are watched too (see ``watched_books``).
WATCHED_BOOKS = ("paper", "broker")


def watched_books(session: Session) -> tuple[str, ...]:
    """``WATCHED_BOOKS`` plus the book and the shadow paper book of every account."""
    from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID, shadow_paper_book
    from otonom_trader.persistence.account_models import AccountRecord

    books = list(WATCHED_BOOKS)
    for account_id, book in session.execute(
        select(AccountRecord.account_id, AccountRecord.book).order_by(AccountRecord.created_at)
    ):
        shadow = [] if book == PAPER_ACCOUNT_ID else [shadow_paper_book(account_id)]
        for candidate in (book, *shadow):
            if candidate not in books:
                books.append(candidate)
    return tuple(books)


@dataclass(frozen=True)
class RunActivity:
    """When the daemon last completed a run, and when it first started one (``None``: never)."""

    last_completed_at: datetime | None
    first_started_at: datetime | None
    last_status: str | None


@dataclass(frozen=True)
class BookDrawdown:
    """The drawdown of one book at its latest snapshot, in percent of the peak equity."""

    book: str
    taken_at: datetime
    equity: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal


def run_activity(session: Session, exclude_run_id: str | None = None) -> RunActivity:
    """The newest ``succeeded`` run's ``finished_at`` and the very first run's start.

    ``exclude_run_id``: a run whose own completion does not count (a cycle checking, after it
    was recorded, how long the daemon had been silent before it)."""
    # Each read is one probe of an index (status, finished_at) or (started_at, id): bounded
    # however many runs there are. ``ORDER BY … LIMIT 1`` instead of max()/min(), which the
    # databases answer from an index only without further conditions; NULLs are left out
    # explicitly, as max()/min() leave them out (PostgreSQL sorts NULL first when descending).
    completed = (
        select(DaemonRun.finished_at)
        .where(DaemonRun.status == "succeeded", DaemonRun.finished_at.is_not(None))
        .order_by(DaemonRun.finished_at.desc())
        .limit(1)
    )
    if exclude_run_id is not None:
        completed = completed.where(DaemonRun.run_id != exclude_run_id)
    last_completed = session.scalar(completed)
    first_started = session.scalar(
        select(DaemonRun.started_at).order_by(DaemonRun.started_at.asc()).limit(1)
    )
    last_status = session.scalar(
        select(DaemonRun.status).order_by(DaemonRun.started_at.desc(), DaemonRun.id.desc()).limit(1)
    )
    # The columns' type (UTCDateTime) brings these back aware UTC.
    return RunActivity(
        last_completed_at=last_completed,
        first_started_at=first_started,
        last_status=last_status,
    )


def latest_drawdowns(session: Session, books: tuple[str, ...] | None = None) -> list[BookDrawdown]:
    """The drawdown of each book that has a snapshot, from its newest snapshot (default: every
    watched book)."""
    result: list[BookDrawdown] = []
    for book in books if books is not None else watched_books(session):
        snap = session.scalars(
            select(PortfolioSnapshot)
            .where(PortfolioSnapshot.book == book)
            .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
            .limit(1)
        ).first()
        if snap is None:
            continue
        peak = snap.peak_equity
        drawdown = (peak - snap.equity) / peak * 100 if peak > 0 else Decimal(0)
        result.append(
            BookDrawdown(
                book=book,
                taken_at=snap.taken_at,
                equity=snap.equity,
                peak_equity=peak,
                drawdown_pct=max(drawdown, Decimal(0)),
            )
        )
    return result
