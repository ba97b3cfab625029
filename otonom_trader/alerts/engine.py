"""``AlertEngine``: the guide's alert API over an outbox that loses nothing.

::

    notify_* / check_and_notify ──► route (severity, event) ──► dedupe (key, cooldown)
        ──► outbox rows (one per channel, committed) ──► deliver now, per channel
                                                            │ failed / rate-limited
    deliver_pending(now) on later cycles ◄──────────────────┘ (backoff, up to max_attempts)

    KillSwitch transition ──► record_transition(session, t, id): rows in the switch's own
        transaction, one per channel, keyed by the transition's id (never deduplicated by text)

In the daemon (``deliver_immediately=False``) nothing is sent on the trading path: a cycle only
writes rows (guard_check: transitions; execute: broker errors), its health_check schedules the
health checks (:meth:`AlertEngine.check_in_background`), and once the run is recorded it kicks
:meth:`AlertEngine.deliver_in_background`: a background thread
(:class:`~otonom_trader.alerts.sender.OutboxSender`) runs the health checks (their rows first),
then sends, with the channels' bounded timeouts. The watchdog and ``otonom-trader alerts
deliver`` send the same rows, in the same order.

Each channel delivers its rows strictly in row order: a row is sent only when every older row of
its channel is done (sent, failed for good, or suppressed), so transitions arrive in the order
they happened. A rate-limited channel is never skipped over: with one message left in its window,
every kill-switch transition waiting on it goes out in that one message (nothing dropped).

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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from otonom_trader.alerts.channels import MASKER, AlertChannel, build_channels
from otonom_trader.alerts.config import AlertEvent, AlertsConfig, Severity
from otonom_trader.alerts.health import BookDrawdown, latest_drawdowns, run_activity
from otonom_trader.alerts.loading import load_alerts_file
from otonom_trader.alerts.outbox import AlertOutbox, Enqueued, OutboxRow
from otonom_trader.alerts.sender import OutboxSender
from otonom_trader.alerts.transitions import (
    ROUTING_SEVERITY,
    BatchedTransition,
    batch_message,
    later_pending,
    live_state_note,
    live_states,
    transition_message,
)
from otonom_trader.fleet.books import bot_of_book
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import utc_now

if TYPE_CHECKING:
    from apprise import NotifyType
    from sqlalchemy.orm import Session

    from otonom_trader.guardrails.kill_switch import KillSwitchTransition

log = logging.getLogger("otonom_trader.alerts")

TITLE_PREFIX = "[otonom-trader]"
MAX_BACKOFF = timedelta(minutes=60)
RATE_WINDOW = timedelta(hours=1)

_NOTIFY_TYPE_NAMES = {
    Severity.INFO: "INFO",
    Severity.WARNING: "WARNING",
    Severity.ERROR: "FAILURE",
    Severity.CRITICAL: "FAILURE",
}


def _notify_type(severity: Severity) -> NotifyType:
    """Apprise's message type for ``severity`` (Apprise is loaded only when a message is sent)."""
    from apprise import NotifyType

    return NotifyType[_NOTIFY_TYPE_NAMES[severity]]


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
    ``deliver_immediately``: the guide's API sends an alert as it is raised (default); the
    daemon passes ``False`` so raising an alert only writes its rows, and sending happens in
    :meth:`deliver_pending` or :meth:`deliver_in_background`.

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
        deliver_immediately: bool = True,
        bot: str | None = None,
        account_id: str | None = None,
    ) -> None:
        #: The named bot of a fleet and the account it trades: named in every alert's title and
        #: body, written on its outbox rows, and part of its dedupe key (two bots with the same
        #: trouble are two alerts). ``None``: the unnamed bot, texts as before.
        self.bot = bot or None
        self.account_id = account_id or None
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
        self.deliver_immediately = deliver_immediately
        self._sender: OutboxSender | None = None
        self._checks: list[tuple[datetime, str]] = []  # health checks for the sender's next pass
        self._checks_lock = threading.Lock()

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
        """The kill-switch halted trading (the guide's call). Every call is announced: a halt
        is never suppressed because an earlier one had the same wording. (The daemon's own
        switch announces through :meth:`record_transition`, keyed by each transition's id.)"""
        return self.notify(
            "KILL-SWITCH: trading halted",
            f"The kill-switch halted trading.\nReason: {reason}\n"
            "New orders are rejected until the guardrails clear or a person resets them; "
            "cancels still pass.",
            event=AlertEvent.KILL_SWITCH,
            severity=Severity.CRITICAL,
            now=now,
        )

    def record_transition(
        self, session: Session, transition: KillSwitchTransition, event_id: int
    ) -> None:
        """``KillSwitch(on_transition_tx=engine.record_transition)``: write the transition's
        outbox rows (one per channel that receives kill-switch alerts) in the switch's own
        transaction. Nothing is sent here. Raises only what the database raises, and then the
        state change rolls back with it (a transition is never committed unannounced)."""
        message = transition_message(transition, event_id)
        targets = self._targets(AlertEvent.KILL_SWITCH, ROUTING_SEVERITY)
        # The switch's own bot: a bot's book names it; the account's switch is no one bot's.
        bot = bot_of_book(transition.book)
        account = self.account_id or transition.account_id
        every_bot = transition.every_bot
        body = self._compose_body(
            message.body,
            AlertEvent.KILL_SWITCH,
            message.severity,
            _aware(transition.at),
            bot=bot,
            account=account,
            every_bot=every_bot,
        )
        AlertOutbox.add_transition(
            session,
            transition_id=event_id,
            book=transition.book,
            state_after=message.state_after,
            severity=message.severity.value,
            title=MASKER.mask(
                f"{TITLE_PREFIX}{self._named(bot, account, every_bot)} {message.title}"
            ),
            body=MASKER.mask(body),
            dedupe_key=message.dedupe_key,
            channels=[c.name for c in targets],
            now=_aware(transition.at),
            max_attempts=self.config.max_attempts,
            no_channel_note=self._no_channel_note(),
            owner=(bot, account),
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

    def check_and_notify(
        self, now: datetime | None = None, *, exclude_run: str | None = None
    ) -> HealthReport:
        """Alert when no daemon run completed for ``max_gap_minutes`` and when a book's
        drawdown (latest snapshot, from its peak) reaches ``drawdown_alert_pct``.

        A naive ``now`` (the guide's ``datetime.utcnow()``) is taken as UTC. A database that
        never saw a run raises no gap alert (there is nothing to watch yet). ``exclude_run``:
        the run doing the check, whose own completion does not end the gap it measures.
        """
        checked_at = _aware(now) if now is not None else self._now()
        try:
            with self.db.session() as session:
                activity = run_activity(session, exclude_run)
                drawdowns = tuple(latest_drawdowns(session))
        except Exception as exc:  # noqa: BLE001 - a health check must not break the cycle
            message = MASKER.mask(f"{type(exc).__name__}: {exc}")
            log.warning("alert health check could not read the database: %s", message)
            return HealthReport(checked_at, None, None, error=message)
        alerts: list[AlertReport] = []
        gap_limit = timedelta(minutes=self.config.gap_limit_minutes)
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

    def check_in_background(self, now: datetime, run_id: str) -> None:
        """The daemon's health_check: :meth:`check_and_notify` at ``now`` for run ``run_id``,
        done by the background sender's next pass (before it delivers), so its reads cost the
        cycle nothing. Nothing runs until :meth:`deliver_in_background` kicks the sender."""
        with self._checks_lock:
            self._checks.append((_aware(now), run_id))

    def _background_pass(self) -> DeliveryReport:
        with self._checks_lock:
            checks, self._checks = self._checks, []
        for checked_at, run_id in checks:
            self.check_and_notify(checked_at, exclude_run=run_id)
        return self.deliver_pending()

    def deliver_in_background(self, now: datetime | None = None) -> None:
        """Kick the background sender and return at once (the daemon, once a run is recorded).
        The thread delivers with this engine's clock; ``now`` is accepted for symmetry with
        :meth:`deliver_pending` and ignored."""
        del now
        try:
            if self._sender is None:
                self._sender = OutboxSender(
                    self._background_pass, exit_timeout=self.config.timeout_seconds
                )
            self._sender.kick()
        except Exception as exc:  # noqa: BLE001 - a thread that cannot start must not break a cycle
            log.warning("background alert delivery could not start: %s", exc)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the background sender served every kick so far (True when idle)."""
        return True if self._sender is None else self._sender.wait_idle(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop the background sender, letting a running pass finish for at most ``timeout``
        seconds (default: ``timeout_seconds`` of the config). Rows not delivered stay pending
        for the next process. True when nothing was left running."""
        if self._sender is None:
            return True
        wait = self.config.timeout_seconds if timeout is None else timeout
        return self._sender.close(wait)

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

    def clock_now(self) -> datetime:
        """The engine's current time (aware UTC)."""
        return self._now()

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
        limit = self.config.gap_limit_minutes
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

    def _no_channel_note(self) -> str:
        return "no channel configured" if not self.channels else "no route accepts this alert"

    def _targets(self, event: AlertEvent, severity: Severity) -> list[AlertChannel]:
        routes = self.config.routes
        return [
            channel
            for channel in self.channels
            if channel.name not in routes or routes[channel.name].accepts(event, severity)
        ]

    def _named(self, bot: str | None, account: str | None = None, every_bot: bool = False) -> str:
        """`` [bot a @ account]`` (or ``[all bots @ account]``) for a title when a bot is named
        (empty otherwise)."""
        if not (self.bot or bot or every_bot):
            return ""
        who = f"bot {bot}" if bot else "all bots"
        account = account or self.account_id
        return f" [{who} @ {account}]" if account else f" [{who}]"

    def _compose_body(
        self,
        body: str,
        event: AlertEvent,
        severity: Severity,
        now: datetime,
        *,
        bot: str | None = None,
        account: str | None = None,
        every_bot: bool = False,
    ) -> str:
        lines = [body.rstrip(), "", f"Event: {event.value} · severity: {severity.value}"]
        if self.bot or bot or every_bot:
            who = f"Bot: {bot}" if bot else "Bots: every bot on the account"
            lines.append(f"{who} · account: {account or self.account_id or 'unknown'}")
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
        full_title = MASKER.mask(f"{TITLE_PREFIX}{self._named(self.bot)} {title}")
        full_body = MASKER.mask(self._compose_body(body, event, severity, when, bot=self.bot))
        if self.bot and dedupe_key:
            dedupe_key = f"{self.bot}:{dedupe_key}"
        targets = self._targets(event, severity) if channels is None else channels
        no_channel_note = self._no_channel_note()
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
                owner=(self.bot, self.account_id),
            )
        except Exception as exc:  # noqa: BLE001 - no database: still tell someone
            return self._send_unrecorded(event, severity, full_title, full_body, targets, exc)
        fresh_ids = [
            e.outbox_id for e in enqueued if not e.duplicate and e.channel in self._by_name
        ]
        send_now = fresh_ids and (self.deliver_immediately or channels is not None)
        # Every due row, not only the new ones: an older row of the same channel goes first
        # (order), and the new one is not left behind it until some later pass.
        delivery = self._deliver(when) if send_now else DeliveryReport()
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
        """Try due rows, each channel strictly in row order, stopping a channel at its first
        failure or at an older row that is not due (backing off, rate limited, being sent)."""
        outbox = self.outbox
        rows = outbox.due(now, self.config.max_deliveries_per_call, ids)
        queues = outbox.pending_by_channel() if rows else {}
        stopped: set[str] = set()  # channels done for this pass
        sent: list[int] = []
        retrying: list[int] = []
        failed: list[int] = []
        deferred: list[int] = []
        errors: dict[int, str] = {}
        sent_in_window: dict[str, list[datetime]] = {}
        for row in rows:
            queue = queues.get(row.channel, [])
            if row.id not in queue:
                continue  # delivered (batched) earlier in this pass, or no longer pending
            channel = self._by_name.get(row.channel)
            if channel is None:
                outbox.give_up(row.id, f"channel {row.channel!r} is no longer configured")
                queue.remove(row.id)
                failed.append(row.id)
                continue
            if channel.name in stopped or queue[0] != row.id:
                # An older row of this channel waits: order first (a dead channel costs one
                # timeout per backoff period, not one per alert).
                stopped.add(channel.name)
                deferred.append(row.id)
                continue
            window = sent_in_window.setdefault(
                channel.name, outbox.sent_since(channel.name, now - RATE_WINDOW)
            )
            budget = self.config.rate_limit_per_channel_per_hour - len(window)
            if budget <= 0:
                until = window[0] + RATE_WINDOW
                outbox.defer(row.id, until, f"rate limited until {until:%H:%M:%S} UTC")
                stopped.add(channel.name)
                deferred.append(row.id)
                continue
            batch = [row]
            if row.transition_id is not None and budget == 1:
                batch = self._transition_run(queue)
            if not (outbox.claim_many(batch, now) if len(batch) > 1 else outbox.claim(row, now)):
                stopped.add(channel.name)  # another process is delivering it
                continue
            title, body, stored = self._message(batch, now)
            result = channel.send(title, body, _notify_type(self._severity(batch)))
            if result.ok:
                outbox.mark_sent(row.id, now, body=stored)
                outbox.mark_batched([b.id for b in batch[1:]], row.id, now)
                for done in batch:
                    queue.remove(done.id)
                    sent.append(done.id)
                window.append(now)
                continue
            stopped.add(channel.name)
            error = MASKER.mask(result.error or "delivery failed")[:2000]
            for attempt_row in batch:
                self._record_failure(attempt_row, channel, error, now, retrying, failed, errors)
                if attempt_row.id in failed:
                    queue.remove(attempt_row.id)
        return DeliveryReport(tuple(sent), tuple(retrying), tuple(failed), tuple(deferred), errors)

    def _record_failure(
        self,
        row: OutboxRow,
        channel: AlertChannel,
        error: str,
        now: datetime,
        retrying: list[int],
        failed: list[int],
        errors: dict[int, str],
    ) -> None:
        attempts = row.attempts + 1
        errors[row.id] = error
        outbox = self.outbox
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
            return
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

    def _transition_run(self, queue: list[int]) -> list[OutboxRow]:
        """The channel's head row and every kill-switch transition row right behind it."""
        run: list[OutboxRow] = []
        for candidate in self.outbox.rows(queue[: self.config.max_deliveries_per_call * 5]):
            if candidate.transition_id is None or candidate.status != "pending":
                break
            run.append(candidate)
        return run

    def _message(self, batch: list[OutboxRow], now: datetime) -> tuple[str, str, str | None]:
        """Title and body to send, and the body to store when it differs from the row's.

        A transition sent late says the switch's state at sending time; several transitions
        (rate limit) become one message listing each, then the state now."""
        head = batch[0]
        if head.transition_id is None or head.book is None:
            return head.title, head.body, None
        with self.db.session() as session:
            if len(batch) == 1:
                later = later_pending(session, head.channel, head.book, head.id)
                note = live_state_note(session, head.book, head.state_after or "", later, now)
                if not note:
                    return head.title, head.body, None
                body = f"{head.body}\n\n{note}"
                return head.title, body, body
            books = sorted({r.book for r in batch if r.book})
            states = live_states(session, books)
        title, body = batch_message(
            [
                BatchedTransition(
                    r.id,
                    r.title.removeprefix(f"{TITLE_PREFIX} "),
                    r.body,
                    r.book,
                    r.state_after,
                    r.created_at,
                )
                for r in batch
            ],
            states,
        )
        title = MASKER.mask(f"{TITLE_PREFIX} {title}")
        body = MASKER.mask(f"{body}\n\nSent {now:%Y-%m-%d %H:%M:%S} UTC.")
        return title, body, body

    @staticmethod
    def _severity(batch: list[OutboxRow]) -> Severity:
        return max((Severity(r.severity) for r in batch), key=lambda s: s.rank)

    def _backoff(self, attempts: int) -> timedelta:
        base = timedelta(minutes=self.config.retry_backoff_minutes)
        return min(base * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)

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
            result = channel.send(title, body, _notify_type(severity))
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
