"""The accounts table: register the account a cycle trades, adopt the pre-accounts ``broker`` book.

Before accounts existed every venue's fills went to one book called ``broker``. The first cycle
on an account whose venue is the one the legacy book's last SHADOW/LIVE runs used (same broker
name) *adopts* that book: the book is renamed to the account's book in every table, in one
transaction, so its positions, cash, peak, kill-switch state and history carry over and nothing
is lost. A cycle on any other venue starts a fresh book and leaves ``broker`` readable as it was.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from otonom_trader.accounts.identity import Account
from otonom_trader.persistence.account_models import AccountRecord
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.guardrail_models import KillSwitchEventRecord, KillSwitchStateRecord
from otonom_trader.persistence.models import (
    BookAccount,
    BookPosition,
    DaemonRun,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)

log = logging.getLogger(__name__)

LEGACY_BROKER_BOOK = "broker"
_BOOK_TABLES = (
    OrderRecord,
    FillRecord,
    PortfolioSnapshot,
    BookAccount,
    BookPosition,
    KillSwitchStateRecord,
    KillSwitchEventRecord,
)


def register_account(
    db: Database, account: Account, *, bot: str, broker_name: str, now: datetime
) -> AccountRecord:
    """The account's row, created on first use (adopting the legacy book when it matches)."""
    with db.session() as session:
        row = session.get(AccountRecord, account.account_id)
        if row is None:
            row = AccountRecord(
                account_id=account.account_id,
                venue=account.venue,
                environment=account.environment,
                endpoint=account.endpoint[:512],
                label=account.label[:64],
                key_fingerprint=account.key_fingerprint,
                book=account.book,
                created_at=now,
            )
            session.add(row)
            if account.venue != "paper" and _legacy_book_matches(session, broker_name):
                _rename_book(session, LEGACY_BROKER_BOOK, account.book)
                row.adopted_from = LEGACY_BROKER_BOOK
                log.warning(
                    "book %r (before accounts) carried over to account %s (%s)",
                    LEGACY_BROKER_BOOK,
                    account.account_id,
                    account.describe(),
                )
        row.bot = bot[:160]
        row.last_used_at = now
        session.flush()
        session.expunge(row)
        return row


def list_accounts(db: Database) -> list[AccountRecord]:
    """Every registered account, oldest first."""
    with db.session() as session:
        rows = list(session.scalars(select(AccountRecord).order_by(AccountRecord.created_at)))
        for row in rows:
            session.expunge(row)
        return rows


def _legacy_book_matches(session: Session, broker_name: str) -> bool:
    adopted = session.scalars(
        select(AccountRecord.account_id).where(AccountRecord.adopted_from == LEGACY_BROKER_BOOK)
    ).first()
    if adopted is not None or session.get(BookAccount, LEGACY_BROKER_BOOK) is None:
        return False
    last = session.scalars(
        select(DaemonRun.broker)
        .where(DaemonRun.mode.in_(("shadow", "live")), DaemonRun.account_id.is_(None))
        .order_by(DaemonRun.started_at.desc(), DaemonRun.id.desc())
        .limit(1)
    ).first()
    return last is not None and last == broker_name[:128]


def _rename_book(session: Session, old: str, new: str) -> None:
    for table in _BOOK_TABLES:
        session.execute(update(table).where(table.book == old).values(book=new))
