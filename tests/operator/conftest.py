"""Operator fixtures: the traded database (built once per session, copied per test) and the
log file the CLI attaches, detached after each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from traded_books import CYCLES, START, TradedDatabase, run_shadow_cycles

from otonom_trader.testkit.clock import ManualClock


@pytest.fixture(scope="session")
def traded_template(tmp_path_factory: pytest.TempPathFactory) -> TradedDatabase:
    root = tmp_path_factory.mktemp("traded")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTONOM_HOME", str(root / "home"))
        clock = ManualClock(START)
        daemon, _ = run_shadow_cycles(root / "trader.db", clock, CYCLES)
        account = daemon.context.account
        daemon.close()
    return TradedDatabase(root / "trader.db", account.shadow_paper_book, account.book, clock.now)


@pytest.fixture
def traded(traded_template: TradedDatabase, tmp_path: Path) -> TradedDatabase:
    """A private copy of the traded database (a test may trip switches or add cycles)."""
    copy = tmp_path / "trader.db"
    for suffix in ("", "-wal", "-shm"):  # SQLite in WAL mode: the log belongs to the file
        source = traded_template.path.with_name(traded_template.path.name + suffix)
        if source.exists():
            shutil.copy(source, copy.with_name(copy.name + suffix))
    return TradedDatabase(
        copy, traded_template.paper_book, traded_template.broker_book, traded_template.last_cycle_at
    )
