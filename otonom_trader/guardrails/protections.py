"""The guardrails as small plug-ins: each reads the book and returns a ``GuardVerdict``.

Like freqtrade's ``IProtection.global_stop() -> ProtectionReturn(lock, until, reason)``, a
guardrail only *decides*; the ``KillSwitch`` owns the state, persists it and announces changes.
``build_guardrails(cfg)`` is the one place that turns a ``GuardrailConfig`` into plug-ins.

Semantics (all comparisons exact, in ``Decimal``; a limit that is *reached* counts as breached):

* **Daily loss** (``DailyLossGuard``): ``(day_start - equity) / day_start * 100 >=
  max_daily_loss_pct``. ``day_start`` is the book's latest snapshot taken before 00:00 UTC today,
  else its first snapshot today, else the first equity this kill switch saw today (persisted),
  else the equity now. A daily-loss halt holds until the next 00:00 UTC even if equity recovers
  during the day (a loss limit that lifts when a bounce comes is no limit).
* **Drawdown** (``DrawdownGuard``): ``(peak - equity) / peak * 100 >= max_drawdown_pct`` with
  ``peak = max(latest snapshot's peak_equity, the highest equity this switch saw, equity)``;
  equity is marked to market, so unrealized losses count. It holds exactly while breached.
* **Consecutive losses** (``ConsecutiveLossGuard``): the last ``max_consecutive_losses`` closed
  trades of the book (fills with ``realized_pnl`` set; ``< 0`` is a loss, breakeven is not) all
  lost. The halt holds for ``consecutive_loss_cooldown_hours`` (``null``: until the next
  00:00 UTC); when it ends, every closed trade so far is forgiven, so the next N closed trades
  must all lose to trip it again. Without that, the same losing streak would re-trip forever.

Every query is one indexed read with ``LIMIT``: guard_check time does not grow with history.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.types import to_decimal
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.persistence.models import FillRecord, PortfolioSnapshot

_PCT_DISPLAY = Decimal("0.01")


def next_utc_midnight(now: datetime) -> datetime:
    """The first 00:00 UTC strictly after ``now``."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def utc_midnight(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s UTC day."""
    return datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)


def money(value: Decimal) -> Decimal:
    """``value`` to the cent for messages (the numbers keep every digit)."""
    return value.quantize(_PCT_DISPLAY) if value.as_tuple().exponent < -2 else value  # type: ignore[operator]


def loss_pct(reference: Decimal, equity: Decimal) -> Decimal:
    """How many percent ``equity`` is below ``reference`` (negative when above), for display."""
    return ((reference - equity) * 100 / reference).quantize(_PCT_DISPLAY)


def reaches_limit(reference: Decimal, equity: Decimal, limit_pct: Decimal) -> bool:
    """``(reference - equity) / reference * 100 >= limit_pct``, without dividing (exact).

    A non-positive reference has no meaningful percentage loss and never trips.
    """
    if reference <= 0:
        return False
    return (reference - equity) * 100 >= limit_pct * reference


@dataclass
class GuardContext:
    """What a guardrail may read: the open session, the book, the equity now, the clock, and
    the switch's persisted cursors (which a verdict may update)."""

    session: Session
    book: str
    equity: Decimal
    now: datetime
    cursors: dict[str, Any]


@dataclass(frozen=True)
class GuardVerdict:
    """One guardrail's decision for one evaluation.

    ``hold_until``: when breached, how long the halt holds at least (``None``: exactly while
    breached). ``cursor_updates`` are persisted into the switch's cursors.
    """

    name: str
    breached: bool
    reason: str | None = None
    numbers: dict[str, str] = field(default_factory=dict)
    hold_until: datetime | None = None
    cursor_updates: dict[str, Any] = field(default_factory=dict)


class Guardrail(ABC):
    """A plug-in: ``check`` decides; ``release`` says what to forgive when its halt ends."""

    name: str = "guardrail"

    @abstractmethod
    def check(self, ctx: GuardContext) -> GuardVerdict:
        """Decide whether this guardrail is breached now."""

    def release(self, ctx: GuardContext, *, manual: bool) -> dict[str, Any]:
        """Cursor updates to apply when this guardrail's halt ends (expiry or manual reset)."""
        return {}


