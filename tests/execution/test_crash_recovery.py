"""Exactly once across a crash: a SHADOW cycle SIGKILLed while its order is in flight, then
restarted for the same candle, never sends that order again and books its fill exactly once.

Real parts: the ``otonom-trader daemon-once`` process (real ccxt ``binance`` over HTTP) against
the local Binance exchange, which executes the order and then holds the reply
(``slow_reply``); the test kills the process at the moment the exchange has executed the order
(an event, not a sleep), restarts it, and counts on the exchange's side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence import Database
from otonom_trader.persistence.models import DaemonRun, FillRecord, OrderRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY, SECRET = "crash-test-key-0123456789", "crash-test-secret-0123456789"
ROUNDS = int(os.environ.get("OTONOM_CRASH_ROUNDS", "20"))
FINAL = {"filled", "partially_filled", "cancelled", "rejected", "not_sent"}


def _cycle_command(db: Path, base_url: str) -> list[str]:
    overrides = [
        "broker=binance_testnet",
        f"broker.base_url={base_url}",
        "data=exchange",
        f"data.exchange_base_url={base_url}",
        "alerts.enabled=false",
        "guardrails=off",
        # The killed process is dead: its request can no longer arrive, so a miss is final.
        "execution.ambiguity_window_seconds=0",
    ]
    command = [sys.executable, "-m", "otonom_trader.cli", "--db", str(db)]
    for override in overrides:
        command += ["-o", override]
    return command + [
        "daemon-once",
        "--mode",
        "shadow",
        "--strategy",
        str(FIXTURES / "always_buy_v1.0.yaml"),
    ]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OTONOM_HOME=str(home),
        BINANCE_TESTNET_API_KEY=KEY,
        BINANCE_TESTNET_API_SECRET=SECRET,
        COLUMNS="200",
    )
    return env


def _crash_and_restart(tmp: Path) -> dict[str, int]:
    """One round: a fresh account and database; kill mid-order; restart; count."""
    db_path = tmp / "trader.db"
    with LocalBinanceExchange(
        api_key=KEY,
        api_secret=SECRET,
        balances={"USDT": Decimal("10000")},
        prices={"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
    ) as exchange:
        fault = exchange.inject_fault(
            "slow_reply", path="/api/v3/order", method="POST", seconds=120
        )
        command = _cycle_command(db_path, exchange.base_url)
        env = _env(tmp / "home")
        child = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            executed = fault.executed.wait(timeout=120)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            fault.release()
        assert executed, f"the cycle never sent its order: {child.stderr.read()[-2000:]}"  # type: ignore[union-attr]
        placed_before_restart = len(exchange.orders)

        restarted = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-3000:]

        exchange_orders = [o for o in exchange.orders if o.client_order_id.startswith("ot-")]
        db = Database(db_path)
        try:
            with db.session() as session:
                orders = {o.client_order_id: o for o in session.scalars(select(OrderRecord))}
                cid_of = {o.id: o.client_order_id for o in orders.values()}
                booked = Counter(cid_of[f.order_id] for f in session.scalars(select(FillRecord)))
                runs = list(session.scalars(select(DaemonRun)))
        finally:
            db.dispose()
    per_id = Counter(o.client_order_id for o in exchange_orders)
    filled_ids = {o.client_order_id for o in exchange_orders if o.executed_qty > 0}
    return {
        "placed_before_restart": placed_before_restart,
        "sent_twice": sum(1 for n in per_id.values() if n > 1),
        "missing_fills": sum(1 for cid in filled_ids if booked.get(cid, 0) != 1),
        "unresolved": sum(1 for o in orders.values() if o.status not in FINAL),
        "running": sum(1 for r in runs if r.status == "running"),
        "abandoned": sum(1 for r in runs if r.status == "abandoned"),
        "exchange_orders": len(exchange_orders),
    }


@pytest.mark.slow
def test_a_cycle_killed_with_its_order_in_flight_never_sends_it_twice(tmp_path: Path) -> None:
    rounds = [tmp_path / f"round-{n}" for n in range(ROUNDS)]
    for folder in rounds:  # a database path is never created beyond the file itself
        folder.mkdir()
    results = [_crash_and_restart(folder) for folder in rounds]

    totals = Counter[str]()
    for result in results:
        totals.update(result)
    print(f"\n{ROUNDS} SIGKILL rounds: {dict(totals)}")
    assert all(r["placed_before_restart"] >= 1 for r in results)  # the kill was mid-order
    assert totals["sent_twice"] == 0
    assert totals["missing_fills"] == 0
    assert totals["unresolved"] == 0
    assert totals["running"] == 0
    assert totals["abandoned"] == ROUNDS  # each killed run was found and closed
