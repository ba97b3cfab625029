"""Property-based tests: over random equity paths and trade sequences, the switch is active
exactly when the documented rules say so (limit values hit exactly included), and every
transition is announced exactly once.

Each example uses a fresh book in one shared SQLite database (migrating a database per example
would dominate the run time); books never share state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path

import pytest
from book_rows import add_closed_trade, add_snapshot
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch, KillSwitchTransition
from otonom_trader.persistence import Database

START = datetime(2026, 5, 4, 20, 0, tzinfo=UTC)
_books = count(1)
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(Path(tmp_path_factory.mktemp("props")) / "props.db")
    yield db
    db.dispose()


def next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)


def reached(reference: Decimal, equity: Decimal, limit: Decimal) -> bool:
    return reference > 0 and (reference - equity) * 100 >= limit * reference


@dataclass
class EquityModel:
    """The documented rules, written plainly: what the switch must say after each step."""

    daily_limit: Decimal
    drawdown_limit: Decimal
    with_snapshots: bool
    seen: list[tuple[datetime, Decimal]] = field(default_factory=list)
    daily_hold_until: datetime | None = None
    active: bool = False

    def day_start(self, now: datetime) -> Decimal | None:
        # The last equity before 00:00 UTC — from a snapshot or, without snapshots (the guide's
        # standalone GuardedBroker), the last equity the switch itself saw — else today's first.
        today: date = now.date()
        earlier = [e for t, e in self.seen if t.date() < today]
        if earlier:
            return earlier[-1]
        todays = [e for t, e in self.seen if t.date() == today]
        return todays[0] if todays else None

    def peak(self) -> Decimal | None:
        return max((e for _, e in self.seen), default=None)

    def step(self, now: datetime, equity: Decimal) -> tuple[bool, str | None]:
        start = self.day_start(now) or equity
        self.seen.append((now, equity))
        peak = self.peak()
        assert peak is not None
        if self.daily_hold_until is not None and now >= self.daily_hold_until:
            self.daily_hold_until = None
        if self.daily_hold_until is None and reached(start, equity, self.daily_limit):
            self.daily_hold_until = next_midnight(now)
        active = self.daily_hold_until is not None or reached(peak, equity, self.drawdown_limit)
        change = None
        if active != self.active:
            change = "trigger" if active else "reset"
        self.active = active
        return active, change


@st.composite
def equity_paths(draw: st.DrawFn) -> tuple[Decimal, Decimal, bool, list[tuple[int, str, Decimal]]]:
    daily = draw(st.sampled_from([Decimal("1"), Decimal("2.5"), Decimal("5"), Decimal("10")]))
    drawdown = draw(st.sampled_from([Decimal("5"), Decimal("12.5"), Decimal("40")]))
    snapshots = draw(st.booleans())
    steps = draw(
        st.lists(
            st.tuples(
                st.one_of(
                    st.sampled_from([1, 60, 60 * 6, 60 * 23, 60 * 24]),
                    st.integers(min_value=1, max_value=3000),
                ),
                st.sampled_from(["random", "daily_at", "daily_above", "dd_at", "dd_below"]),
                st.decimals(min_value=1, max_value=30_000, places=2),
            ),
            min_size=1,
            max_size=25,
        )
    )
    return daily, drawdown, snapshots, steps


def aim(kind: str, random_equity: Decimal, model: EquityModel, now: datetime) -> Decimal:
    """Turn a step kind into an equity that sits on (or one cent off) a limit."""
    cent = Decimal("0.01")
    start = model.day_start(now)
    peak = model.peak()
    if kind.startswith("daily") and start is not None:
        at = start * (100 - model.daily_limit) / 100
        return at if kind == "daily_at" else at + cent
    if kind.startswith("dd") and peak is not None:
        at = peak * (100 - model.drawdown_limit) / 100
        return at if kind == "dd_at" else at - cent
    return random_equity


@PROPERTY_SETTINGS
@given(path=equity_paths())
@example(  # found by Hypothesis: without snapshots, yesterday's last equity must outlive the
    # first evaluation of the new day (it once did not)
    path=(
        Decimal("1"),
        Decimal("5"),
        False,
        [
            (1, "random", Decimal("1.02")),
            (360, "daily_above", Decimal("1.00")),
            (1, "random", Decimal("1.00")),
        ],
    )
)
def test_switch_is_active_exactly_when_daily_loss_or_drawdown_rules_say_so(
    shared_db: Database, path: tuple[Decimal, Decimal, bool, list[tuple[int, str, Decimal]]]
) -> None:
    daily, drawdown, with_snapshots, steps = path
    book = f"eq{next(_books)}"
    seen: list[KillSwitchTransition] = []
    cfg = GuardrailConfig(
        max_daily_loss_pct=float(daily),
        max_drawdown_pct=float(drawdown),
        max_consecutive_losses=1000,
    )
    switch = KillSwitch(shared_db, cfg, book, on_transition=seen.append)
    model = EquityModel(daily, drawdown, with_snapshots)
    now = START
    expected_changes: list[str] = []
    for minutes, kind, random_equity in steps:
        now += timedelta(minutes=minutes)
        equity = aim(kind, random_equity, model, now)
        if equity <= 0:
            equity = random_equity

        decision = switch.evaluate(equity, now)
        expected, change = model.step(now, equity)
        if with_snapshots:
            peak = model.peak()
            add_snapshot(shared_db, book, now, equity, peak)

        assert decision.active is expected, (kind, now, equity, decision)
        assert switch.status()[0] is expected
        if change:
            expected_changes.append(change)
    assert [t.kind for t in seen] == expected_changes


@dataclass
class StreakModel:
    limit: int
    cooldown: timedelta | None
    fills: list[tuple[int, Decimal]] = field(default_factory=list)
    forgiven_through: int = 0
    hold_until: datetime | None = None

    def step(self, now: datetime) -> bool:
        if self.hold_until is not None and now >= self.hold_until:
            self.forgiven_through = max((i for i, _ in self.fills), default=0)
            self.hold_until = None
        streak = 0
        for fill_id, pnl in reversed(self.fills):
            if fill_id <= self.forgiven_through or pnl >= 0:
                break
            streak += 1
        if self.hold_until is None and streak >= self.limit:
            self.hold_until = now + self.cooldown if self.cooldown else next_midnight(now)
        return self.hold_until is not None


@PROPERTY_SETTINGS
@given(
    limit=st.integers(min_value=1, max_value=4),
    cooldown_hours=st.sampled_from([None, 1.0, 5.0]),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=60 * 10),
            st.lists(st.sampled_from(["-3", "-0.01", "0", "2"]), max_size=3),
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_consecutive_loss_switch_follows_streak_and_cooldown_rules(
    shared_db: Database,
    limit: int,
    cooldown_hours: float | None,
    steps: list[tuple[int, list[str]]],
) -> None:
    book = f"cl{next(_books)}"
    cfg = GuardrailConfig(
        max_daily_loss_pct=100.0,
        max_drawdown_pct=100.0,
        max_consecutive_losses=limit,
        consecutive_loss_cooldown_hours=cooldown_hours,
    )
    switch = KillSwitch(shared_db, cfg, book)
    cooldown = timedelta(hours=cooldown_hours) if cooldown_hours else None
    model = StreakModel(limit, cooldown)
    now = START
    for minutes, pnls in steps:
        now += timedelta(minutes=minutes)
        for pnl in pnls:
            fill_id = add_closed_trade(shared_db, book, now, Decimal(pnl))
            model.fills.append((fill_id, Decimal(pnl)))

        decision = switch.evaluate(Decimal(1000), now)

        assert decision.active is model.step(now), (now, model)
