"""Benchmark: what one writer per account costs a cycle.

Times, on SQLite and on PostgreSQL, the work ``run_cycle`` adds before and after the five steps:
taking and giving back the account's lease (with its holder row), registering the account,
closing dead runs and the recovery query over the journal. Then a whole PAPER ``run_once()``
(one symbol, synthetic data) for scale, and prints the lease's share of it.

    .venv/bin/python bench/bench_lease.py              # 200 rounds each
    .venv/bin/python bench/bench_lease.py --rounds 50 --sqlite-only

PostgreSQL: ``$OTONOM_BENCH_PG_ADMIN_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
postgres``); a throw-away database is created and dropped. Unreachable → skipped, with the reason.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from otonom_trader.accounts import AccountLease
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.daemon.cycle import abandon_dead_runs

PG_ADMIN = os.environ.get(
    "OTONOM_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ONE_SYMBOL = """name: bench
version: "1.0"
symbols: [BTC/USDT]
timeframe: 1h
entry:
  - {indicator: sma_cross, fast: 5, slow: 20, direction: up}
exit:
  - {indicator: sma_cross, fast: 5, slow: 20, direction: down}
sizing: {mode: pct_equity, value: 10}
"""


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A throw-away PostgreSQL database URL, or None (with the reason printed)."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"otonom_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - unreachable server: skip PostgreSQL
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        admin.dispose()
        yield None
        return
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def median_ms(rounds: int, work: Callable[[], object]) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(url: str, strategy: Path, rounds: int) -> dict[str, float]:
    daemon = TradingDaemon(
        db_path=url,
        strategy_path=strategy,
        mode=ExecutionMode.PAPER,
        overrides=["alerts.enabled=false"],
    )
    ctx = daemon.context
    daemon.run_once()  # warm: migrations, markets, account row

    def lease_cycle() -> None:
        lease = AccountLease(ctx.db, ctx.account.account_id, owner="run bench", wait_seconds=0)
        lease.acquire()
        lease.release()

    results = {
        "lease (take + give back)": median_ms(rounds, lease_cycle),
        "dead runs + recovery query": median_ms(
            rounds, lambda: (abandon_dead_runs(ctx, "bench"), ctx.engine.recover())
        ),
        "whole PAPER run_once()": median_ms(max(10, rounds // 10), daemon.run_once),
    }
    daemon.close()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    console = Console()
    table = Table(title=f"per-cycle cost of one writer per account (medians, {args.rounds} rounds)")
    for column in ("database", "step", "ms", "share of a PAPER cycle"):
        table.add_column(column, justify="right" if column != "step" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        strategy = Path(tmp) / "bench.yaml"
        strategy.write_text(ONE_SYMBOL)
        os.environ["OTONOM_HOME"] = tmp
        backends: list[tuple[str, str | None]] = [("SQLite", f"sqlite:///{tmp}/bench.db")]
        with postgres_database() as pg_url:
            if not args.sqlite_only:
                backends.append(("PostgreSQL", pg_url))
            for name, url in backends:
                if url is None:
                    continue
                results = measure(url, strategy, args.rounds)
                cycle = results["whole PAPER run_once()"]
                for step, ms in results.items():
                    share = "" if step.startswith("whole") else f"{ms / cycle:.1%}"
                    table.add_row(name, step, f"{ms:.2f}", share)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
