"""The simulated exchange's account database: an order writes only what it changes (flat cost
as the account's history grows), a price update that fills nothing writes nothing, opening an
account only reads, and an account file of an earlier version is carried over once.
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.broker.config import SimExchangeConfig
from otonom_trader.broker.sim import SimulatedExchange
from otonom_trader.broker.sim_store import store_path
from otonom_trader.broker.types import OrderFill, OrderRequest, OrderSide, OrderType
from otonom_trader.config.errors import ConfigError

CLEAN = SimExchangeConfig(
    seed=7, initial_cash=1_000_000.0, reject_probability=0.0, partial_fill_probability=0.0
)


def _exchange(path: Path | None, cfg: SimExchangeConfig = CLEAN) -> SimulatedExchange:
    exchange = SimulatedExchange(cfg, "USDT", state_path=path)
    exchange.set_price("BTCUSDT", Decimal("60000"))
    return exchange


def _order(ex: SimulatedExchange, side: OrderSide, qty: str, cid: str, **kw: object) -> OrderFill:
    return ex.place_order(OrderRequest("BTCUSDT", side, qty, client_order_id=cid, **kw))  # type: ignore[arg-type]


def _rows_written_by_one_order(ex: SimulatedExchange, cid: str) -> int:
    conn = ex._store._writer()
    before = conn.total_changes
    _order(ex, OrderSide.BUY, "0.001", cid)
    return conn.total_changes - before


def test_order_when_history_grows_then_rows_written_stay_the_same(tmp_path: Path) -> None:
    ex = _exchange(tmp_path / "sim.json")
    _order(ex, OrderSide.BUY, "0.001", "opening")  # the account now holds USDT and BTC
    first = _rows_written_by_one_order(ex, "first")
    for i in range(300):
        _order(ex, OrderSide.BUY if i % 2 else OrderSide.SELL, "0.001", f"past-{i}")

    later = _rows_written_by_one_order(ex, "later")

    assert later == first  # one order's rows, not every result ever
    assert ex.fetch_order_by_client_id("BTCUSDT", "past-7") is not None


def test_price_update_when_nothing_fills_then_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    ex = _exchange(path)
    _order(ex, OrderSide.BUY, "0.01", "a")
    conn = ex._store._writer()
    before = conn.total_changes

    for price in ("60100", "59900", "60050"):
        ex.set_price("BTCUSDT", Decimal(price))

    assert conn.total_changes == before
    assert not path.exists()  # no JSON rewritten either


def test_account_when_reopened_then_balances_orders_and_resting_orders_survive(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.json"
    ex = _exchange(path)
    bought = _order(ex, OrderSide.BUY, "0.5", "a")
    _order(ex, OrderSide.BUY, "0.1", "rest", order_type=OrderType.LIMIT, price=Decimal("50000"))
    ex._store.close()

    reborn = _exchange(path)

    assert reborn.get_balances() == ex.get_balances()
    assert _order(reborn, OrderSide.BUY, "0.5", "a") == bought  # known: not executed again
    reborn.set_price("BTCUSDT", Decimal("49000"))  # the resting buy fills after the restart
    assert reborn.open_orders() == []
    assert reborn.fetch_order_by_client_id("BTCUSDT", "rest").price == Decimal("50000")  # type: ignore[union-attr]


def test_open_when_account_exists_then_only_reads(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    ex = _exchange(path)
    _order(ex, OrderSide.BUY, "0.5", "a")
    ex._store.close()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    SimulatedExchange(CLEAN, "USDT", state_path=path)

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def _legacy_account_file(path: Path) -> dict[str, object]:
    """An account as versions before the database wrote it (one JSON file, every result)."""
    state = {
        "balances": {"USDT": "940000", "BTC": "1.0"},
        "results": {
            "old-buy": {
                "order_id": "sim-1",
                "client_order_id": "old-buy",
                "symbol": "BTC/USDT",
                "side": "buy",
                "quantity": "1.0",
                "price": "60000",
                "requested": "1.0",
                "status": "filled",
                "fee": "60",
                "latency_ms": 41.2,
                "timestamp": "2026-11-01T10:00:00+00:00",
            },
            "old-rest": {
                "order_id": "sim-2",
                "client_order_id": "old-rest",
                "symbol": "BTC/USDT",
                "side": "buy",
                "quantity": "0",
                "price": None,
                "requested": "0.1",
                "status": "open",
                "fee": "0",
                "latency_ms": 38.0,
                "timestamp": "2026-11-01T11:00:00+00:00",
            },
        },
        "next_id": 3,
        "resting": [
            {
                "order_id": "sim-2",
                "client_order_id": "old-rest",
                "symbol": "BTC/USDT",
                "side": "buy",
                "quantity": "0.1",
                "price": "50000",
                "reserved": "5005",
            }
        ],
    }
    path.write_text(json.dumps(state))
    return state


def test_legacy_account_file_when_opened_then_carried_over_once(tmp_path: Path) -> None:
    path = tmp_path / "x.sim-exchange.json"
    _legacy_account_file(path)

    ex = _exchange(path)  # opening reads the old file; nothing is written yet
    assert path.is_file() and not store_path(path).exists()
    assert {b.asset: b.total for b in ex.get_balances()} == {
        "USDT": Decimal("945005"),  # 940,000 free + 5,005 held by the resting buy
        "BTC": Decimal("1.0"),
    }
    old = ex.fetch_order_by_client_id("BTCUSDT", "old-buy")
    assert old is not None and old.order_id == "sim-1"

    new = _order(ex, OrderSide.SELL, "0.2", "new-sell")  # the first write carries it over

    assert new.order_id == "sim-3"  # numbering continues
    assert not path.exists() and path.with_name(path.name + ".imported").is_file()
    ex._store.close()
    reborn = _exchange(path)
    assert reborn.get_balances() == ex.get_balances()
    assert _order(reborn, OrderSide.BUY, "1.0", "old-buy").order_id == "sim-1"
    reborn.cancel_order("BTCUSDT", "old-rest")  # the carried-over resting order
    assert reborn.open_orders() == []


def test_store_when_damaged_then_one_line_config_error(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    store_path(path).write_bytes(b"this is not a database" * 100)

    with pytest.raises(ConfigError, match="unreadable simulated exchange account") as caught:
        SimulatedExchange(CLEAN, "USDT", state_path=path)
    assert "\n" not in str(caught.value)


def test_orders_when_sent_from_threads_then_balances_add_up(tmp_path: Path) -> None:
    ex = _exchange(tmp_path / "sim.json")
    with ThreadPoolExecutor(max_workers=8) as pool:
        fills = list(pool.map(lambda i: _order(ex, OrderSide.BUY, "0.01", f"t{i}"), range(40)))

    spent = sum(f.quantity * f.price + f.fee for f in fills if f.price is not None)
    balances = {b.asset: b.total for b in ex.get_balances()}
    assert balances["USDT"] == Decimal("1000000") - spent
    assert balances["BTC"] == Decimal("0.40")
    assert len({f.order_id for f in fills}) == 40
    stored = sqlite3.connect(store_path(tmp_path / "sim.json"))
    assert stored.execute("SELECT count(*) FROM sim_orders").fetchone() == (40,)
    stored.close()
