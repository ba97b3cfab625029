"""The database: migrations from empty, exact round trips, SQLite settings, newer-schema refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from otonom_trader.persistence import (
    BookAccount,
    DaemonRun,
    Database,
    DatabaseError,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)
from otonom_trader.persistence.registry import metadata

AWKWARD = Decimal("12345678901234.123456789012345678")  # more digits than a double holds


def test_migrations_create_every_table_from_empty(any_db: Database) -> None:
    tables = set(inspect(any_db.engine).get_table_names())

    assert {t.name for t in metadata.sorted_tables} <= tables
    assert any_db.current_revisions() == {
        rev for rev in any_db.known_revisions() if _is_head(any_db, rev)
    }


def _is_head(db: Database, revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from otonom_trader.persistence.database import _alembic_config

    return revision in ScriptDirectory.from_config(_alembic_config(db.url)).get_heads()


def test_migrate_twice_is_a_no_op(any_db: Database) -> None:
    before = any_db.current_revisions()

    any_db.migrate()

    assert any_db.current_revisions() == before


def test_order_fill_and_snapshot_round_trip_exactly(any_db: Database) -> None:
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with any_db.session() as session:
        order = OrderRecord(
            client_order_id="ot-roundtrip-p",
            run_id="r1",
            book="paper",
            mode="paper",
            symbol="BTC/USDT",
            side="buy",
            order_type="market",
            status="filled",
            requested_qty=Decimal("0.00012345"),
            requested_price=None,
            signal_price=AWKWARD,
            filled_qty=Decimal("0.00012345"),
            avg_fill_price=Decimal("50000.01"),
            fee=Decimal("0.00617250123"),
            created_at=when,
            updated_at=when,
        )
        session.add(order)
        session.flush()
        session.add(
            FillRecord(
                order_id=order.id,
                book="paper",
                symbol="BTC/USDT",
                side="buy",
                quantity=Decimal("0.00012345"),
                price=Decimal("50000.01"),
                fee=Decimal("0.00617250123"),
                realized_pnl=Decimal("-0.1"),
                filled_at=when,
            )
        )
        session.add(
            PortfolioSnapshot(
                book="paper",
                taken_at=when,
                equity=AWKWARD,
                cash=AWKWARD,
                peak_equity=AWKWARD,
                positions_json="[]",
            )
        )

    with any_db.session() as session:
        order = session.scalars(select(OrderRecord)).one()
        fill = session.scalars(select(FillRecord)).one()
        snap = session.scalars(select(PortfolioSnapshot)).one()

    assert order.signal_price == AWKWARD and str(order.signal_price) == str(AWKWARD)
    assert order.fee == Decimal("0.00617250123")
    assert order.created_at == when and order.created_at.tzinfo is not None
    assert fill.realized_pnl == Decimal("-0.1")
    assert snap.equity == AWKWARD


def test_timestamps_in_other_zones_are_stored_as_utc(any_db: Database) -> None:
    local = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=3)))
    with any_db.session() as session:
        session.add(
            DaemonRun(
                run_id="tz",
                started_at=local,
                mode="paper",
                broker="none",
                data_source="synthetic",
                config_hash="h",
                strategy_name="s",
                strategy_version="1",
            )
        )

    with any_db.session() as session:
        run = session.scalars(select(DaemonRun)).one()

    assert run.started_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_naive_timestamp_and_float_money_are_refused(sqlite_db: Database) -> None:
    with pytest.raises(Exception, match="timezone-aware"), sqlite_db.session() as session:
        session.add(
            DaemonRun(
                run_id="n",
                started_at=datetime(2026, 1, 1),
                mode="paper",
                broker="-",
                data_source="-",
                config_hash="-",
                strategy_name="-",
                strategy_version="-",
            )
        )
        session.flush()
    with pytest.raises(Exception, match="Decimal"), sqlite_db.session() as session:
        session.add(BookAccount(book="x", quote_asset="USDT", cash=0.1, initial_cash=Decimal(1)))  # type: ignore[arg-type]
        session.flush()


def test_client_order_id_is_unique(any_db: Database) -> None:
    def order() -> OrderRecord:
        return OrderRecord(
            client_order_id="ot-dup",
            book="paper",
            mode="paper",
            symbol="BTC/USDT",
            side="buy",
            order_type="market",
            status="journaled",
            requested_qty=Decimal(1),
            requested_price=None,
            signal_price=None,
            avg_fill_price=None,
        )

    with any_db.session() as session:
        session.add(order())
    with pytest.raises(Exception, match="(?i)unique|duplicate"), any_db.session() as session:
        session.add(order())
        session.flush()


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(tmp_path / "wal.db", busy_timeout_ms=1234)
    with db.engine.connect() as conn:
        mode = conn.execute(text("PRAGMA journal_mode")).scalar()
        timeout = conn.execute(text("PRAGMA busy_timeout")).scalar()
    db.dispose()

    assert mode == "wal"
    assert timeout == 1234


def test_default_database_lives_under_otonom_home(isolated_home: Path) -> None:
    db = Database(None)
    db.dispose()

    assert (isolated_home / "otonom.db").is_file()


def test_newer_schema_is_refused_not_downgraded(tmp_path: Path) -> None:
    db = Database(tmp_path / "newer.db")
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO alembic_version (version_num) VALUES ('9999_from_the_future')")
        )
    db.dispose()

    with pytest.raises(DatabaseError, match="9999_from_the_future.*newer"):
        Database(tmp_path / "newer.db")


def test_unreachable_postgres_is_one_clear_error() -> None:
    with pytest.raises(DatabaseError, match="cannot reach database"):
        Database("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_a_database_damaged_after_a_passed_check_is_checked_again(tmp_path: Path) -> None:
    """Preflight remembers a passed check only while the file and its log stay as they were."""
    from otonom_trader.persistence.database import DatabaseError, preflight

    path = tmp_path / "t.db"
    Database(path).dispose()
    preflight(path)
    preflight(path)  # unchanged: remembered
    path.write_bytes(b"this is not a SQLite database, it only has its name" * 100)

    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        preflight(path)
