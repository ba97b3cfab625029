"""One writer per account: two cycles started together on one account never send an intent
twice, and the one that does not trade says who holds the account.

Each round pins the overlap down instead of hoping for it: the local Binance exchange executes
the winner's first order and holds its reply (``slow_reply``) until the other cycle has ended,
so the two cycles are certainly running at the same time, whatever the machine's load. Counted
on the exchange's side: every client order id once, one BUY per symbol.

Through the CLI (two real ``otonom-trader daemon-once`` processes) and through the Prefect flow
(two flow runs at once in one process), each on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from otonom_trader.accounts import Account, key_fingerprint
from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence import Database
from otonom_trader.persistence.models import DaemonRun

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY, SECRET = "overlap-test-key-0123456789", "overlap-test-secret-0123456789"
ROUNDS = int(os.environ.get("OTONOM_OVERLAP_ROUNDS", "20"))
EXIT_ACCOUNT_BUSY = 3
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _overrides(db_url: str, base_url: str, label: str) -> list[str]:
    return [
        "mode=shadow",
        "broker=binance_testnet",
        f"broker.base_url={base_url}",
        f"broker.label={label}",
        # The held reply must outlast the slower cycle's start-up on a loaded machine.
        "broker.timeout_ms=180000",
        "data=exchange",
        f"data.exchange_base_url={base_url}",
        f"strategy.path={FIXTURES / 'always_buy_v1.0.yaml'}",
        f"db.url={db_url}",
        "alerts.enabled=false",
        "guardrails=off",
        "execution.lease_wait_seconds=1",
    ]


def _exchange() -> LocalBinanceExchange:
    return LocalBinanceExchange(
        api_key=KEY,
        api_secret=SECRET,
        balances={"USDT": Decimal("10000")},
        prices={"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
    )


def _exchange_counts(exchange: LocalBinanceExchange) -> tuple[int, int]:
    """(client ids sent more than once, BUY orders beyond one per symbol)."""
    ours = [o for o in exchange.orders if o.client_order_id.startswith("ot-")]
    per_id = Counter(o.client_order_id for o in ours)
    buys = Counter(o.symbol for o in ours if o.side == "BUY")
    return sum(1 for n in per_id.values() if n > 1), sum(n - 1 for n in buys.values() if n > 1)


def _run_pair(
    start: Callable[[str, str], list[Callable[[], Any]]], label: str
) -> tuple[LocalBinanceExchange, str, list[Any]]:
    """Start two cycles; hold the first order's reply until one cycle has ended; finish."""
    with _exchange() as exchange:
        base_url = exchange.base_url
        fault = exchange.inject_fault(
            "slow_reply", path="/api/v3/order", method="POST", seconds=120
        )
        waits = start(base_url, label)
        results: list[Any] = [None, None]
        done = [threading.Event(), threading.Event()]

        def wait(index: int) -> None:
            try:
                results[index] = waits[index]()
            finally:
                done[index].set()

        threads = [threading.Thread(target=wait, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        try:
            assert fault.executed.wait(timeout=180), "no cycle sent an order"
            # The winner is stuck on the held reply: the other cycle must end on its own.
            deadline = time.monotonic() + 180
            while not any(event.is_set() for event in done) and time.monotonic() < deadline:
                done[0].wait(0.05)
            assert any(event.is_set() for event in done), "the second cycle never ended"
        finally:
            fault.release()
            for thread in threads:
                thread.join(timeout=180)
        return exchange, base_url, results


def _cli_starter(db_url: str, home: Path) -> Callable[[str, str], list[Callable[[], Any]]]:
    def start(base_url: str, label: str) -> list[Callable[[], Any]]:
        command = [sys.executable, "-m", "otonom_trader.cli"]
        for override in _overrides(db_url, base_url, label):
            command += ["-o", override]
        command += ["daemon-once", "--mode", "shadow"]
        env = dict(os.environ)
        env.update(
            OTONOM_HOME=str(home),
            BINANCE_TESTNET_API_KEY=KEY,
            BINANCE_TESTNET_API_SECRET=SECRET,
            COLUMNS="200",
        )
        children = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]

        def waiter(child: subprocess.Popen[bytes]) -> Callable[[], Any]:
            def wait() -> tuple[int, str]:
                _, err = child.communicate(timeout=180)
                return child.returncode, err.decode()

            return wait

        return [waiter(child) for child in children]

    return start


def _check_round(
    exchange: LocalBinanceExchange, base_url: str, db_url: str, label: str, losers: list[str]
) -> dict[str, int]:
    sent_twice, extra_buys = _exchange_counts(exchange)
    account = Account("binance", "testnet", base_url, label, key_fingerprint(KEY))
    db = Database(db_url)
    try:
        with db.session() as session:
            statuses = Counter(
                session.scalars(
                    select(DaemonRun.status).where(DaemonRun.account_id == account.account_id)
                )
            )
    finally:
        db.dispose()
    return {
        "sent_twice": sent_twice,
        "extra_buys": extra_buys,
        "succeeded": statuses["succeeded"],
        "skipped": statuses["skipped"],
        "losers_explained": sum(1 for text in losers if "leased by run" in text or "limit" in text),
    }


def _load_flow() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "otonom_flows_daemon_overlap", PROJECT_ROOT / "flows" / "daemon.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _database_urls(tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'overlap.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_cli_cycles_on_one_account_never_send_an_intent_twice(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db_url = _database_urls(tmp_path, request, backend)
    totals = Counter[str]()
    for n in range(ROUNDS):
        label = f"cli-{backend}-{n}"
        exchange, base_url, results = _run_pair(_cli_starter(db_url, tmp_path / "home"), label)
        codes = sorted(code for code, _ in results)
        losers = [err for code, err in results if code == EXIT_ACCOUNT_BUSY]
        assert codes == [0, EXIT_ACCOUNT_BUSY], [err[-2000:] for _, err in results]
        assert all(len(text.strip().splitlines()) == 1 for text in losers), losers
        totals.update(_check_round(exchange, base_url, db_url, label, losers))
    print(f"\n{ROUNDS} CLI pairs on {backend}: {dict(totals)}")
    assert totals["sent_twice"] == 0 and totals["extra_buys"] == 0
    assert totals["succeeded"] == ROUNDS and totals["skipped"] == ROUNDS
    assert totals["losers_explained"] == ROUNDS


@pytest.mark.slow
@pytest.mark.prefect
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_flow_runs_on_one_account_never_send_an_intent_twice(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", SECRET)
    flow = _load_flow()
    db_url = _database_urls(tmp_path, request, backend)

    def start(base_url: str, label: str) -> list[Callable[[], Any]]:
        overrides = _overrides(db_url, base_url, label)
        barrier = threading.Barrier(2)

        def run() -> Any:
            barrier.wait(timeout=60)  # both flow runs start at the same instant
            numbers = flow.daemon(overrides)  # the run's result: its key numbers
            return flow.stored_summary(overrides, str(numbers["run_id"]))  # the whole summary

        return [run, run]

    totals = Counter[str]()
    for n in range(ROUNDS):
        label = f"flow-{backend}-{n}"
        exchange, base_url, summaries = _run_pair(start, label)
        statuses = sorted(s.status for s in summaries)
        assert statuses == ["skipped", "succeeded"], statuses
        losers = [s.notes[-1] for s in summaries if s.status == "skipped"]
        totals.update(_check_round(exchange, base_url, db_url, label, losers))
    print(f"\n{ROUNDS} flow pairs on {backend}: {dict(totals)}")
    assert totals["sent_twice"] == 0 and totals["extra_buys"] == 0
    assert totals["succeeded"] == ROUNDS and totals["skipped"] == ROUNDS
    assert totals["losers_explained"] == ROUNDS
