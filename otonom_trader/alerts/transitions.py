"""Kill-switch transitions as alert outbox rows: one row per transition and channel, written in
the transaction that changes the switch's state.

::

    KillSwitch.evaluate / trip / reset
        └─ state row + kill_switch_events row ─┐ one transaction
           on_transition_tx(session, t, id) ───┘ → alert_outbox rows (transition_id = id)

A transition is an event, not a text: every trigger and reset gets its own rows, keyed by the
``kill_switch_events`` id, however alike its wording is to an earlier one. The unique index on
``(transition_id, channel)`` makes a repeat of the *same* transition a no-op. Every message says
the state the switch is in after the transition; the sender adds the state at sending time when
later transitions follow (see :func:`live_state_note`), and a rate-limited channel receives
several transitions batched into one message (:func:`batch_message`), never fewer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.alerts.config import Severity
from otonom_trader.guardrails.kill_switch import KillSwitchTransition
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.guardrail_models import KillSwitchStateRecord

#: ``state_after`` values.
ACTIVE = "active"
CLEAR = "clear"
#: Routes decide on the trigger's severity for resets too: a channel that hears of a halt must
#: also hear that trading resumed, or its last message would contradict the switch.
ROUTING_SEVERITY = Severity.CRITICAL
TRIGGER_SEVERITY = Severity.CRITICAL
RESET_SEVERITY = Severity.WARNING


@dataclass(frozen=True)
class TransitionMessage:
    """Title and body (before the engine's footer) of one transition's alert."""

    title: str
    body: str
    severity: Severity
    state_after: str
    dedupe_key: str


def state_after(transition: KillSwitchTransition) -> str:
    """``active`` after a trigger, ``clear`` after a reset."""
    return ACTIVE if transition.kind == "trigger" else CLEAR


def state_line(book: str, state: str) -> str:
    """One line naming the switch's state and what it means for orders."""
    # The all-books switch ('*') is the emergency stop of every book of every account.
    whose = "EVERY book (emergency stop)" if book == "*" else f"book '{book}'"
    if state == ACTIVE:
        return (
            f"Kill-switch of {whose} is now ACTIVE: trading is HALTED. New orders are "
            "rejected until the guardrails clear or a person resets it; cancels still pass."
        )
    return f"Kill-switch of {whose} is now CLEAR: trading RESUMED. New orders are accepted again."


def transition_message(transition: KillSwitchTransition, event_id: int) -> TransitionMessage:
    """The alert of one transition (``event_id``: its ``kill_switch_events`` id)."""
    state = state_after(transition)
    who = f"manual, by {transition.actor}" if transition.manual else "automatic, guardrails"
    if transition.kind == "trigger":
        title = f"KILL-SWITCH TRIGGERED [{transition.book}]: trading halted"
        what = "TRIGGERED"
        severity = TRIGGER_SEVERITY
    else:
        title = f"KILL-SWITCH RESET [{transition.book}]: trading resumed"
        what = "RESET"
        severity = RESET_SEVERITY
    lines = [
        state_line(transition.book, state),
        "",
        f"Transition #{event_id}: {what} ({who}) at {transition.at:%Y-%m-%d %H:%M:%S} UTC.",
        f"Reason: {transition.reason}",
    ]
    numbers = _numbers(transition)
    if numbers:
        lines.append(f"Numbers: {numbers}")
    return TransitionMessage(
        title, "\n".join(lines), severity, state, f"kill_switch_transition:{event_id}"
    )


def _numbers(transition: KillSwitchTransition) -> str:
    try:
        return json.dumps(dict(transition.numbers), sort_keys=True, default=str)[:1000]
    except (TypeError, ValueError):
        return ""


def live_state_note(session: Session, book: str, row_state: str, later: int, now: datetime) -> str:
    """A line for a transition sent late: the switch's state at sending time, and how many
    later transitions of the book follow. Empty when the message is still the latest word."""
    record = session.get(KillSwitchStateRecord, book)
    live = ACTIVE if record is not None and record.active else CLEAR
    if live == row_state and later == 0:
        return ""
    follow = f"{later} later transition(s) of this book follow in their own messages. "
    meaning = "trading halted" if live == ACTIVE else "trading resumed"
    return (
        f"Note (sent {now:%Y-%m-%d %H:%M:%S} UTC): {follow if later else ''}"
        f"The switch is now {live.upper()} ({meaning})."
    )


@dataclass(frozen=True)
class BatchedTransition:
    """What a batch message needs of one row."""

    row_id: int
    title: str
    body: str
    book: str | None
    state_after: str | None
    created_at: datetime


def batch_message(
    rows: Sequence[BatchedTransition], live_states: dict[str, str]
) -> tuple[str, str]:
    """One message for several transitions (a rate-limited channel): every transition in order,
    then the state each book is in now. Returns ``(title, body)``."""
    books = sorted({r.book or "?" for r in rows})
    now_states = ", ".join(f"{b} {live_states.get(b, CLEAR).upper()}" for b in books)
    title = f"KILL-SWITCH: {len(rows)} transitions; now {now_states}"
    lines = [
        f"This channel is rate limited, so {len(rows)} kill-switch transitions arrive in one "
        "message, oldest first. None was dropped.",
        "",
    ]
    for n, row in enumerate(rows, start=1):
        lines.append(f"{n}. {row.title}")
        lines.extend(f"   {line}" for line in row.body.splitlines() if line.strip())
    lines.append("")
    lines.extend(state_line(b, live_states.get(b, CLEAR)) for b in books)
    return title, "\n".join(lines)


def live_states(session: Session, books: Sequence[str]) -> dict[str, str]:
    """``active`` / ``clear`` per book, as persisted now."""
    result: dict[str, str] = {}
    for book in books:
        record = session.get(KillSwitchStateRecord, book)
        result[book] = ACTIVE if record is not None and record.active else CLEAR
    return result


def later_pending(session: Session, channel: str, book: str, after_id: int) -> int:
    """How many transition rows of ``book`` wait on ``channel`` behind row ``after_id``."""
    ids = session.scalars(
        select(AlertOutboxRecord.id).where(
            AlertOutboxRecord.channel == channel,
            AlertOutboxRecord.book == book,
            AlertOutboxRecord.transition_id.isnot(None),
            AlertOutboxRecord.status == "pending",
            AlertOutboxRecord.id > after_id,
        )
    ).all()
    return len(ids)


__all__ = [
    "ACTIVE",
    "CLEAR",
    "ROUTING_SEVERITY",
    "BatchedTransition",
    "TransitionMessage",
    "batch_message",
    "later_pending",
    "live_state_note",
    "live_states",
    "state_after",
    "transition_message",
]
