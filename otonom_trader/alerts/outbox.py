"""The outbox's database operations: enqueue (with dedupe), claim, record outcomes, list.

Every write is its own short transaction and no transaction is held while a channel is being
tried, so a slow SMTP server never holds SQLite's write lock over a trading step. A delivery
first *claims* its row with a compare-and-set on ``attempts`` so that the daemon and the
watchdog, retrying the same outbox at the same moment, never send one alert twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.database import Database

#: How long a claimed row is left alone: if the process dies mid-send, it is retried after this.
CLAIM_LEASE = timedelta(minutes=2)
#: The channel name of rows recorded when no channel receives an alert.
NO_CHANNEL = "none"


@dataclass(frozen=True)
class OutboxRow:
    """A detached copy of one outbox row (safe to use after its session closed)."""

    id: int
    event: str
    severity: str
    title: str
    body: str
    dedupe_key: str | None
    channel: str
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    note: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, rec: AlertOutboxRecord) -> OutboxRow:
        """Copy a mapped record."""
        return cls(
            id=rec.id,
            event=rec.event,
            severity=rec.severity,
            title=rec.title,
            body=rec.body,
            dedupe_key=rec.dedupe_key,
            channel=rec.channel,
            status=rec.status,
            attempts=rec.attempts,
            max_attempts=rec.max_attempts,
            last_error=rec.last_error,
            note=rec.note,
            created_at=rec.created_at,
            next_attempt_at=rec.next_attempt_at,
            sent_at=rec.sent_at,
        )


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did for one channel: a new pending row, or the earlier row it repeats."""

    channel: str
    outbox_id: int
    duplicate: bool


