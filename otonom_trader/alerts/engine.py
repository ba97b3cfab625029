"""``AlertEngine``: the guide's alert API over an outbox that loses nothing.

::

    notify_* / check_and_notify ──► route (severity, event) ──► dedupe (key, cooldown)
        ──► outbox rows (one per channel, committed) ──► deliver now, per channel
                                                            │ failed / rate-limited
    deliver_pending(now) on later cycles ◄──────────────────┘ (backoff, up to max_attempts)

Guarantees the daemon relies on:

* No public method raises: a broken channel, database or plugin is caught, logged (masked) and
  reported in the returned value.
* Work per call is bounded: at most ``max_deliveries_per_call`` rows, short timeouts, and a
  channel that fails is not tried again within the same call (nor before its backoff expires),
  so a dead SMTP server costs one timeout per backoff period, not one per alert.
* Secrets never reach a row, a log line or an alert text (see :data:`channels.MASKER`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from apprise import NotifyType
from sqlalchemy import select

from otonom_trader.alerts.channels import MASKER, AlertChannel, SendResult, build_channels
from otonom_trader.alerts.config import AlertEvent, AlertsConfig, Severity
from otonom_trader.alerts.health import BookDrawdown, latest_drawdowns, run_activity
from otonom_trader.alerts.loading import load_alerts_file
from otonom_trader.alerts.outbox import AlertOutbox, Enqueued, OutboxRow
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import utc_now

log = logging.getLogger("otonom_trader.alerts")

TITLE_PREFIX = "[otonom-trader]"
MAX_BACKOFF = timedelta(minutes=60)
RATE_WINDOW = timedelta(hours=1)

_NOTIFY_TYPES = {
    Severity.INFO: NotifyType.INFO,
    Severity.WARNING: NotifyType.WARNING,
    Severity.ERROR: NotifyType.FAILURE,
    Severity.CRITICAL: NotifyType.FAILURE,
}


@dataclass(frozen=True)
class ChannelOutcome:
    """What happened to one alert on one channel.

    ``status``: ``sent``, ``pending`` (will be retried), ``failed`` (gave up), ``suppressed``
    (a duplicate within the cooldown, or no channel) or ``unrecorded`` (the database was not
    usable; the alert was sent directly, ``sent`` tells whether it arrived).
    """

    channel: str
    outbox_id: int | None
    status: str
    error: str | None = None
    note: str | None = None

    @property
    def sent(self) -> bool:
        """True when the channel accepted the alert in this call."""
        return self.status == "sent"


@dataclass(frozen=True)
class AlertReport:
    """The result of raising one alert: its outbox rows and each channel's outcome."""

    event: str
    severity: str
    title: str
    outcomes: tuple[ChannelOutcome, ...] = ()
    error: str | None = None

    @property
    def outbox_ids(self) -> tuple[int, ...]:
        """The outbox rows of this alert (or of the earlier alert it duplicates)."""
        return tuple(o.outbox_id for o in self.outcomes if o.outbox_id is not None)

    @property
    def delivered(self) -> bool:
        """True when at least one channel accepted the alert in this call."""
        return any(o.sent for o in self.outcomes)

    @property
    def suppressed(self) -> bool:
        """True when no channel was tried (duplicate within the cooldown, or no channel)."""
        return bool(self.outcomes) and all(o.status == "suppressed" for o in self.outcomes)


