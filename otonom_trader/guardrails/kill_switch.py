"""``KillSwitch``: the persisted state machine that halts trading when a guardrail is breached.

::

              evaluate(): a guardrail breached            trip(reason) by a person
    CLEAR ───────────────────────────────────────▶ ACTIVE ◀──────────────────────── CLEAR
      ▲                                              │
      └──────────────────────────────────────────────┘
        evaluate(): every automatic hold ended and no manual trip   |   reset(reason) by a person

The state of each book lives in ``kill_switch_state`` (one row) and every trigger and reset is a
``kill_switch_events`` row with its reason, the numbers and the actor, so a restarted process
reads the halt back instead of forgetting it. Each guardrail that breaches places a *hold* in
the state: a daily-loss hold lasts until the next 00:00 UTC, a consecutive-loss hold for the
configured cooldown (default: until the next 00:00 UTC), a drawdown hold exactly while the
drawdown is at or over its limit. The switch is active while any hold or a manual trip exists.
A manual trip lasts until a manual reset; a manual reset ends every hold (today's daily loss and
the losing streak are forgiven; a drawdown still over its limit trips again at the next
evaluation, because the money really is gone).

Transitions are compare-and-set on the row's ``version``: when two processes evaluate at once,
one wins and announces; the other re-reads. ``on_transition`` is called once per transition,
after the commit; if it raises, the error is logged and trading goes on. ``on_transition_tx`` is
called once per transition *inside* the state change's transaction, right after the event row is
flushed, with ``(session, transition, event_id)``: what it writes (an alert outbox row) commits
or rolls back together with the state change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from otonom_trader.broker.types import Number, to_decimal
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.protections import GuardContext, Guardrail, build_guardrails
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.guardrail_models import (
    KillSwitchEventRecord,
    KillSwitchStateRecord,
)

log = logging.getLogger(__name__)

_ATTEMPTS = 5
_MAX_BOOK = 32
#: The switch of every book at once: ``kill-switch trip`` with no scope trips it (and every
#: existing book); each book's switch takes the trip over at its next evaluation, so a book
#: first used after the emergency stop is halted too.
ALL_BOOKS = "*"
_MAX_ACTOR = 64


def _frozen(numbers: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(numbers))


@dataclass(frozen=True)
class GuardDecision:
    """The outcome of one evaluation: halted or not, why, and the numbers behind it.

    ``guards`` names the guardrails holding the halt (``manual`` for a person's trip).
    """

    active: bool
    reason: str | None
    numbers: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))
    guards: tuple[str, ...] = ()


@dataclass(frozen=True)
class KillSwitchTransition:
    """A trigger or a reset, as announced to ``on_transition`` (and stored as an event)."""

    kind: Literal["trigger", "reset"]
    book: str
    reason: str
    numbers: Mapping[str, Any]
    at: datetime
    actor: str
    manual: bool
    #: The account of the switch's book, when known (alerts name it).
    account_id: str | None = None
    #: True for the switch of an account that named bots share: it halts every one of them.
    every_bot: bool = False

    @property
    def message(self) -> str:
        """One line for an alert: ``KILL-SWITCH TRIGGERED [broker]: daily loss …``."""
        verb = "TRIGGERED" if self.kind == "trigger" else "RESET"
        return f"KILL-SWITCH {verb} [{self.book}]: {self.reason}"


@dataclass(frozen=True)
class KillSwitchEvent:
    """One row of the audit trail."""

    id: int
    book: str
    kind: str
    reason: str
    numbers: Mapping[str, Any]
    actor: str
    manual: bool
    at: datetime


@dataclass(frozen=True)
class KillSwitchStatus:
    """The persisted state of one book's switch, for status displays."""

    book: str
    active: bool
    reason: str | None
    tripped_at: datetime | None
    manual: bool
    numbers: Mapping[str, Any]
    holds: Mapping[str, Any]
    updated_at: datetime | None


def _aware_utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware (UTC), got naive {now}")
    return now.astimezone(UTC)


def _loads(text: str | None) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class KillSwitch:
    """The kill-switch of one book, persisted in ``db``.

    ``evaluate(equity, now)`` runs every guardrail and moves the state machine; call it in each
    cycle's guard_check and before every order (``GuardedBroker`` does the latter).
    ``trip``/``reset`` are the manual controls, ``status``/``history`` the read side.
    """

    def __init__(
        self,
        db: Database,
        cfg: GuardrailConfig,
        book: str,
        *,
        on_transition: Callable[[KillSwitchTransition], None] | None = None,
        on_transition_tx: Callable[[Session, KillSwitchTransition, int], None] | None = None,
        guardrails: list[Guardrail] | None = None,
        bot: str | None = None,
        account_id: str | None = None,
        every_bot: bool = False,
    ) -> None:
        if not book or len(book) > _MAX_BOOK:
            raise ValueError(f"book must be 1..{_MAX_BOOK} characters, got {book!r}")
        self.db = db
        self.cfg = cfg
        self.book = book
        self.on_transition = on_transition
        self.on_transition_tx = on_transition_tx
        # ``guardrails`` replaces the profile ``cfg`` names (the account level's own limits).
        self.guardrails: list[Guardrail] = (
            build_guardrails(cfg) if guardrails is None else list(guardrails)
        )
        #: Who the switch belongs to, written on its state and event rows (the named bot, or
        #: ``None`` for an account's or the unnamed bot's switch; the account it trades).
        self.bot = bot
        self.account_id = account_id
        #: The switch of an account that named bots share (its transitions halt all of them).
        self.every_bot = every_bot
        self._by_name = {g.name: g for g in self.guardrails}

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, equity: Number, now: datetime) -> GuardDecision:
        """Run the guardrails on ``equity`` (the executing book's, marked to market) at ``now``
        and persist any change. Returns whether trading is halted and why."""
        equity = to_decimal(equity, name="equity")
        now = _aware_utc(now)
        for attempt in range(_ATTEMPTS):
            try:
                decision, transitions = self._evaluate_once(equity, now)
            except (StaleDataError, IntegrityError):
                # Another process moved the state between our read and our write: re-read.
                log.debug(
                    "kill-switch state of %s changed concurrently (attempt %d)",
                    self.book,
                    attempt + 1,
                )
                continue
            self._announce(transitions)
            return decision
        raise RuntimeError(f"kill-switch state of book {self.book!r} kept changing; gave up")

    def _evaluate_once(
        self, equity: Decimal, now: datetime
    ) -> tuple[GuardDecision, list[KillSwitchTransition]]:
        with self.db.session() as session:
            row = self._load(session)
            inherited = self._inherit_global_trip(session, row.record)
            holds = _loads(row.record.locks_json)
            cursors = _loads(row.record.cursors_json)
            before = (_dumps(holds), _dumps(cursors))
            ctx = GuardContext(session, self.book, equity, now, cursors)
            released: list[str] = []
            if self.guardrails:
                released = self._expire_holds(ctx, holds, now)
                for guard in self.guardrails:
                    verdict = guard.check(ctx)
                    cursors.update(verdict.cursor_updates)
                    hold = holds.get(guard.name)
                    if verdict.breached and hold is None:
                        until = verdict.hold_until.isoformat() if verdict.hold_until else None
                        holds[guard.name] = {
                            "until": until,
                            "reason": verdict.reason,
                            "numbers": verdict.numbers,
                            "since": now.isoformat(),
                        }
                    elif not verdict.breached and hold is not None and hold.get("until") is None:
                        del holds[guard.name]  # a hold "while breached" ends with the breach
                        released.append(guard.name)
                active_holds = holds
            else:
                active_holds = {}  # guardrails off: only a person's trip halts
            cursors = {k: v for k, v in cursors.items() if v is not None}
            transitions: list[KillSwitchTransition] = []
            should_be_active = bool(row.record.manual) or bool(active_holds)
            changed = (_dumps(holds), _dumps(cursors)) != before
            if changed or row.new or bool(row.record.active) != should_be_active:
                row.record.locks_json = _dumps(holds)
                row.record.cursors_json = _dumps(cursors)
                change = self._apply(row.record, active_holds, now, released=released)
                if change is not None:
                    kind, reason, numbers = change
                    # Taking over the all-books trip is part of the emergency stop that was
                    # announced when it was made: recorded here, not announced again.
                    transitions.append(
                        self._event(
                            session,
                            kind,
                            reason,
                            numbers,
                            now,
                            "guardrails",
                            False,
                            transition=not (inherited and kind == "trigger"),
                        )
                    )
                session.flush()  # the version check: StaleDataError if another process won
            decision = self._decision(row.record, active_holds)
        return decision, transitions

    def _inherit_global_trip(self, session: Session, record: KillSwitchStateRecord) -> bool:
        """Take over an all-books manual trip this book has not seen yet (see ``ALL_BOOKS``);
        True when it did."""
        if self.book == ALL_BOOKS or record.manual:
            return False
        everything = session.get(KillSwitchStateRecord, ALL_BOOKS)
        if everything is None or not everything.manual:
            return False
        reason = _loads(everything.numbers_json).get("manual_reason") or "emergency stop"
        numbers = _loads(record.numbers_json)
        numbers["manual_reason"] = f"all books: {reason}"
        record.manual = True
        record.numbers_json = _dumps(numbers)
        return True

    def _expire_holds(self, ctx: GuardContext, holds: dict[str, Any], now: datetime) -> list[str]:
        released = []
        for name in list(holds):
            until = holds[name].get("until")
            if until is not None and datetime.fromisoformat(until) <= now:
                guard = self._by_name.get(name)
                if guard is not None:
                    ctx.cursors.update(guard.release(ctx, manual=False))
                del holds[name]
                released.append(name)
        return released

    def _apply(
        self,
        record: KillSwitchStateRecord,
        holds: Mapping[str, Any],
        now: datetime,
        *,
        released: list[str],
    ) -> tuple[Literal["trigger", "reset"], str, dict[str, Any]] | None:
        """Set active/reason/numbers from the holds and the manual flag. Returns the transition
        this makes (kind, reason, numbers), or ``None`` when active-ness did not change."""
        was_active = bool(record.active)
        manual_reason = _loads(record.numbers_json).get("manual_reason") if record.manual else None
        reasons = [f"manual: {manual_reason}"] if record.manual else []
        reasons += [str(h["reason"]) for _, h in sorted(holds.items())]
        numbers: dict[str, Any] = {name: h["numbers"] for name, h in sorted(holds.items())}
        if record.manual:
            numbers["manual_reason"] = manual_reason
        now_active = bool(reasons)
        record.active = now_active
        record.updated_at = now
        if now_active:
            record.reason = "; ".join(reasons)
            record.numbers_json = _dumps(numbers)
            if not was_active:
                record.tripped_at = now
                return "trigger", record.reason, numbers
            return None
        record.reason = None
        record.tripped_at = None
        record.numbers_json = "{}"
        if was_active:
            cleared = ", ".join(released) or "guardrails"
            return "reset", f"{cleared} cleared; trading resumes", {"released": released}
        return None

    # ------------------------------------------------------------------ manual controls

    def trip(self, reason: str, now: datetime, actor: str) -> KillSwitchTransition | None:
        """Halt the book by hand. It stays halted until ``reset``; returns the transition, or
        ``None`` when it was already halted (the trip is still recorded in the audit trail)."""
        return self._manual_change(reason, now, actor, self._trip_row, announce_if_active=False)

    def reset(self, reason: str, now: datetime, actor: str) -> KillSwitchTransition | None:
        """Clear the halt by hand: the manual trip and every hold end (see the module doc).
        Returns the transition, or ``None`` when nothing was halted (still recorded)."""
        return self._manual_change(reason, now, actor, self._reset_row, announce_if_active=True)

    def _manual_change(
        self,
        reason: str,
        now: datetime,
        actor: str,
        change: Callable[
            [Session, KillSwitchStateRecord, str, datetime, str], KillSwitchTransition
        ],
        *,
        announce_if_active: bool,
    ) -> KillSwitchTransition | None:
        """A person's trip or reset: a compare-and-set on the state row, retried when another
        process changed it first. Every call is an audit event; it is announced as a transition
        only when the state really flips (a trip of a clear book, a reset of a halted one)."""
        reason = _require_text(reason, "reason")
        actor = _require_text(actor, "actor")[:_MAX_ACTOR]
        now = _aware_utc(now)
        for _ in range(_ATTEMPTS):
            try:
                with self.db.session() as session:
                    record = self._load(session).record
                    was_active = bool(record.active)
                    event = change(session, record, reason, now, actor)
                    session.flush()
            except (StaleDataError, IntegrityError):
                continue
            transition = event if was_active == announce_if_active else None
            self._announce([transition] if transition else [])
            return transition
        raise RuntimeError(f"kill-switch state of book {self.book!r} kept changing; gave up")

    def _trip_row(
        self,
        session: Session,
        record: KillSwitchStateRecord,
        reason: str,
        now: datetime,
        actor: str,
    ) -> KillSwitchTransition:
        flips = not record.active
        record.manual = True
        numbers = _loads(record.numbers_json)
        numbers["manual_reason"] = reason
        record.numbers_json = _dumps(numbers)
        holds = _loads(record.locks_json) if self.guardrails else {}
        self._apply(record, holds, now, released=[])
        # Every manual trip is in the audit trail, even on an already halted book.
        return self._event(
            session,
            "trigger",
            f"manual: {reason}",
            _loads(record.numbers_json),
            now,
            actor,
            True,
            transition=flips,
        )

    def _reset_row(
        self,
        session: Session,
        record: KillSwitchStateRecord,
        reason: str,
        now: datetime,
        actor: str,
    ) -> KillSwitchTransition:
        flips = bool(record.active)
        holds = _loads(record.locks_json)
        cursors = _loads(record.cursors_json)
        ctx = GuardContext(session, self.book, Decimal(0), now, cursors)
        for name in holds:
            guard = self._by_name.get(name)
            if guard is not None:
                cursors.update(guard.release(ctx, manual=True))
        numbers = {"released": sorted(holds), "manual": bool(record.manual)}
        record.manual = False
        record.active = False
        record.reason = None
        record.tripped_at = None
        record.numbers_json = "{}"
        record.locks_json = "{}"
        record.cursors_json = _dumps({k: v for k, v in cursors.items() if v is not None})
        record.updated_at = now
        return self._event(
            session, "reset", f"manual: {reason}", numbers, now, actor, True, transition=flips
        )

    # ------------------------------------------------------------------ read side

    def status(self) -> tuple[bool, str | None]:
        """``(active, reason)`` as persisted (what the last evaluation or manual action left),
        including an all-books trip this book has not evaluated yet."""
        detail = self.detail()
        return detail.active, detail.reason

    def detail(self) -> KillSwitchStatus:
        """The whole persisted state of this book's switch (an all-books trip included)."""
        with self.db.session() as session:
            record = session.get(KillSwitchStateRecord, self.book)
            everything = (
                session.get(KillSwitchStateRecord, ALL_BOOKS) if self.book != ALL_BOOKS else None
            )
            if everything is not None and everything.manual and not (record and record.manual):
                # Not taken over yet (the book has not been evaluated since): it is halted all
                # the same, and a status display must say so.
                reason = _loads(everything.numbers_json).get("manual_reason")
                return KillSwitchStatus(
                    book=self.book,
                    active=True,
                    reason=f"manual: all books: {reason}",
                    tripped_at=everything.tripped_at,
                    manual=True,
                    numbers=_frozen({"manual_reason": f"all books: {reason}"}),
                    holds=_frozen(_loads(record.locks_json) if record else {}),
                    updated_at=everything.updated_at,
                )
            if record is None:
                return KillSwitchStatus(
                    self.book, False, None, None, False, _frozen({}), _frozen({}), None
                )
            return KillSwitchStatus(
                book=self.book,
                active=bool(record.active),
                reason=record.reason,
                tripped_at=record.tripped_at,
                manual=bool(record.manual),
                numbers=_frozen(_loads(record.numbers_json)),
                holds=_frozen(_loads(record.locks_json)),
                updated_at=record.updated_at,
            )

    def history(self, limit: int = 20) -> list[KillSwitchEvent]:
        """The newest ``limit`` triggers and resets of this book, newest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(KillSwitchEventRecord)
                .where(KillSwitchEventRecord.book == self.book)
                .order_by(KillSwitchEventRecord.id.desc())
                .limit(max(0, int(limit)))
            ).all()
            return [
                KillSwitchEvent(
                    r.id,
                    r.book,
                    r.kind,
                    r.reason,
                    _frozen(_loads(r.numbers_json)),
                    r.actor,
                    bool(r.manual),
                    r.at,
                )
                for r in rows
            ]

    # ------------------------------------------------------------------ internals

    @dataclass
    class _Row:
        record: KillSwitchStateRecord
        new: bool

    def _load(self, session: Session) -> KillSwitch._Row:
        record = session.get(KillSwitchStateRecord, self.book)
        if record is not None:
            return KillSwitch._Row(record, False)
        record = KillSwitchStateRecord(
            book=self.book,
            active=False,
            reason=None,
            tripped_at=None,
            numbers_json="{}",
            manual=False,
            locks_json="{}",
            cursors_json="{}",
            bot=self.bot,
            account_id=self.account_id,
        )
        session.add(record)
        return KillSwitch._Row(record, True)

    def _decision(self, record: KillSwitchStateRecord, holds: Mapping[str, Any]) -> GuardDecision:
        guards = (("manual",) if record.manual else ()) + tuple(sorted(holds))
        numbers = _loads(record.numbers_json) if record.active else {}
        return GuardDecision(bool(record.active), record.reason, _frozen(numbers), guards)

    def _event(
        self,
        session: Session,
        kind: Literal["trigger", "reset"],
        reason: str,
        numbers: Mapping[str, Any],
        now: datetime,
        actor: str,
        manual: bool,
        *,
        transition: bool = True,
    ) -> KillSwitchTransition:
        """Add the audit event; when it is a real transition (``transition``), hand it to
        ``on_transition_tx`` in this same transaction."""
        event = KillSwitchEventRecord(
            book=self.book,
            kind=kind,
            reason=reason,
            numbers_json=_dumps(numbers),
            actor=actor,
            manual=manual,
            at=now,
            bot=self.bot,
            account_id=self.account_id,
        )
        session.add(event)
        result = KillSwitchTransition(
            kind,
            self.book,
            reason,
            _frozen(numbers),
            now,
            actor,
            manual,
            self.account_id,
            self.every_bot,
        )
        if transition and self.on_transition_tx is not None:
            session.flush()  # the event's id (and the version check, as the commit would do)
            self.on_transition_tx(session, result, event.id)
        return result

    def _announce(self, transitions: list[KillSwitchTransition]) -> None:
        for transition in transitions:
            log.warning("%s", transition.message)
            if self.on_transition is None:
                continue
            try:
                self.on_transition(transition)
            except Exception:  # noqa: BLE001 - alerts never break trading
                log.exception("kill-switch alert callback failed for %s", transition.message)


def _require_text(value: str, name: str) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        raise ValueError(f"{name} must not be empty")
    return text