class DailyLossGuard(Guardrail):
    """Equity now against equity at the start of the UTC day."""

    name = "daily_loss"

    def __init__(self, max_daily_loss_pct: float) -> None:
        self.limit = to_decimal(max_daily_loss_pct, name="max_daily_loss_pct")

    def day_start_equity(self, ctx: GuardContext) -> tuple[Decimal, str, dict[str, Any]]:
        """The day's reference equity, where it came from, and cursor updates to persist."""
        today = ctx.now.date().isoformat()
        rebase = ctx.cursors.get("daily_rebase")
        if rebase == today:
            # A person reset a daily-loss halt today: the loss so far is forgiven, the day's
            # reference becomes the equity at the first evaluation after the reset.
            rebased = {"date": today, "equity": str(ctx.equity)}
            return ctx.equity, "manual reset", {"daily_baseline": rebased, "daily_rebase": None}
        baseline = ctx.cursors.get("daily_baseline")
        if isinstance(baseline, dict) and baseline.get("date") == today:
            return Decimal(baseline["equity"]), "manual reset", {}
        midnight = utc_midnight(ctx.now)
        snap = PortfolioSnapshot
        before = ctx.session.execute(
            select(snap.equity, snap.taken_at)
            .where(snap.book == ctx.book, snap.taken_at < midnight)
            .order_by(snap.taken_at.desc())
            .limit(1)
        ).first()
        # The last equity this guard itself saw before midnight: without snapshots (the guide's
        # standalone GuardedBroker) it is the only record of yesterday's close. It is kept for
        # the whole day as ``day_reference`` (``last_seen`` moves on with every evaluation).
        reference = ctx.cursors.get("day_reference")
        seen_last = ctx.cursors.get("last_seen")
        kept: dict[str, Any] = {}
        candidate: dict[str, Any] | None = None
        if isinstance(reference, dict) and reference.get("date") == today:
            candidate = reference
        elif isinstance(seen_last, dict) and datetime.fromisoformat(seen_last["at"]) < midnight:
            candidate = {"date": today, "at": seen_last["at"], "equity": seen_last["equity"]}
            kept = {"day_reference": candidate}
        if candidate is not None:
            seen_at = datetime.fromisoformat(candidate["at"])
            if before is None or seen_at > before[1]:
                return Decimal(candidate["equity"]), "last equity seen before 00:00 UTC", kept
        if before is not None:
            return before[0], "last snapshot before 00:00 UTC", {}
        first_today = ctx.session.execute(
            select(snap.equity)
            .where(snap.book == ctx.book, snap.taken_at >= midnight, snap.taken_at <= ctx.now)
            .order_by(snap.taken_at.asc())
            .limit(1)
        ).scalar_one_or_none()
        if first_today is not None:
            return first_today, "first snapshot today", {}
        seen = ctx.cursors.get("first_seen")
        if isinstance(seen, dict) and seen.get("date") == today:
            return Decimal(seen["equity"]), "first equity seen today", {}
        return ctx.equity, "equity now", {"first_seen": {"date": today, "equity": str(ctx.equity)}}

    def check(self, ctx: GuardContext) -> GuardVerdict:
        start, source, updates = self.day_start_equity(ctx)
        updates = {
            **updates,
            "last_seen": {"at": ctx.now.isoformat(), "equity": str(ctx.equity)},
        }
        numbers = {
            "day_start_equity": str(start),
            "day_start_source": source,
            "equity": str(ctx.equity),
            "limit_pct": str(self.limit),
        }
        if start > 0:
            numbers["loss_pct"] = str(loss_pct(start, ctx.equity))
        if not reaches_limit(start, ctx.equity, self.limit):
            return GuardVerdict(self.name, False, numbers=numbers, cursor_updates=updates)
        reason = (
            f"daily loss {numbers['loss_pct']}% >= {self.limit}% "
            f"(equity {money(ctx.equity)} vs {money(start)} at the start of the UTC day)"
        )
        return GuardVerdict(
            self.name,
            True,
            reason,
            numbers,
            hold_until=next_utc_midnight(ctx.now),
            cursor_updates=updates,
        )

    def release(self, ctx: GuardContext, *, manual: bool) -> dict[str, Any]:
        # At midnight the reference moves by itself; a manual reset forgives today's loss.
        return {"daily_rebase": ctx.now.date().isoformat()} if manual else {}


