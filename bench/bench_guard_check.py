"""Benchmark: guard_check (``KillSwitch.evaluate``) time against snapshot history size.

Every query of guard_check is an indexed read with LIMIT, so its time should not grow with the
number of snapshot rows. This fills ``portfolio_snapshots`` with N rows (and N/10 orders and
fills, every other fill a closed trade) for one book, on SQLite and on PostgreSQL, then times
many evaluations and prints the median in µs and the ratio between the largest and smallest N.

    .venv/bin/python bench/bench_guard_check.py                      # 1,000 and 1,000,000 rows
    .venv/bin/python bench/bench_guard_check.py --sizes 1000 100000 --evals 300 --sqlite-only

PostgreSQL: ``$OTONOM_BENCH_PG_ADMIN_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
postgres``); a throw-away database is created and dropped. Unreachable → skipped, with the reason.
Run by hand; ``tests/guardrails/test_bench_guard_check.py`` only runs it with tiny sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, insert, text

from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.persistence import Database, FillRecord, OrderRecord, PortfolioSnapshot

BOOK = "paper"
BATCH = 50_000
PG_ADMIN = os.environ.get(
    "OTONOM_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def fill_history(db: Database, rows: int) -> float:
    """Insert ``rows`` snapshots (one a minute, ending now) and rows/10 order+fill pairs, in big
    core batches; returns the seconds it took."""
    started = time.perf_counter()
    snap = PortfolioSnapshot.__table__
    first = NOW - timedelta(minutes=rows)
    peak = Decimal(0)
    with db.engine.begin() as conn:
        for start in range(0, rows, BATCH):
            batch = []
            for i in range(start, min(rows, start + BATCH)):
                equity = Decimal(10_000 + (i % 997) - 400)
                peak = max(peak, equity)
                batch.append(
                    {
                        "book": BOOK,
                        "run_id": None,
                        "taken_at": first + timedelta(minutes=i),
                        "equity": equity,
                        "cash": equity,
                        "peak_equity": peak,
                        "positions_json": "[]",
                    }
                )
            conn.execute(insert(snap), batch)
        trades = max(1, rows // 10)
        order_t, fill_t = OrderRecord.__table__, FillRecord.__table__
        for start in range(0, trades, BATCH):
            ids = range(start, min(trades, start + BATCH))
            conn.execute(
                insert(order_t),
                [
                    {
                        "id": i + 1,
                        "client_order_id": f"b-{i}",
                        "run_id": None,
                        "book": BOOK,
                        "mode": "paper",
                        "symbol": "BTC/USDT",
                        "side": "buy" if i % 2 else "sell",
                        "order_type": "market",
                        "status": "filled",
                        "reduce_only": False,
                        "requested_qty": Decimal("0.01"),
                        "requested_price": None,
                        "signal_price": None,
                        "filled_qty": Decimal("0.01"),
                        "avg_fill_price": Decimal(50_000),
                        "fee": Decimal(0),
                        "fee_currency": None,
                        "exchange_order_id": None,
                        "error": None,
                        "created_at": first,
                        "updated_at": first,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(fill_t),
                [
                    {
                        "id": i + 1,
                        "order_id": i + 1,
                        "book": BOOK,
                        "symbol": "BTC/USDT",
                        "side": "buy" if i % 2 else "sell",
                        "quantity": Decimal("0.01"),
                        "price": Decimal(50_000),
                        "fee": Decimal(0),
                        "fee_currency": None,
                        # alternate wins and losses, with opening fills in between
                        "realized_pnl": None if i % 2 else Decimal(1 if i % 4 else -1),
                        "exchange_trade_id": None,
                        "filled_at": first,
                    }
                    for i in ids
                ],
            )
        if db.dialect == "postgresql":
            for table in ("orders", "fills"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
    # Like a long-running daemon's database: statistics fresh, the bulk load out of the WAL.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if db.dialect == "postgresql":
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def time_guard_checks(dbs: list[Database], evaluations: int, rounds: int = 10) -> list[float]:
    """Median µs of ``KillSwitch.evaluate`` per database.

    The databases are timed in interleaved rounds (a slice of every size in each round), so a
    change in background load on a shared machine hits every size alike instead of skewing the
    ratio.
    """
    switches = [KillSwitch(db, GuardrailConfig(), BOOK) for db in dbs]
    equity = Decimal(9_900)
    for switch in switches:
        for _ in range(20):
            switch.evaluate(equity, NOW)  # warm-up: caches, prepared statements, the state row
    samples: list[list[float]] = [[] for _ in dbs]
    per_round = max(1, evaluations // rounds)
    for _ in range(rounds):
        for index, switch in enumerate(switches):
            for _ in range(per_round):
                started = time.perf_counter_ns()
                switch.evaluate(equity, NOW)
                samples[index].append((time.perf_counter_ns() - started) / 1_000)
    return [statistics.median(s) for s in samples]


@contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
        db = Database(Path(tmp) / "bench.db")
        try:
            yield db
        finally:
            db.dispose()


@contextmanager
def postgres_database() -> Iterator[Database]:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"otonom_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 1_000_000])
    parser.add_argument("--evals", type=int, default=500, help="timed evaluations per size")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    console = Console()
    backends = [("SQLite", sqlite_database)]
    if not args.sqlite_only:
        try:
            with create_engine(PG_ADMIN).connect():
                backends.append(("PostgreSQL", postgres_database))
        except Exception as exc:  # noqa: BLE001 - any failure to connect means "skip PG"
            console.print(
                f"PostgreSQL skipped: {PG_ADMIN.split('@')[-1]} unreachable ({type(exc).__name__})"
            )
    table = Table(title=f"guard_check median over {args.evals} evaluations")
    for column in ("database", "snapshot rows", "fill rows", "fill time (s)", "median µs"):
        table.add_column(column, justify="right")
    table.add_column(f"ratio {args.sizes[-1]:,}/{args.sizes[0]:,}", justify="right")
    for name, factory in backends:
        with ExitStack() as stack:
            dbs, fill_times = [], []
            for size in args.sizes:
                db = stack.enter_context(factory())
                fill_times.append(fill_history(db, size))
                dbs.append(db)
                console.print(
                    f"{name}: {size:,} rows written in {fill_times[-1]:.1f} s", style="dim"
                )
            medians = time_guard_checks(dbs, args.evals)
        for size, filled, median in zip(args.sizes, fill_times, medians, strict=True):
            ratio = f"{median / medians[0]:.2f}×" if size == args.sizes[-1] else ""
            table.add_row(
                name,
                f"{size:,}",
                f"{max(1, size // 10):,}",
                f"{filled:.1f}",
                f"{median:,.0f}",
                ratio,
            )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
