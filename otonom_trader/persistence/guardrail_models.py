"""Kill-switch tables: the persisted state of each book's switch, and every transition.

* ``kill_switch_state``: one row per book. Whether the switch is active, why, since when, the
  numbers that tripped it, whether a person tripped it (``manual``), the guardrails that hold it
  (``locks_json``: guardrail name → until when) and the guardrails' cursors (``cursors_json``:
  e.g. the last closed trade a reset forgave). ``version`` makes transitions compare-and-set, so
  two processes evaluating at once announce a transition exactly once.
* ``kill_switch_events``: every trigger and reset (automatic or manual) with its reason, numbers
  and actor: the audit trail.

A partial index on ``fills`` keeps the consecutive-loss check one bounded index read: closed
trades (``realized_pnl`` set) of a book, newest first, without stepping over the opening fills.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from otonom_trader.persistence.models import Base, FillRecord, utc_now


class KillSwitchStateRecord(Base):
    """The current kill-switch state of one book (``paper``, ``broker``, a drill's book)."""

    __tablename__ = "kill_switch_state"

    book: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    tripped_at: Mapped[datetime | None]
    numbers_json: Mapped[str] = mapped_column(Text, default="{}")
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    locks_json: Mapped[str] = mapped_column(Text, default="{}")
    cursors_json: Mapped[str] = mapped_column(Text, default="{}")
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))

    # Compare-and-set: an UPDATE whose version no longer matches raises StaleDataError.
    __mapper_args__ = {"version_id_col": version}


class KillSwitchEventRecord(Base):
    """One transition of a book's kill-switch: ``trigger`` or ``reset``."""

    __tablename__ = "kill_switch_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    numbers_json: Mapped[str] = mapped_column(Text, default="{}")
    actor: Mapped[str] = mapped_column(String(64))
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_kill_switch_events_book_id", "book", "id"),)


# Declared here (not in models.py) because only the guardrails read it; it attaches to ``fills``.
FILLS_CLOSED_INDEX = Index(
    "ix_fills_book_closed",
    FillRecord.book,
    FillRecord.id,
    sqlite_where=FillRecord.realized_pnl.isnot(None),
    postgresql_where=FillRecord.realized_pnl.isnot(None),
)
