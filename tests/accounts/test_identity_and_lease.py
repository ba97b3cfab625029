"""Account identity (stable, distinct per venue/environment/endpoint/label/key, never the key)
and the account lease (exclusive, bounded wait, says who holds it, freed when its holder dies)."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from otonom_trader.accounts import Account, AccountBusyError, AccountLease
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.persistence import Database

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _binance(**fields: object) -> BrokerConfig:
    base: dict[str, object] = {
        "kind": "binance",
        "testnet": True,
        "api_key": "key-A-0123456789",
        "base_url": "https://testnet.binance.vision",
    }
    base.update(fields)
    return BrokerConfig(**base)  # type: ignore[arg-type]


def test_the_same_configuration_is_the_same_account_and_the_key_never_shows() -> None:
    first = Account.for_broker(_binance())
    again = Account.for_broker(_binance(api_secret="another-secret", timeout_ms=5000))

    assert first.account_id == again.account_id
    assert first.account_id.startswith("binance-t-") and len(first.account_id) <= 25
    assert "key-A" not in first.account_id + first.describe()


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "bybit"},
        {"testnet": False},
        {"base_url": "http://127.0.0.1:8765"},
        {"label": "second"},
        {"api_key": "key-B-0123456789"},
    ],
)
def test_changing_venue_environment_endpoint_label_or_key_gives_another_account(
    change: dict[str, object],
) -> None:
    assert Account.for_broker(_binance(**change)).account_id != Account.for_broker(_binance()).book


def test_two_simulated_exchanges_beside_two_databases_are_two_accounts() -> None:
    sim = BrokerConfig(kind="sim")
    a = Account.for_broker(sim, sim_endpoint="/data/a.sim-exchange.json")
    b = Account.for_broker(sim, sim_endpoint="/data/b.sim-exchange.json")

    assert a.account_id != b.account_id and a.account_id.startswith("sim-s-")
    assert Account.paper().book == "paper"


def _lease(db: Database, owner: str, wait: float = 0.0) -> AccountLease:
    return AccountLease(
        db, "binance-t-0123456789", owner=owner, wait_seconds=wait, clock=lambda: T0
    )


def test_a_second_lease_on_the_same_account_is_refused_and_names_the_holder(
    any_db: Database,
) -> None:
    with _lease(any_db, "run first"), pytest.raises(AccountBusyError) as refused:
        _lease(any_db, "run second").acquire()
    message = str(refused.value)
    assert "leased by run first (pid" in message and "since 2026-06-01 12:00:00 UTC" in message
    assert "ended without trading" in message
    # Released: the next cycle takes it at once.
    with _lease(any_db, "run third") as third:
        assert third.held


def test_the_bounded_wait_polls_until_its_deadline_then_gives_up(sqlite_db: Database) -> None:
    ticks = iter(range(1000))
    sleeps: list[float] = []
    waiting = AccountLease(
        sqlite_db,
        "binance-t-0123456789",
        owner="run waiting",
        wait_seconds=1.0,
        sleep=sleeps.append,
        monotonic=lambda: next(ticks) * 0.25,  # each look is a quarter second later
    )
    with _lease(sqlite_db, "run holder"), pytest.raises(AccountBusyError) as refused:
        waiting.acquire()

    assert refused.value.waited_s == pytest.approx(1.0)
    assert sleeps and all(0 < s <= 0.05 for s in sleeps)


def test_leases_of_two_accounts_do_not_block_each_other(any_db: Database) -> None:
    a = AccountLease(any_db, "binance-t-aaaaaaaaaa", owner="a", wait_seconds=0)
    b = AccountLease(any_db, "binance-t-bbbbbbbbbb", owner="b", wait_seconds=0)
    with a, b:
        assert a.held and b.held


HOLDER = r"""
import sys, time
from otonom_trader.accounts import AccountLease
from otonom_trader.persistence import Database
lease = AccountLease(Database(sys.argv[1]), "binance-t-0123456789", owner="run doomed",
                     wait_seconds=0)
lease.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_dead_holders_lease_is_free_at_once_and_a_live_ones_never_is(
    any_db: Database, tmp_path: Path
) -> None:
    url = any_db.url
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # Alive: never broken, however long it has held it.
        with pytest.raises(AccountBusyError, match="run doomed"):
            _lease(any_db, "run next").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)

    # Dead (SIGKILL): the kernel / the server dropped its lock with its process.
    lease = _lease(any_db, "run next", wait=30.0)
    lease.acquire()
    try:
        assert lease.held and lease.waited_s < 30.0
    finally:
        lease.release()
