"""Flat cost as history grows: every read a cycle makes of the history tables is an index probe,
never a scan or a sort of the whole table, and the bounded reads return what the unbounded ones
did.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from otonom_trader.alerts.health import run_activity
from otonom_trader.daemon import TradingDaemon
from otonom_trader.persistence import DaemonRun, Database, PortfolioSnapshot
from otonom_trader.testkit.clock import ManualClock

HISTORY_TABLES = ("daemon_runs", "portfolio_snapshots")
TEN_K = Decimal("10000")
ALWAYS_TRADE = Path(__file__).resolve().parents[1] / "fixtures" / "always_buy_v1.0.yaml"


def _run(run_id: str, started: datetime, finished: datetime | None, status: str) -> DaemonRun:
    return DaemonRun(
        run_id=run_id,
        started_at=started,
        finished_at=finished,
        status=status,
        mode="paper",
        broker="sim",
        data_source="synthetic",
        config_hash="0" * 32,
        strategy_name="baseline",
        strategy_version="1.0",
    )


def _add_history(db: Database, runs: int, snapshots: int, newest: datetime) -> None:
    with db.session() as session:
        for i in range(runs):
            started = newest - timedelta(hours=runs - i)
            status = "succeeded" if i % 7 else "failed"
            session.add(_run(f"past-{i}", started, started + timedelta(seconds=3), status))
        for i in range(snapshots):
            session.add(
                PortfolioSnapshot(
                    book="paper" if i % 2 else f"other-{i % 9}",
                    taken_at=newest - timedelta(minutes=snapshots - i),
                    equity=TEN_K,
                    cash=TEN_K,
                    peak_equity=TEN_K,
                )
            )


def _history_plans(db: Database, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """``(statement, plan line)`` for each plan step of each statement that reads a history
    table, from SQLite's ``EXPLAIN QUERY PLAN`` with the statement's own parameters."""
    found = []
    with db.engine.connect() as conn:
        for statement, params in statements:
            if not any(table in statement for table in HISTORY_TABLES):
                continue
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            found.extend((statement, str(row[-1])) for row in rows)
    return found


@pytest.mark.parametrize("mode", ["paper", "shadow"])
def test_cycle_when_history_exists_then_every_history_read_is_an_index_probe(
    tmp_path: Path, mode: str
) -> None:
    clock = ManualClock(datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC))
    db_path = tmp_path / "trader.db"
    overrides = [f"db.url={db_path}", f"mode={mode}"]
    if mode == "shadow":
        overrides += ["broker=sim", f"strategy.path={ALWAYS_TRADE}"]
    daemon = TradingDaemon(overrides=overrides, clock=clock)
    _add_history(daemon.context.db, runs=300, snapshots=600, newest=clock() - timedelta(days=2))
    daemon.run_once()  # the first cycle registers the account and books
    clock.advance()
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(daemon.context.db.engine, "before_cursor_execute", record)
    try:
        daemon.run_once()
    finally:
        event.remove(daemon.context.db.engine, "before_cursor_execute", record)
        plans = _history_plans(daemon.context.db, statements)
        daemon.close()

    assert plans, "the cycle read no history table: the capture is broken"
    full_scans = [
        (statement, plan)
        for statement, plan in plans
        if re.match(r"SCAN (daemon_runs|portfolio_snapshots)$", plan) or "TEMP B-TREE" in plan
    ]
    assert full_scans == []
    # A read of a history table is bounded: LIMIT, or a lookup by a unique key.
    unbounded = {
        statement
        for statement, plan in plans
        if statement.lstrip().upper().startswith("SELECT")
        and " LIMIT " not in statement.upper()
        and not re.search(r"\((run_id|rowid)=\?\)", plan)
    }
    assert unbounded == set()


def _reference_activity(db: Database, exclude: str | None) -> tuple[Any, Any, Any]:
    """What the health check read before it was bounded: max(), min() and a full sort."""
    with db.session() as session:
        completed = select(func.max(DaemonRun.finished_at)).where(DaemonRun.status == "succeeded")
        if exclude is not None:
            completed = completed.where(DaemonRun.run_id != exclude)
        return (
            session.scalar(completed),
            session.scalar(select(func.min(DaemonRun.started_at))),
            session.scalar(
                select(DaemonRun.status).order_by(DaemonRun.started_at.desc(), DaemonRun.id.desc())
            ),
        )


def test_run_activity_when_bounded_then_same_answers_as_the_full_scans(any_db: Database) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    with any_db.session() as session:
        rows = [
            # (run id, started, finished, status): a tie in started_at (the later id wins),
            # a succeeded run without a finish time, the newest completion excluded below.
            ("a", t0, t0 + timedelta(minutes=1), "succeeded"),
            ("b", t0 + timedelta(hours=1), None, "succeeded"),
            ("c", t0 + timedelta(hours=2), t0 + timedelta(hours=2, minutes=1), "failed"),
            ("d", t0 + timedelta(hours=3), t0 + timedelta(hours=3, minutes=1), "succeeded"),
            ("e", t0 + timedelta(hours=3), None, "running"),
        ]
        for row in rows:
            session.add(_run(*row))

    for exclude in (None, "d", "a", "missing"):
        with any_db.session() as session:
            activity = run_activity(session, exclude_run_id=exclude)
        assert (
            activity.last_completed_at,
            activity.first_started_at,
            activity.last_status,
        ) == _reference_activity(any_db, exclude), exclude


def test_run_activity_when_no_runs_then_nothing(any_db: Database) -> None:
    with any_db.session() as session:
        activity = run_activity(session)
    assert (activity.last_completed_at, activity.first_started_at, activity.last_status) == (
        None,
        None,
        None,
    )


def test_migration_when_applied_then_runs_are_indexed_by_start(any_db: Database) -> None:
    from sqlalchemy import inspect

    indexes = {
        ix["name"]: ix["column_names"] for ix in inspect(any_db.engine).get_indexes("daemon_runs")
    }
    assert indexes["ix_daemon_runs_started_id"] == ["started_at", "id"]
    assert "0007_history_indexes" in any_db.current_revisions()
