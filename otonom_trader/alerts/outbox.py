"""The outbox's database operations: enqueue (with dedupe), claim, record outcomes, list.

Every write is its own short transaction and no transaction is held while a channel is being
tried, so a slow SMTP server never holds SQLite's write lock over a trading step. A delivery
first *claims* its row with a compare-and-set on ``attempts`` so that the daemon and the
watchdog, retrying the same outbox at the same moment, never send one alert twice.

The exception is :meth:`AlertOutbox.add_transition`: it writes inside the *caller's* session,
the kill-switch's own transaction, so a transition and its announcement commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

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
    transition_id: int | None = None
    book: str | None = None
    state_after: str | None = None
    batched_into: int | None = None

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
            transition_id=rec.transition_id,
            book=rec.book,
            state_after=rec.state_after,
            batched_into=rec.batched_into,
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
        owner: tuple[str | None, str | None] = (None, None),
    ) -> list[Enqueued]:
        """Record the alert for each channel (one transaction) unless it repeats a row of the
        same ``dedupe_key`` and channel created within ``cooldown``.

        With no channel, one ``suppressed`` row on channel ``none`` keeps the alert on record.
        Duplicates get no new row: ``Enqueued.duplicate`` points at the earlier one.
        ``owner`` is the ``(bot, account_id)`` the alert is about, written on each row.
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
                    bot=owner[0],
                    account_id=owner[1],
                )
                session.add(rec)
                fresh.append((channel, rec))
            session.flush()
            result.extend(Enqueued(channel, rec.id, duplicate=False) for channel, rec in fresh)
        return result

    @staticmethod
    def add_transition(
        session: Session,
        *,
        transition_id: int,
        book: str,
        state_after: str,
        severity: str,
        title: str,
        body: str,
        dedupe_key: str,
        channels: Sequence[str],
        now: datetime,
        max_attempts: int,
        no_channel_note: str = "no channel configured",
        owner: tuple[str | None, str | None] = (None, None),
    ) -> list[AlertOutboxRecord]:
        """Record one kill-switch transition for each channel in ``session`` (the caller's
        transaction: nothing is committed here). With no channel, one ``suppressed`` row on
        channel ``none`` keeps it on record. A transition already recorded on a channel (a
        retry of the same transition) adds nothing there."""
        targets = list(channels) or [NO_CHANNEL]
        existing = set(
            session.scalars(
                select(AlertOutboxRecord.channel).where(
                    AlertOutboxRecord.transition_id == transition_id
                )
            )
        )
        added = []
        for channel in targets:
            if channel in existing:
                continue
            rec = AlertOutboxRecord(
                event="kill_switch",
                severity=severity,
                title=title[:255],
                body=body,
                dedupe_key=dedupe_key[:255],
                channel=channel,
                status="pending" if channel != NO_CHANNEL else "suppressed",
                attempts=0,
                max_attempts=max_attempts,
                note=None if channel != NO_CHANNEL else no_channel_note,
                created_at=now,
                next_attempt_at=now if channel != NO_CHANNEL else None,
                bot=owner[0],
                account_id=owner[1],
                transition_id=transition_id,
                book=book[:32],
                state_after=state_after,
            )
            session.add(rec)
            added.append(rec)
        return added

    def pending_by_channel(self) -> dict[str, list[int]]:
        """Every pending row id per channel, oldest first, whatever its due time: a channel
        delivers its rows strictly in this order."""
        with self.db.session() as session:
            rows = session.execute(
                select(AlertOutboxRecord.channel, AlertOutboxRecord.id)
                .where(AlertOutboxRecord.status == "pending")
                .order_by(AlertOutboxRecord.id)
            )
            result: dict[str, list[int]] = {}
            for channel, row_id in rows:
                result.setdefault(channel, []).append(int(row_id))
            return result

    def rows(self, ids: Sequence[int]) -> list[OutboxRow]:
        """The rows ``ids``, in id order."""
        if not ids:
            return []
        with self.db.session() as session:
            query = (
                select(AlertOutboxRecord)
                .where(AlertOutboxRecord.id.in_(list(ids)))
                .order_by(AlertOutboxRecord.id)
            )
            return [OutboxRow.of(rec) for rec in session.scalars(query)]

    def for_transition(self, transition_id: int) -> list[OutboxRow]:
        """The rows announcing one kill-switch transition (one per channel)."""
        with self.db.session() as session:
            query = (
                select(AlertOutboxRecord)
                .where(AlertOutboxRecord.transition_id == transition_id)
                .order_by(AlertOutboxRecord.id)
            )
            return [OutboxRow.of(rec) for rec in session.scalars(query)]

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
        """When ``channel`` delivered messages since ``since`` (oldest first): the rate window.
        Rows carried inside another row's message (``batched_into``) are not messages."""
        with self.db.session() as session:
            rows = session.scalars(
                select(AlertOutboxRecord.sent_at)
                .where(
                    AlertOutboxRecord.channel == channel,
                    AlertOutboxRecord.status == "sent",
                    AlertOutboxRecord.sent_at >= since,
                    AlertOutboxRecord.batched_into.is_(None),
                )
                .order_by(AlertOutboxRecord.sent_at)
            )
            return [t for t in rows if t is not None]

    def claim(self, row: OutboxRow, now: datetime) -> bool:
        """Take ``row`` for one attempt (compare-and-set on ``attempts``); False if another
        process took it first or it is no longer pending."""
        return self.claim_many([row], now)

    def mark_sent(self, row_id: int, now: datetime, body: str | None = None) -> None:
        """The channel accepted the alert: its error and deferral note are cleared (the row's
        history is its attempts and ``sent_at``). ``body``: the text sent, when the sender added
        to the stored one."""
        values: dict[str, object] = {
            "status": "sent",
            "sent_at": now,
            "next_attempt_at": None,
            "last_error": None,
            "note": None,
        }
        if body is not None:
            values["body"] = body
        self._set(row_id, **values)

    def mark_batched(self, row_ids: Sequence[int], into: int, now: datetime) -> None:
        """Rows delivered inside row ``into``'s message (a rate-limited channel)."""
        if not row_ids:
            return
        with self.db.session() as session:
            session.execute(
                update(AlertOutboxRecord)
                .where(
                    AlertOutboxRecord.id.in_(list(row_ids)),
                    AlertOutboxRecord.status == "pending",
                )
                .values(
                    status="sent",
                    sent_at=now,
                    next_attempt_at=None,
                    last_error=None,
                    batched_into=into,
                    note=f"sent in the message of row {into} (rate limit)",
                )
                .execution_options(synchronize_session=False)
            )

    def claim_many(self, rows: Sequence[OutboxRow], now: datetime) -> bool:
        """Claim every row of a batch for one attempt, or none (one transaction)."""
        with self.db.session() as session:
            for row in rows:
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
                if not claimed.rowcount:  # type: ignore[attr-defined]
                    session.rollback()
                    return False
            return True

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
