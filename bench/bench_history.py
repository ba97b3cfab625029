"""Benchmark: does a cycle cost more as history grows?

For each database (SQLite in a temporary directory; PostgreSQL on ``--pg-admin-url`` when it
answers, else skipped with the reason), and for two cycles —

* PAPER: the baseline strategy on synthetic data (the default configuration);
* SHADOW with ``broker=sim``: a strategy that trades every cycle on two symbols, so the
  simulated exchange books orders every cycle —

it times the cycle (``TradingDaemon.run_once()``, median of ``--runs`` after three warm-ups,
the two databases' cycles interleaved) on an empty database and on one that already holds a
long history, and prints history / empty
(target ≤ 1.2). The history is bulk-inserted before the first cycle, not made by the app:
``--past-runs`` daemon runs (100,000), ``--snapshots`` portfolio snapshots (1,000,000; half of
them of the paper book, the rest spread over 100 other books) and, for SHADOW, a simulated
exchange account (the pre-database ``.sim-exchange.json``) holding ``--sim-orders`` past
orders (100,000).

    .venv/bin/python bench/bench_history.py [--runs 7] [--skip-pg]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

PG_ADMIN_URL = os.environ.get(
    "OTONOM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TARGET = 1.2


def _history_times(count: int, newest: datetime) -> Iterator[datetime]:
    """``count`` instants, oldest first, one minute apart, ending a day before ``newest``."""
    start = newest - timedelta(days=1) - timedelta(minutes=count)
    for i in range(count):
        yield start + timedelta(minutes=i)


def _run_rows(count: int, now: datetime) -> Iterator[tuple[object, ...]]:
    summary = json.dumps({"run_id": "past", "mode": "paper", "signals": [], "orders": []})
    for i, started in enumerate(_history_times(count, now)):
        yield (
            f"past-{i:07d}",
            started,
            started + timedelta(seconds=2),
            "succeeded" if i % 50 else "failed",
            "paper" if i % 2 else "shadow",
            "sim (simulated exchange)",
            "synthetic",
            "0" * 32,
            "baseline",
            "1.0",
            "paper" if i % 3 else None,
            summary,
        )


def _snapshot_rows(count: int, now: datetime) -> Iterator[tuple[object, ...]]:
    for i, taken in enumerate(_history_times(count, now)):
        book = "paper" if i % 2 else f"past-book-{i % 100:02d}"
        yield (book, f"past-{i % 100_000:07d}", taken, "10000", "10000", "10000", "[]")


RUN_COLUMNS = (
    "run_id, started_at, finished_at, status, mode, broker, data_source, config_hash, "
    "strategy_name, strategy_version, account_id, summary_json"
)
SNAPSHOT_COLUMNS = "book, run_id, taken_at, equity, cash, peak_equity, positions_json"


def _fill_sqlite(path: Path, runs: int, snapshots: int, now: datetime) -> None:
    import sqlite3

    def text(value: object) -> object:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            f"INSERT INTO daemon_runs ({RUN_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (tuple(text(v) for v in row) for row in _run_rows(runs, now)),
        )
        conn.executemany(
            f"INSERT INTO portfolio_snapshots ({SNAPSHOT_COLUMNS}) VALUES ({', '.join('?' * 7)})",
            (tuple(text(v) for v in row) for row in _snapshot_rows(snapshots, now)),
        )
    conn.execute("ANALYZE")
    conn.close()


def _fill_postgres(url: str, runs: int, snapshots: int, now: datetime) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY daemon_runs ({RUN_COLUMNS}) FROM STDIN") as copy:
                for row in _run_rows(runs, now):
                    copy.write_row(row)
            with cur.copy(f"COPY portfolio_snapshots ({SNAPSHOT_COLUMNS}) FROM STDIN") as copy:
                for row in _snapshot_rows(snapshots, now):
                    copy.write_row(row)
        conn.commit()
        conn.execute("ANALYZE")


def _write_sim_account(path: Path, orders: int, now: datetime) -> None:
    """A simulated exchange account as the pre-database versions kept it, with ``orders`` past
    filled orders (each later version carries such a file over once)."""
    results = {}
    for i in range(orders):
        cid = f"past-{i:07d}"
        results[cid] = {
            "order_id": f"sim-{i + 1}",
            "client_order_id": cid,
            "symbol": "BTC/USDT",
            "side": "buy" if i % 2 == 0 else "sell",
            "quantity": "0.001",
            "price": "60000",
            "requested": "0.001",
            "status": "filled",
            "fee": "0.06",
            "latency_ms": 40.0,
            "timestamp": (now - timedelta(days=2)).isoformat(),
        }
    state = {
        "balances": {"USDT": "10000"},
        "results": results,
        "next_id": orders + 1,
        "resting": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))


def _interleaved_ms(
    setups: dict[str, tuple[Path, list[str]]], runs: int, warmup: int = 3
) -> dict[str, float]:
    """Median cycle time of each setup (``name → (OTONOM_HOME, overrides)``), the setups' cycles
    interleaved so that a burst of load on the machine hits each alike. The warm-up cycles
    absorb one-time costs (the process's imports, an old sim account file carried over)."""
    from otonom_trader.daemon import TradingDaemon

    daemons = {}
    for name, (home, overrides) in setups.items():
        os.environ["OTONOM_HOME"] = str(home)
        daemons[name] = TradingDaemon(overrides=overrides)
        daemons[name].context  # noqa: B018 - built now, with this OTONOM_HOME
    samples: dict[str, list[float]] = {name: [] for name in setups}
    try:
        for i in range(warmup + runs):
            for name, daemon in daemons.items():
                os.environ["OTONOM_HOME"] = str(setups[name][0])
                start = time.perf_counter()
                daemon.run_once()
                if i >= warmup:
                    samples[name].append((time.perf_counter() - start) * 1000)
    finally:
        for daemon in daemons.values():
            daemon.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def _pg_database(admin_url: str) -> tuple[str, Callable[[], None]] | str:
    """A new PostgreSQL database and how to drop it, or why PostgreSQL is skipped."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"otonom_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to measure
        return f"PostgreSQL skipped: {admin_url} did not answer ({type(exc).__name__})"

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="measured cycles per variant")
    parser.add_argument("--past-runs", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=1_000_000)
    parser.add_argument("--sim-orders", type=int, default=100_000)
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="otonom-bench-history-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from otonom_trader.config.compose import PROJECT_ROOT
    from otonom_trader.config.validation import sim_account_path
    from otonom_trader.persistence.database import Database

    always_trade = PROJECT_ROOT / "tests" / "fixtures" / "always_buy_v1.0.yaml"
    variants = {
        "PAPER": [],
        "SHADOW sim": ["mode=shadow", "broker=sim", f"strategy.path={always_trade}"],
    }
    now = datetime.now(UTC)
    results: list[tuple[str, str, float, float]] = []
    notes: list[str] = []
    drops: list[Callable[[], None]] = []
    backends = ["SQLite"]
    if args.skip_pg:
        notes.append("PostgreSQL skipped: --skip-pg")
    else:
        probe = _pg_database(args.pg_admin_url)
        if isinstance(probe, str):
            notes.append(probe)
        else:
            probe[1]()
            backends.append("PostgreSQL")

    print(
        f"history: {args.past_runs:,} daemon runs, {args.snapshots:,} snapshots, "
        f"{args.sim_orders:,} past sim orders; {args.runs} cycles per variant (median)",
        flush=True,
    )
    try:
        for backend in backends:
            homes = {state: work / f"{backend}-{state}-home" for state in ("empty", "history")}
            urls: dict[str, str] = {}
            for state, home in homes.items():
                os.environ["OTONOM_HOME"] = str(home)
                if backend == "SQLite":
                    (work / state).mkdir()
                    urls[state] = str(work / state / "otonom.db")
                else:
                    made = _pg_database(args.pg_admin_url)
                    assert not isinstance(made, str), made
                    urls[state], drop = made
                    drops.append(drop)
                Database(urls[state]).dispose()  # migrated: the history goes into its tables
            started = time.perf_counter()
            os.environ["OTONOM_HOME"] = str(homes["history"])
            if backend == "SQLite":
                _fill_sqlite(Path(urls["history"]), args.past_runs, args.snapshots, now)
            else:
                _fill_postgres(urls["history"], args.past_runs, args.snapshots, now)
            _write_sim_account(sim_account_path(urls["history"]), args.sim_orders, now)
            print(f"  {backend}: history inserted in {time.perf_counter() - started:.1f} s")
            for name, overrides in variants.items():
                timings = _interleaved_ms(
                    {
                        state: (homes[state], [*overrides, f"db.url={urls[state]}"])
                        for state in homes
                    },
                    args.runs,
                )
                results.append((backend, name, timings["empty"], timings["history"]))
                print(f"  {backend} {name}: measured", flush=True)
    finally:
        for drop in drops:
            drop()

    print(f"{'database':<12}{'cycle':<12}{'empty ms':>10}{'history ms':>12}{'ratio':>8}  target")
    for backend, name, empty, history in results:
        ratio = history / empty
        verdict = "met" if ratio <= TARGET else "NOT met"
        line = f"{backend:<12}{name:<12}{empty:>10.1f}{history:>12.1f}{ratio:>8.2f}"
        print(f"{line}  <= {TARGET} {verdict}")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