@dataclass(frozen=True)
class DeliveryReport:
    """One pass over due outbox rows. Ids per outcome."""

    sent: tuple[int, ...] = ()
    retrying: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    deferred: tuple[int, ...] = ()
    errors: dict[int, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def attempted(self) -> int:
        """How many deliveries were tried (sent + failed attempts)."""
        return len(self.sent) + len(self.retrying) + len(self.failed)


@dataclass(frozen=True)
class HealthReport:
    """What ``check_and_notify`` saw and raised."""

    checked_at: datetime
    last_completed_at: datetime | None
    gap_minutes: float | None
    drawdowns: tuple[BookDrawdown, ...] = ()
    alerts: tuple[AlertReport, ...] = ()
    error: str | None = None


def _aware(now: datetime) -> datetime:
    """The guide passes ``datetime.utcnow()`` (naive, UTC): treat naive times as UTC."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


class AlertEngine:
    """Alerts by email, Telegram and any Apprise URL, through a database outbox.

    >>> alerts = AlertEngine("config/alerts.yaml")            # doctest: +SKIP
    >>> alerts.notify_kill_switch("Max daily loss 5% exceeded")  # doctest: +SKIP

    ``config``: a path to the guide's ``alerts.yaml``, an ``AlertsConfig`` (the Hydra ``alerts``
    group), or ``None`` (no channel: alerts are only recorded). ``db``: the trading database
    (default: the SQLite at ``$OTONOM_HOME``, opened on first use). ``clock``: returns the
    current aware UTC time (tests inject one). ``mode``: shown in alert texts (``paper`` …).

    Raises ``ConfigError`` (one line naming file and key) only here, for a bad configuration;
    every other method reports problems in its return value and never raises.
    """

    def __init__(
        self,
        config: str | Path | AlertsConfig | None = None,
        db: Database | None = None,
        clock: Callable[[], datetime] | None = None,
        *,
        mode: str | None = None,
    ) -> None:
        if config is None:
            self.config = AlertsConfig()
            source = "alerts."
        elif isinstance(config, AlertsConfig):
            self.config = config
            source = "alerts."
        else:
            self.config = load_alerts_file(config)
            source = f"{config}: "
        self.channels: list[AlertChannel] = build_channels(self.config, source=source)
        self._by_name = {channel.name: channel for channel in self.channels}
        self._db = db
        self._outbox: AlertOutbox | None = None
        self._clock = clock or utc_now
        self.mode = mode

    # -- the guide's API ------------------------------------------------------------------

    def notify(
        self,
        title: str,
        body: str,
        *,
        event: AlertEvent | str = AlertEvent.MESSAGE,
        severity: Severity | str = Severity.INFO,
        dedupe_key: str | None = None,
        now: datetime | None = None,
    ) -> AlertReport:
        """Send ``title``/``body`` to every channel whose route accepts ``event``/``severity``.

        With ``dedupe_key``, an alert with the same key sent (or pending) on a channel within
        ``dedupe_cooldown_minutes`` is not sent again there.
        """
        try:
            return self._raise_alert(
                AlertEvent(event), Severity(severity), title, body, dedupe_key, now
            )
        except Exception as exc:  # noqa: BLE001 - alerts must never break the caller
            return self._internal_failure("notify", exc, str(event), str(severity), title)

    def notify_broker_error(self, message: str, *, now: datetime | None = None) -> AlertReport:
        """A broker failure (API error, timeout, rejected order). Repeats of the same message
        within the cooldown are not re-sent."""
        return self.notify(
            "Broker error",
            f"The broker reported an error:\n{message}",
            event=AlertEvent.BROKER_ERROR,
            severity=Severity.ERROR,
            dedupe_key=f"broker_error:{_digest(message)}",
            now=now,
        )

    def notify_kill_switch(self, reason: str, *, now: datetime | None = None) -> AlertReport:
        """The kill-switch halted trading. The same reason is sent once per cooldown."""
        return self.notify(
            "KILL-SWITCH: trading halted",
            f"The kill-switch halted trading.\nReason: {reason}\n"
            "New orders are rejected until the guardrails clear or a person resets them; "
            "cancels still pass.",
            event=AlertEvent.KILL_SWITCH,
            severity=Severity.CRITICAL,
            dedupe_key=f"kill_switch:{_digest(reason)}",
            now=now,
        )

    def notify_portfolio_alert(
        self, message: str, *, dedupe_key: str | None = None, now: datetime | None = None
    ) -> AlertReport:
        """A portfolio condition (extreme drawdown …). Repeats within the cooldown are not
        re-sent (``dedupe_key`` defaults to the message)."""
        return self.notify(
            "Portfolio alert",
            message,
            event=AlertEvent.PORTFOLIO,
            severity=Severity.WARNING,
            dedupe_key=dedupe_key or f"portfolio:{_digest(message)}",
            now=now,
        )

    def check_and_notify(self, now: datetime | None = None) -> HealthReport:
        """Alert when no daemon run completed for ``max_gap_minutes`` and when a book's
        drawdown (latest snapshot, from its peak) reaches ``drawdown_alert_pct``.

        A naive ``now`` (the guide's ``datetime.utcnow()``) is taken as UTC. A database that
        never saw a run raises no gap alert (there is nothing to watch yet).
        """
        checked_at = _aware(now) if now is not None else self._now()
        try:
            with self.db.session() as session:
                activity = run_activity(session)
                drawdowns = tuple(latest_drawdowns(session))
        except Exception as exc:  # noqa: BLE001 - a health check must not break the cycle
            message = MASKER.mask(f"{type(exc).__name__}: {exc}")
            log.warning("alert health check could not read the database: %s", message)
            return HealthReport(checked_at, None, None, error=message)
        alerts: list[AlertReport] = []
        gap_limit = timedelta(minutes=self.config.max_gap_minutes)
        gap_minutes: float | None = None
        if activity.last_completed_at is not None:
            gap = checked_at - activity.last_completed_at
            gap_minutes = gap.total_seconds() / 60
            if gap > gap_limit:
                alerts.append(self._gap_alert(activity.last_completed_at, gap_minutes, checked_at))
        elif activity.first_started_at is not None:
            gap = checked_at - activity.first_started_at
            gap_minutes = gap.total_seconds() / 60
            if gap > gap_limit:
                alerts.append(
                    self._gap_alert(
                        None, gap_minutes, checked_at, first_started=activity.first_started_at
                    )
                )
        for dd in drawdowns:
            if dd.drawdown_pct >= Decimal(str(self.config.drawdown_alert_pct)):
                alerts.append(
                    self.notify_portfolio_alert(
                        f"Drawdown > {self.config.drawdown_alert_pct:g}%: the {dd.book} book is "
                        f"{dd.drawdown_pct:.2f}% below its peak (equity {dd.equity:.2f}, "
                        f"peak {dd.peak_equity:.2f}, snapshot {dd.taken_at:%Y-%m-%d %H:%M} UTC).",
                        dedupe_key=f"drawdown:{dd.book}",
                        now=checked_at,
                    )
                )
        return HealthReport(
            checked_at, activity.last_completed_at, gap_minutes, drawdowns, tuple(alerts)
        )

    # -- outbox ---------------------------------------------------------------------------

    def deliver_pending(self, now: datetime | None = None) -> DeliveryReport:
        """Retry due outbox rows (oldest first, at most ``max_deliveries_per_call``)."""
        try:
            return self._deliver(_aware(now) if now is not None else self._now())
        except Exception as exc:  # noqa: BLE001 - retrying alerts must not break the cycle
            message = MASKER.mask(f"{type(exc).__name__}: {exc}")
            log.warning("alert outbox delivery failed: %s", message)
            return DeliveryReport(error=message)

    def send_test(self, now: datetime | None = None) -> AlertReport:
        """The guide's "Test alert notifications": one message to every configured channel,
        whatever the routes say, tried once (a failed test is not retried later)."""
        when = _aware(now) if now is not None else self._now()
        title = "Test alert"
        body = (
            f"This is a test message from otonom-trader ({when:%Y-%m-%d %H:%M:%S} UTC). "
            "If you read this, the channel works."
        )
        try:
            return self._raise_alert(
                AlertEvent.TEST,
                Severity.INFO,
                title,
                body,
                None,
                when,
                channels=self.channels,
                max_attempts=1,
            )
        except Exception as exc:  # noqa: BLE001
            return self._internal_failure("send_test", exc, "test", "info", title)

    @property
    def db(self) -> Database:
        """The database of the outbox (opened on first use)."""
        if self._db is None:
            self._db = Database(None)
        return self._db

    @property
    def outbox(self) -> AlertOutbox:
        """The outbox table."""
        if self._outbox is None:
            self._outbox = AlertOutbox(self.db)
        return self._outbox

    # -- internals ------------------------------------------------------------------------

    def _now(self) -> datetime:
        return _aware(self._clock())

    def _gap_alert(
        self,
        last_completed: datetime | None,
        gap_minutes: float,
        now: datetime,
        first_started: datetime | None = None,
    ) -> AlertReport:
        limit = self.config.max_gap_minutes
        if last_completed is not None:
            body = (
                f"The daemon has not completed a run for {gap_minutes:.0f} minutes "
                f"(limit {limit:g}). Last completed run finished at "
                f"{last_completed:%Y-%m-%d %H:%M:%S} UTC."
            )
            key = f"daemon_gap:{last_completed.isoformat()}"
        else:
            assert first_started is not None
            body = (
                f"No daemon run has completed since the first run started at "
                f"{first_started:%Y-%m-%d %H:%M:%S} UTC ({gap_minutes:.0f} minutes, "
                f"limit {limit:g})."
            )
            key = f"daemon_gap:never:{first_started.isoformat()}"
        return self.notify(
            f"Daemon stalled: no completed run for {gap_minutes:.0f} min",
            body,
            event=AlertEvent.DAEMON_GAP,
            severity=Severity.ERROR,
            dedupe_key=key,
            now=now,
        )

    def _targets(self, event: AlertEvent, severity: Severity) -> list[AlertChannel]:
        routes = self.config.routes
        return [
            channel
            for channel in self.channels
            if channel.name not in routes or routes[channel.name].accepts(event, severity)
        ]

    def _compose_body(self, body: str, event: AlertEvent, severity: Severity, now: datetime) -> str:
        lines = [body.rstrip(), "", f"Event: {event.value} · severity: {severity.value}"]
        if self.mode:
            lines.append(f"Mode: {self.mode}")
        lines.append(f"Time: {now:%Y-%m-%d %H:%M:%S} UTC")
        return "\n".join(lines)

    def _raise_alert(
        self,
        event: AlertEvent,
        severity: Severity,
        title: str,
        body: str,
        dedupe_key: str | None,
        now: datetime | None,
        *,
        channels: list[AlertChannel] | None = None,
        max_attempts: int | None = None,
    ) -> AlertReport:
        when = _aware(now) if now is not None else self._now()
        full_title = MASKER.mask(f"{TITLE_PREFIX} {title}")
        full_body = MASKER.mask(self._compose_body(body, event, severity, when))
        targets = self._targets(event, severity) if channels is None else channels
        no_channel_note = (
            "no channel configured" if not self.channels else "no route accepts this alert"
        )
        try:
            enqueued = self.outbox.enqueue(
                event=event.value,
                severity=severity.value,
                title=full_title,
                body=full_body,
                dedupe_key=dedupe_key,
                channels=[c.name for c in targets],
                now=when,
                cooldown=timedelta(minutes=self.config.dedupe_cooldown_minutes),
                max_attempts=max_attempts or self.config.max_attempts,
                no_channel_note=no_channel_note,
            )
        except Exception as exc:  # noqa: BLE001 - no database: still tell someone
            return self._send_unrecorded(event, severity, full_title, full_body, targets, exc)
        fresh_ids = [
            e.outbox_id for e in enqueued if not e.duplicate and e.channel in self._by_name
        ]
        delivery = self._deliver(when, ids=fresh_ids) if fresh_ids else DeliveryReport()
        outcomes = tuple(self._outcome(e, delivery, no_channel_note) for e in enqueued)
        if not targets:
            log.info("alert recorded, not sent (%s): %s", no_channel_note, full_title)
        return AlertReport(event.value, severity.value, full_title, outcomes)

    @staticmethod
    def _outcome(e: Enqueued, delivery: DeliveryReport, no_channel_note: str) -> ChannelOutcome:
        if e.duplicate:
            return ChannelOutcome(
                e.channel,
                e.outbox_id,
                "suppressed",
                note=f"duplicate of outbox row {e.outbox_id} within cooldown",
            )
        if e.outbox_id in delivery.sent:
            return ChannelOutcome(e.channel, e.outbox_id, "sent")
        if e.outbox_id in delivery.failed:
            return ChannelOutcome(
                e.channel, e.outbox_id, "failed", error=delivery.errors.get(e.outbox_id)
            )
        if e.outbox_id in delivery.retrying:
            return ChannelOutcome(
                e.channel,
                e.outbox_id,
                "pending",
                error=delivery.errors.get(e.outbox_id),
                note="will retry",
            )
        if e.outbox_id in delivery.deferred:
            return ChannelOutcome(
                e.channel,
                e.outbox_id,
                "pending",
                note="deferred (channel backing off or rate limited)",
            )
        if e.channel == "none":
            return ChannelOutcome(e.channel, e.outbox_id, "suppressed", note=no_channel_note)
        return ChannelOutcome(e.channel, e.outbox_id, "pending")

    def _deliver(self, now: datetime, ids: list[int] | None = None) -> DeliveryReport:
        """Try due rows, one channel at a time, stopping a channel at its first failure."""
        outbox = self.outbox
        rows = outbox.due(now, self.config.max_deliveries_per_call, ids)
        # A channel whose older row failed and is backing off is not tried again before that
        # row's retry time (the older row goes first, keeping the order): a dead channel costs
        # one timeout per backoff period instead of one per alert or per cycle.
        blocked = self._channels_backing_off(now)
        sent: list[int] = []
        retrying: list[int] = []
        failed: list[int] = []
        deferred: list[int] = []
        errors: dict[int, str] = {}
        sent_in_window: dict[str, list[datetime]] = {}
        for row in rows:
            channel = self._by_name.get(row.channel)
            if channel is None:
                outbox.give_up(row.id, f"channel {row.channel!r} is no longer configured")
                failed.append(row.id)
                continue
            if channel.name in blocked:
                deferred.append(row.id)
                continue
            window = sent_in_window.setdefault(
                channel.name, outbox.sent_since(channel.name, now - RATE_WINDOW)
            )
            if len(window) >= self.config.rate_limit_per_channel_per_hour:
                until = window[0] + RATE_WINDOW
                outbox.defer(row.id, until, f"rate limited until {until:%H:%M:%S} UTC")
                deferred.append(row.id)
                continue
            if not outbox.claim(row, now):
                continue  # another process is delivering it
            result = self._send(channel, row)
            if result.ok:
                outbox.mark_sent(row.id, now)
                window.append(now)
                sent.append(row.id)
                continue
            attempts = row.attempts + 1
            error = MASKER.mask(result.error or "delivery failed")[:2000]
            errors[row.id] = error
            blocked.add(channel.name)
            if attempts >= row.max_attempts:
                outbox.mark_attempt_failed(row.id, error, None)
                failed.append(row.id)
                log.error(
                    "alert %d to %s failed for good after %d attempt(s): %s",
                    row.id,
                    channel.masked_url,
                    attempts,
                    error,
                )
            else:
                retry_at = now + self._backoff(attempts)
                outbox.mark_attempt_failed(row.id, error, retry_at)
                retrying.append(row.id)
                log.warning(
                    "alert %d to %s failed (attempt %d/%d), retry after %s: %s",
                    row.id,
                    channel.masked_url,
                    attempts,
                    row.max_attempts,
                    f"{retry_at:%H:%M:%S} UTC",
                    error,
                )
        return DeliveryReport(tuple(sent), tuple(retrying), tuple(failed), tuple(deferred), errors)

    def _channels_backing_off(self, now: datetime) -> set[str]:
        """Channels with an older row that failed and waits for its retry time."""
        with self.db.session() as session:
            names = session.scalars(
                select(AlertOutboxRecord.channel)
                .where(
                    AlertOutboxRecord.status == "pending",
                    AlertOutboxRecord.attempts > 0,
                    AlertOutboxRecord.next_attempt_at > now,
                )
                .distinct()
            )
            return set(names)

    def _backoff(self, attempts: int) -> timedelta:
        base = timedelta(minutes=self.config.retry_backoff_minutes)
        return min(base * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)

    @staticmethod
    def _send(channel: AlertChannel, row: OutboxRow) -> SendResult:
        return channel.send(row.title, row.body, _NOTIFY_TYPES[Severity(row.severity)])

    def _send_unrecorded(
        self,
        event: AlertEvent,
        severity: Severity,
        title: str,
        body: str,
        targets: list[AlertChannel],
        exc: Exception,
    ) -> AlertReport:
        reason = MASKER.mask(f"outbox unavailable ({type(exc).__name__}: {exc})")[:500]
        log.warning("alert could not be recorded, sending directly: %s", reason)
        outcomes = []
        for channel in targets:
            result = channel.send(title, body, _NOTIFY_TYPES[severity])
            outcomes.append(
                ChannelOutcome(
                    channel.name,
                    None,
                    "sent" if result.ok else "unrecorded",
                    error=result.error,
                    note=reason,
                )
            )
        return AlertReport(event.value, severity.value, title, tuple(outcomes), error=reason)

    @staticmethod
    def _internal_failure(
        where: str, exc: Exception, event: str, severity: str, title: str
    ) -> AlertReport:
        message = MASKER.mask(f"{type(exc).__name__}: {exc}")[:500]
        log.error("alert engine %s failed: %s", where, message)
        return AlertReport(event, severity, MASKER.mask(title), error=message)
