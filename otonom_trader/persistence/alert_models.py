"""The alert outbox: every alert is a row here before any channel is tried.

One row per alert *and channel*, so a channel that is down is retried on its own while the others
are already marked sent. ``status``:

* ``pending``   not delivered yet; tried again once ``next_attempt_at`` has passed
* ``sent``      the channel accepted it (``sent_at``)
* ``failed``    gave up after ``max_attempts`` (or a one-shot test message failed)
* ``suppressed`` never sent on purpose: a duplicate within the cooldown, or no channel configured
  (``note`` says which)

``last_error`` holds the channel's complaint with every known secret masked (cleared once sent).
The indexes serve the hot queries: due pending rows (``status, next_attempt_at``), the dedupe /
rate-limit look-ups (``dedupe_key, channel, created_at`` and ``channel, status, sent_at``) and
each channel's oldest pending row (``channel, status, id``: delivery is in order per channel).

A kill-switch transition is announced by one row per channel carrying the transition's own id
(``transition_id`` = ``kill_switch_events.id``), its ``book`` and the state it left
(``state_after``: ``active`` or ``clear``). The unique index on ``(transition_id, channel)`` makes a
repeat of the same transition (a retry, a second process) a no-op, while a new transition with the
same wording is a new row. ``batched_into`` names the row whose message carried this one when a
rate limit batched several transitions into one message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from otonom_trader.persistence.models import Base, utc_now

OUTBOX_STATUSES = ("pending", "sent", "failed", "suppressed")


class AlertOutboxRecord(Base):
    """One alert for one channel, and what became of its delivery."""

    __tablename__ = "alert_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=20)
    last_error: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    transition_id: Mapped[int | None] = mapped_column(Integer)
    book: Mapped[str | None] = mapped_column(String(32))
    state_after: Mapped[str | None] = mapped_column(String(8))
    batched_into: Mapped[int | None] = mapped_column(Integer)
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_alert_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_alert_outbox_dedupe", "dedupe_key", "channel", "created_at"),
        Index("ix_alert_outbox_channel_sent", "channel", "status", "sent_at"),
        Index("ux_alert_outbox_transition_channel", "transition_id", "channel", unique=True),
        Index("ix_alert_outbox_channel_status_id", "channel", "status", "id"),
    )

    def __repr__(self) -> str:
        return (
            f"AlertOutboxRecord(id={self.id}, event={self.event!r}, channel={self.channel!r}, "
            f"status={self.status!r}, attempts={self.attempts})"
        )
