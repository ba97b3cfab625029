"""The kill-switch state machine: each guardrail's rule, holds and resets, manual controls,
announcements, persistence — on SQLite and PostgreSQL where the database matters."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from book_rows import add_closed_trade, add_snapshot
from sqlalchemy import inspect

from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch, KillSwitchTransition
from otonom_trader.persistence import Database
from otonom_trader.persistence.registry import metadata

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning, UTC
WIDE = {"max_daily_loss_pct": 100.0, "max_drawdown_pct": 100.0, "max_consecutive_losses": 1000}


def make_switch(
    db: Database, book: str = "paper", **cfg: object
) -> tuple[KillSwitch, list[KillSwitchTransition]]:
    seen: list[KillSwitchTransition] = []
    switch = KillSwitch(db, GuardrailConfig(**cfg), book, on_transition=seen.append)  # type: ignore[arg-type]
    return switch, seen


def test_migration_creates_kill_switch_tables_and_closed_fills_index(any_db: Database) -> None:
    inspector = inspect(any_db.engine)
    assert {"kill_switch_state", "kill_switch_events"} <= set(inspector.get_table_names())
    assert "ix_fills_book_closed" in {ix["name"] for ix in inspector.get_indexes("fills")}


def test_guardrail_migration_matches_the_models(any_db: Database) -> None:
    with any_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)

    mine = [d for d in diff if "kill_switch" in repr(d) or "ix_fills_book_closed" in repr(d)]
    assert mine == []
    assert "0002_guardrails" in any_db.applied_revisions()


def test_daily_loss_at_exactly_the_limit_triggers_once(any_db: Database) -> None:
    switch, seen = make_switch(any_db)
    add_snapshot(any_db, "paper", T0 - timedelta(hours=10), Decimal("10000"))

    below = switch.evaluate(Decimal("9500.01"), T0)
    at_limit = switch.evaluate(Decimal("9500"), T0 + timedelta(minutes=5))
    again = switch.evaluate(Decimal("9400"), T0 + timedelta(minutes=10))

    assert not below.active
    assert at_limit.active and at_limit.guards == ("daily_loss",)
    assert at_limit.reason is not None and at_limit.reason.startswith("daily loss 5.00% >= 5.0%")
    assert at_limit.numbers["daily_loss"]["day_start_equity"] == "10000"
    assert again.active
    assert [t.kind for t in seen] == ["trigger"]


def test_daily_loss_halt_holds_through_a_recovery_and_resets_at_utc_midnight(
    sqlite_db: Database,
) -> None:
    switch, seen = make_switch(sqlite_db)
    add_snapshot(sqlite_db, "paper", T0 - timedelta(hours=10), Decimal("10000"))
    switch.evaluate(Decimal("9000"), T0)

    recovered_same_day = switch.evaluate(Decimal("10000"), T0 + timedelta(hours=14, minutes=59))
    next_day = switch.evaluate(Decimal("10000"), T0 + timedelta(hours=15))

    assert recovered_same_day.active
    assert not next_day.active
    assert [t.kind for t in seen] == ["trigger", "reset"]
    assert seen[1].reason == "daily_loss cleared; trading resumes"


def test_day_start_is_the_last_snapshot_before_midnight_not_the_first_of_yesterday(
    sqlite_db: Database,
) -> None:
    switch, _ = make_switch(sqlite_db)
    add_snapshot(sqlite_db, "paper", T0 - timedelta(days=1), Decimal("20000"))
    add_snapshot(sqlite_db, "paper", T0 - timedelta(hours=9, minutes=1), Decimal("10000"))
    add_snapshot(sqlite_db, "paper", T0 - timedelta(hours=1), Decimal("12000"))

    decision = switch.evaluate(Decimal("9600"), T0)

    assert not decision.active  # 4 % below 10,000 (not 52 % below 20,000)
    detail = switch.evaluate(Decimal("9500"), T0).numbers["daily_loss"]
    assert detail["day_start_equity"] == "10000"


def test_drawdown_counts_the_snapshot_peak_and_clears_when_back_under_the_limit(
    any_db: Database,
) -> None:
    switch, seen = make_switch(any_db, max_daily_loss_pct=100.0)
    add_snapshot(any_db, "paper", T0 - timedelta(days=3), Decimal("8000"), peak=Decimal("20000"))

    breached = switch.evaluate(Decimal("12000"), T0)  # exactly 40 % under the peak
    still = switch.evaluate(Decimal("11000"), T0 + timedelta(minutes=1))
    cleared = switch.evaluate(Decimal("12000.01"), T0 + timedelta(minutes=2))

    assert breached.active and breached.guards == ("drawdown",)
    assert breached.numbers["drawdown"]["peak_equity"] == "20000"
    assert still.active
    assert not cleared.active
    assert [t.kind for t in seen] == ["trigger", "reset"]


def test_drawdown_peak_includes_equity_seen_without_snapshots(sqlite_db: Database) -> None:
    switch, _ = make_switch(sqlite_db, max_daily_loss_pct=100.0)

    switch.evaluate(Decimal("10000"), T0)
    switch.evaluate(Decimal("15000"), T0 + timedelta(days=1))
    decision = switch.evaluate(Decimal("9000"), T0 + timedelta(days=2))

    assert decision.active  # 40 % under the 15,000 peak seen two evaluations ago


def test_consecutive_losses_trip_after_n_losers_and_breakeven_breaks_the_streak(
    any_db: Database,
) -> None:
    switch, _ = make_switch(any_db, max_consecutive_losses=3)
    for pnl in ("-5", "-1", "0", "-2", "-3"):
        add_closed_trade(any_db, "paper", T0, Decimal(pnl))
    add_closed_trade(any_db, "paper", T0, None)  # an opening fill is not a trade result

    two = switch.evaluate(Decimal(1000), T0)
    add_closed_trade(any_db, "paper", T0, Decimal("-0.01"))
    three = switch.evaluate(Decimal(1000), T0 + timedelta(minutes=1))

    assert not two.active
    assert three.active and three.guards == ("consecutive_losses",)
    assert three.numbers["consecutive_losses"]["losses"] == "-0.01,-3,-2"


def test_consecutive_loss_halt_ends_next_utc_day_and_forgives_the_streak(
    sqlite_db: Database,
) -> None:
    switch, seen = make_switch(sqlite_db, max_consecutive_losses=2)
    for _ in range(2):
        add_closed_trade(sqlite_db, "paper", T0, Decimal("-10"))
    switch.evaluate(Decimal(1000), T0)

    before_midnight = switch.evaluate(Decimal(1000), T0 + timedelta(hours=14, minutes=59))
    after_midnight = switch.evaluate(Decimal(1000), T0 + timedelta(hours=15))
    add_closed_trade(sqlite_db, "paper", T0 + timedelta(hours=16), Decimal("-1"))
    one_new_loss = switch.evaluate(Decimal(1000), T0 + timedelta(hours=16))
    add_closed_trade(sqlite_db, "paper", T0 + timedelta(hours=17), Decimal("-1"))
    two_new_losses = switch.evaluate(Decimal(1000), T0 + timedelta(hours=17))

    assert before_midnight.active
    assert not after_midnight.active
    assert not one_new_loss.active
    assert two_new_losses.active
    assert [t.kind for t in seen] == ["trigger", "reset", "trigger"]


def test_consecutive_loss_cooldown_hours_is_configurable(sqlite_db: Database) -> None:
    switch, _ = make_switch(sqlite_db, max_consecutive_losses=1, consecutive_loss_cooldown_hours=2)
    add_closed_trade(sqlite_db, "paper", T0, Decimal("-1"))
    switch.evaluate(Decimal(1000), T0)

    assert switch.evaluate(Decimal(1000), T0 + timedelta(hours=1, minutes=59)).active
    assert not switch.evaluate(Decimal(1000), T0 + timedelta(hours=2)).active


def test_manual_trip_holds_until_manual_reset_even_when_guardrails_are_clear(
    any_db: Database,
) -> None:
    switch, seen = make_switch(any_db)
    switch.trip("exchange incident", T0, actor="alice")

    days_later = switch.evaluate(Decimal(10000), T0 + timedelta(days=3))
    switch.reset("incident over", T0 + timedelta(days=3, hours=1), actor="bob")
    after = switch.evaluate(Decimal(10000), T0 + timedelta(days=3, hours=2))

    assert days_later.active and days_later.reason == "manual: exchange incident"
    assert not after.active
    events = switch.history(10)
    assert [(e.kind, e.actor, e.manual) for e in events] == [
        ("reset", "bob", True),
        ("trigger", "alice", True),
    ]
    assert [t.message for t in seen] == [
        "KILL-SWITCH TRIGGERED [paper]: manual: exchange incident",
        "KILL-SWITCH RESET [paper]: manual: incident over",
    ]


def test_manual_reset_forgives_todays_daily_loss(sqlite_db: Database) -> None:
    switch, _ = make_switch(sqlite_db)
    add_snapshot(sqlite_db, "paper", T0 - timedelta(hours=10), Decimal("10000"))
    assert switch.evaluate(Decimal("9000"), T0).active

    switch.reset("reviewed the loss", T0 + timedelta(minutes=1), actor="alice")
    resumed = switch.evaluate(Decimal("9000"), T0 + timedelta(minutes=2))
    new_loss = switch.evaluate(Decimal("8550"), T0 + timedelta(minutes=3))

    assert not resumed.active
    assert new_loss.active  # 5 % below 9,000, the equity at the reset


def test_manual_reset_cannot_hide_a_drawdown_that_is_still_over_the_limit(
    sqlite_db: Database,
) -> None:
    switch, seen = make_switch(sqlite_db, max_daily_loss_pct=100.0)
    add_snapshot(sqlite_db, "paper", T0 - timedelta(days=1), Decimal("10000"), Decimal("20000"))
    switch.evaluate(Decimal("10000"), T0)

    switch.reset("try anyway", T0 + timedelta(minutes=1), actor="alice")
    decision = switch.evaluate(Decimal("10000"), T0 + timedelta(minutes=2))

    assert decision.active
    assert [t.kind for t in seen] == ["trigger", "reset", "trigger"]


def test_trip_on_a_halted_book_is_audited_but_not_announced_twice(sqlite_db: Database) -> None:
    switch, seen = make_switch(sqlite_db)
    switch.trip("first", T0, actor="alice")

    again = switch.trip("second", T0 + timedelta(minutes=1), actor="bob")

    assert again is None
    assert len(seen) == 1
    assert [e.actor for e in switch.history(5)] == ["bob", "alice"]
    assert switch.status() == (True, "manual: second")


def test_a_failing_alert_callback_is_logged_and_trading_state_is_still_saved(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: KillSwitchTransition) -> None:
        raise ConnectionError("SMTP down")

    switch = KillSwitch(sqlite_db, GuardrailConfig(), "paper", on_transition=broken)

    switch.trip("drill", T0, actor="alice")

    assert switch.status() == (True, "manual: drill")
    assert "alert callback failed" in caplog.text


def test_state_survives_a_new_kill_switch_on_the_same_database(sqlite_db: Database) -> None:
    first, _ = make_switch(sqlite_db)
    add_snapshot(sqlite_db, "paper", T0 - timedelta(hours=10), Decimal("10000"))
    first.evaluate(Decimal("9000"), T0)

    reopened = Database(sqlite_db.url)
    second, seen = make_switch(reopened)
    decision = second.evaluate(Decimal("10000"), T0 + timedelta(hours=1))

    assert second.status()[0] and decision.active
    assert seen == []  # already halted: nothing new to announce
    reopened.dispose()


def test_books_are_independent(sqlite_db: Database) -> None:
    paper, _ = make_switch(sqlite_db, "paper")
    broker, _ = make_switch(sqlite_db, "broker")

    paper.trip("paper only", T0, actor="alice")

    assert paper.status()[0]
    assert broker.evaluate(Decimal(1), T0).active is False


def test_disabled_guardrails_never_trip_but_a_manual_trip_still_halts(sqlite_db: Database) -> None:
    switch, _ = make_switch(sqlite_db, enabled=False)
    switch.evaluate(Decimal("10000"), T0)

    crash = switch.evaluate(Decimal("1"), T0 + timedelta(minutes=1))
    switch.trip("by hand", T0 + timedelta(minutes=2), actor="alice")

    assert not crash.active
    assert switch.evaluate(Decimal("1"), T0 + timedelta(minutes=3)).active


def test_turning_guardrails_off_releases_an_automatic_halt(sqlite_db: Database) -> None:
    on, _ = make_switch(sqlite_db)
    add_snapshot(sqlite_db, "paper", T0 - timedelta(hours=10), Decimal("10000"))
    on.evaluate(Decimal("9000"), T0)
    off, seen = make_switch(sqlite_db, enabled=False)

    decision = off.evaluate(Decimal("9000"), T0 + timedelta(minutes=1))

    assert not decision.active
    assert [t.kind for t in seen] == ["reset"]


def test_naive_time_and_empty_reason_are_refused(sqlite_db: Database) -> None:
    switch, _ = make_switch(sqlite_db)

    with pytest.raises(ValueError, match="timezone-aware"):
        switch.evaluate(Decimal(1), datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="reason must not be empty"):
        switch.trip("  ", T0, actor="alice")


def test_switches_racing_on_one_book_in_threads_announce_a_trigger_once(
    postgres_db: Database,
) -> None:
    switches = [make_switch(postgres_db) for _ in range(4)]
    add_snapshot(postgres_db, "paper", T0 - timedelta(hours=10), Decimal("10000"))
    switches[0][0].evaluate(Decimal("10000"), T0)  # creates the row
    barrier = threading.Barrier(len(switches))

    def crash(switch: KillSwitch) -> bool:
        barrier.wait()
        return switch.evaluate(Decimal("9000"), T0 + timedelta(minutes=1)).active

    with ThreadPoolExecutor(len(switches)) as pool:
        results = list(pool.map(crash, [s for s, _ in switches]))

    assert results == [True] * len(switches)
    assert sum(len(seen) for _, seen in switches) == 1
    assert [e.kind for e in switches[0][0].history(5)] == ["trigger"]