class DrawdownGuard(Guardrail):
    """Equity now (marked to market) against the peak equity."""

    name = "drawdown"

    def __init__(self, max_drawdown_pct: float) -> None:
        self.limit = to_decimal(max_drawdown_pct, name="max_drawdown_pct")

    def check(self, ctx: GuardContext) -> GuardVerdict:
        snap = PortfolioSnapshot
        # peak_equity is the running max carried forward: one indexed read, never a scan.
        snapshot_peak = ctx.session.execute(
            select(snap.peak_equity)
            .where(snap.book == ctx.book)
            .order_by(snap.taken_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        observed = ctx.cursors.get("observed_peak")
        observed_peak = Decimal(observed) if observed is not None else None
        known = [p for p in (snapshot_peak, observed_peak) if p is not None]
        known_peak = max(known) if known else None
        updates: dict[str, Any] = {}
        if known_peak is None or ctx.equity > known_peak:
            updates["observed_peak"] = str(ctx.equity)
        peak = max([*known, ctx.equity])
        numbers = {
            "peak_equity": str(peak),
            "equity": str(ctx.equity),
            "limit_pct": str(self.limit),
        }
        if peak > 0:
            numbers["drawdown_pct"] = str(loss_pct(peak, ctx.equity))
        if not reaches_limit(peak, ctx.equity, self.limit):
            return GuardVerdict(self.name, False, numbers=numbers, cursor_updates=updates)
        reason = (
            f"drawdown {numbers['drawdown_pct']}% >= {self.limit}% "
            f"(equity {money(ctx.equity)} vs peak {money(peak)})"
        )
        return GuardVerdict(self.name, True, reason, numbers, cursor_updates=updates)


class ConsecutiveLossGuard(Guardrail):
    """The last N closed trades of the book all lost."""

    name = "consecutive_losses"

    def __init__(self, max_consecutive_losses: int, cooldown_hours: float | None) -> None:
        self.limit = int(max_consecutive_losses)
        self.cooldown = timedelta(hours=cooldown_hours) if cooldown_hours is not None else None

    def _after_id(self, ctx: GuardContext) -> int:
        return int(ctx.cursors.get("loss_streak_after_fill_id") or 0)

    def check(self, ctx: GuardContext) -> GuardVerdict:
        fill = FillRecord
        rows = ctx.session.execute(
            select(fill.id, fill.realized_pnl)
            .where(
                fill.book == ctx.book,
                fill.realized_pnl.isnot(None),
                fill.id > self._after_id(ctx),
            )
            .order_by(fill.id.desc())
            .limit(self.limit)
        ).all()
        streak = 0
        for _, pnl in rows:
            if pnl is None or pnl >= 0:
                break
            streak += 1
        numbers = {"losing_streak": str(streak), "limit": str(self.limit)}
        if streak < self.limit:
            return GuardVerdict(self.name, False, numbers=numbers)
        numbers["last_fill_id"] = str(rows[0][0])
        numbers["losses"] = ",".join(str(pnl) for _, pnl in rows)
        hold = ctx.now + self.cooldown if self.cooldown is not None else next_utc_midnight(ctx.now)
        reason = f"{streak} consecutive losing trades (limit {self.limit})"
        return GuardVerdict(self.name, True, reason, numbers, hold_until=hold)

    def release(self, ctx: GuardContext, *, manual: bool) -> dict[str, Any]:
        fill = FillRecord
        newest = ctx.session.execute(
            select(fill.id)
            .where(fill.book == ctx.book, fill.realized_pnl.isnot(None))
            .order_by(fill.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        # Forgive every closed trade so far: the cooldown was the penalty for the streak.
        return {"loss_streak_after_fill_id": int(newest or 0)}


def build_account_guardrails(cfg: GuardrailConfig) -> list[Guardrail]:
    """The account level's plug-ins (``cfg.account``: daily loss and drawdown over the account's
    total equity; a losing streak is a bot's, not an account's). None when either the account
    level or the guardrails as a whole are off."""
    if not (cfg.enabled and cfg.account.enabled):
        return []
    return [
        DailyLossGuard(cfg.account.max_daily_loss_pct),
        DrawdownGuard(cfg.account.max_drawdown_pct),
    ]


def build_guardrails(cfg: GuardrailConfig) -> list[Guardrail]:
    """The plug-ins a config asks for (none when ``enabled`` is false)."""
    if not cfg.enabled:
        return []
    return [
        DailyLossGuard(cfg.max_daily_loss_pct),
        DrawdownGuard(cfg.max_drawdown_pct),
        ConsecutiveLossGuard(cfg.max_consecutive_losses, cfg.consecutive_loss_cooldown_hours),
    ]