class AlertOutbox:
    """The ``alert_outbox`` table of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        *,
        event: str,
        severity: str,
        title: str,
        body: str,
        dedupe_key: str | None,
        channels: Sequence[str],
        now: datetime,
        cooldown: timedelta,
        max_attempts: int,
        no_channel_note: str = "no channel configured",
    ) -> list[Enqueued]:
        """Record the alert for each channel (one transaction) unless it repeats a row of the
        same ``dedupe_key`` and channel created within ``cooldown``.

        With no channel, one ``suppressed`` row on channel ``none`` keeps the alert on record.
        Duplicates get no new row: ``Enqueued.duplicate`` points at the earlier one.
        """
        targets = list(channels) or [NO_CHANNEL]
        result: list[Enqueued] = []
        with self.db.session() as session:
            fresh: list[tuple[str, AlertOutboxRecord]] = []
            for channel in targets:
                earlier = None
                if dedupe_key and cooldown > timedelta(0):
                    earlier = session.scalar(
                        select(AlertOutboxRecord.id)
                        .where(
                            AlertOutboxRecord.dedupe_key == dedupe_key,
                            AlertOutboxRecord.channel == channel,
                            AlertOutboxRecord.created_at >= now - cooldown,
                            AlertOutboxRecord.status.in_(("pending", "sent", "suppressed")),
                        )
                        .order_by(AlertOutboxRecord.id.desc())
                        .limit(1)
                    )
                if earlier is not None:
                    result.append(Enqueued(channel, earlier, duplicate=True))
                    continue
                rec = AlertOutboxRecord(
                    event=event,
                    severity=severity,
                    title=title[:255],
                    body=body,
                    dedupe_key=dedupe_key[:255] if dedupe_key else None,
                    channel=channel,
                    status="pending" if channel != NO_CHANNEL else "suppressed",
                    attempts=0,
                    max_attempts=max_attempts,
                    note=None if channel != NO_CHANNEL else no_channel_note,
                    created_at=now,
                    next_attempt_at=now if channel != NO_CHANNEL else None,
                )
                session.add(rec)
                fresh.append((channel, rec))
            session.flush()
            result.extend(Enqueued(channel, rec.id, duplicate=False) for channel, rec in fresh)
        return result

    def due(self, now: datetime, limit: int, ids: Sequence[int] | None = None) -> list[OutboxRow]:
        """Pending rows whose time has come, oldest first (only ``ids`` when given)."""
        query = (
            select(AlertOutboxRecord)
            .where(
                AlertOutboxRecord.status == "pending",
                AlertOutboxRecord.next_attempt_at <= now,
            )
            .order_by(AlertOutboxRecord.id)
            .limit(limit)
        )
        if ids is not None:
            query = query.where(AlertOutboxRecord.id.in_(list(ids)))
        with self.db.session() as session:
            return [OutboxRow.of(rec) for rec in session.scalars(query)]

    def sent_since(self, channel: str, since: datetime) -> list[datetime]:
        """When ``channel`` delivered alerts since ``since`` (oldest first): the rate window."""
        with self.db.session() as session:
            rows = session.scalars(
                select(AlertOutboxRecord.sent_at)
                .where(
                    AlertOutboxRecord.channel == channel,
                    AlertOutboxRecord.status == "sent",
                    AlertOutboxRecord.sent_at >= since,
                )
                .order_by(AlertOutboxRecord.sent_at)
            )
            return [t for t in rows if t is not None]

    def claim(self, row: OutboxRow, now: datetime) -> bool:
        """Take ``row`` for one attempt (compare-and-set on ``attempts``); False if another
        process took it first or it is no longer pending."""
        with self.db.session() as session:
            claimed = session.execute(
                update(AlertOutboxRecord)
                .where(
                    AlertOutboxRecord.id == row.id,
                    AlertOutboxRecord.status == "pending",
                    AlertOutboxRecord.attempts == row.attempts,
                )
                .values(attempts=row.attempts + 1, next_attempt_at=now + CLAIM_LEASE)
                .execution_options(synchronize_session=False)
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    def mark_sent(self, row_id: int, now: datetime) -> None:
        """The channel accepted the alert."""
        self._set(row_id, status="sent", sent_at=now, next_attempt_at=None)

    def mark_attempt_failed(
        self, row_id: int, error: str, next_attempt_at: datetime | None
    ) -> None:
        """A delivery failed: retry at ``next_attempt_at``, or give up (``None``)."""
        if next_attempt_at is None:
            self._set(
                row_id,
                status="failed",
                last_error=error,
                next_attempt_at=None,
                note="gave up after the last attempt",
            )
        else:
            self._set(row_id, last_error=error, next_attempt_at=next_attempt_at)

    def defer(self, row_id: int, until: datetime, note: str) -> None:
        """Leave a row pending until ``until`` without counting an attempt (rate limit)."""
        self._set(row_id, next_attempt_at=until, note=note)

    def give_up(self, row_id: int, note: str) -> None:
        """Mark a row failed without trying it (its channel is no longer configured)."""
        self._set(row_id, status="failed", note=note, next_attempt_at=None)

    def recent(self, limit: int = 20, status: str | None = None) -> list[OutboxRow]:
        """The newest rows, newest first (optionally of one status)."""
        query = select(AlertOutboxRecord).order_by(AlertOutboxRecord.id.desc()).limit(limit)
        if status:
            query = query.where(AlertOutboxRecord.status == status)
        with self.db.session() as session:
            return [OutboxRow.of(rec) for rec in session.scalars(query)]

    def get(self, row_id: int) -> OutboxRow | None:
        """One row by id."""
        with self.db.session() as session:
            rec = session.get(AlertOutboxRecord, row_id)
            return OutboxRow.of(rec) if rec is not None else None

    def count_by_status(self) -> dict[str, int]:
        """How many rows each status has."""
        with self.db.session() as session:
            rows = session.execute(
                select(AlertOutboxRecord.status, func.count()).group_by(AlertOutboxRecord.status)
            )
            return {status: int(n) for status, n in rows}

    def _set(self, row_id: int, **values: object) -> None:
        with self.db.session() as session:
            session.execute(
                update(AlertOutboxRecord)
                .where(AlertOutboxRecord.id == row_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
