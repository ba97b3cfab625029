"""The simulated exchange: seeded outcomes, size-dependent slippage, partial fills and
rejections at the configured rates, resting limits, cancels, persistence, idempotent ids."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.broker.base import Broker
from otonom_trader.broker.config import SimExchangeConfig
from otonom_trader.broker.errors import (
    BrokerError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)
from otonom_trader.broker.sim import SimulatedExchange
from otonom_trader.broker.types import OrderFill, OrderRequest, OrderSide, OrderStatus, OrderType
from otonom_trader.config.errors import ConfigError

# No randomness unless a test asks for it.
CLEAN = SimExchangeConfig(
    seed=7, initial_cash=1_000_000.0, reject_probability=0.0, partial_fill_probability=0.0
)


def _exchange(cfg: SimExchangeConfig = CLEAN, **kw: object) -> SimulatedExchange:
    exchange = SimulatedExchange(cfg, "USDT", **kw)  # type: ignore[arg-type]
    exchange.set_price("BTCUSDT", Decimal("60000"))
    return exchange


def _buy(ex: SimulatedExchange, qty: str, cid: str, **kw: object) -> OrderFill:
    return ex.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, qty, client_order_id=cid, **kw))  # type: ignore[arg-type]


def _outcome(ex: SimulatedExchange, cid: str) -> object:
    try:
        fill = _buy(ex, "0.01", cid)
    except BrokerError as exc:
        return type(exc).__name__, str(exc)
    return fill.status, fill.quantity, fill.price, fill.latency_ms


def test_sim_is_a_broker_of_its_own() -> None:
    assert isinstance(SimulatedExchange(), Broker)
    assert SimulatedExchange().is_production is False


def test_same_seed_and_client_id_when_replayed_on_a_new_exchange_then_same_outcome() -> None:
    cfg = SimExchangeConfig(seed=11, initial_cash=1_000_000.0)
    first = [_outcome(_exchange(cfg), f"id-{i}") for i in range(40)]
    second = [_outcome(_exchange(cfg), f"id-{i}") for i in range(40)]
    other_seed = [_outcome(_exchange(replace(cfg, seed=12)), f"id-{i}") for i in range(40)]
    assert first == second
    assert first != other_seed


def test_slippage_when_order_grows_then_fill_price_worsens() -> None:
    ex = _exchange()
    prices = [_buy(ex, qty, f"s{qty}").price for qty in ("0.001", "0.1", "1", "5")]
    assert prices == sorted(prices) and len(set(prices)) == 4
    # 2 bps base + 3 bps per 10k quote: 5 BTC = 300k quote → 92 bps
    assert prices[-1] == Decimal("60000") * (1 + Decimal("0.0092"))


def test_sell_slippage_when_market_order_then_below_the_price() -> None:
    ex = _exchange()
    _buy(ex, "1", "b")
    fill = ex.place_order(OrderRequest("BTCUSDT", OrderSide.SELL, "1", client_order_id="s"))
    assert fill.price is not None and fill.price < Decimal("60000")


def test_rates_when_many_orders_then_partials_and_rejections_near_configuration() -> None:
    ex = _exchange(
        SimExchangeConfig(
            seed=7, initial_cash=1e9, partial_fill_probability=0.15, reject_probability=0.03
        )
    )
    counts = {"filled": 0, "partially_filled": 0, "rejected": 0}
    for i in range(1000):
        try:
            counts[_buy(ex, "0.01", f"c{i}").status.value] += 1
        except BrokerError:
            counts["rejected"] += 1
    # Seeded: these exact numbers are stable; and they sit near 3 % and 15 % of the rest.
    assert counts == {"filled": 831, "partially_filled": 141, "rejected": 28}


def test_partial_fill_when_it_happens_then_at_least_min_ratio_and_lot_rounded() -> None:
    ex = _exchange(replace(CLEAN, partial_fill_probability=1.0, partial_fill_min_ratio=0.4))
    for i in range(30):
        fill = _buy(ex, "0.01", f"p{i}")
        assert fill.status is OrderStatus.PARTIALLY_FILLED
        assert Decimal("0.004") <= fill.quantity < Decimal("0.01")
        assert fill.quantity % Decimal("0.00001") == 0


def test_limit_buy_when_below_price_then_rests_and_fills_when_price_crosses() -> None:
    ex = _exchange()
    rest = _buy(ex, "0.1", "lim", order_type=OrderType.LIMIT, price=Decimal("59000"))
    assert rest.status is OrderStatus.OPEN and rest.quantity == 0
    usdt = {b.asset: b for b in ex.get_balances()}["USDT"]
    assert usdt.locked == Decimal("5900") * (1 + Decimal("0.001"))  # cost + maker fee held

    ex.set_price("BTCUSDT", Decimal("59500"))
    assert len(ex.open_orders()) == 1
    ex.set_price("BTCUSDT", Decimal("58900"))

    assert ex.open_orders() == []
    again = _buy(ex, "0.1", "lim", order_type=OrderType.LIMIT, price=Decimal("59000"))
    assert again.status is OrderStatus.FILLED and again.price == Decimal("59000")
    assert again.fee == Decimal("5.9")
    balances = {b.asset: b for b in ex.get_balances()}
    assert balances["BTC"].free == Decimal("0.1")
    assert balances["USDT"].total == Decimal(1_000_000) - Decimal("5900") - Decimal("5.9")


def test_marketable_limit_when_placed_then_fills_at_market_not_at_limit() -> None:
    fill = _buy(_exchange(), "0.01", "m", order_type=OrderType.LIMIT, price=Decimal("65000"))
    assert fill.price is not None and Decimal("60000") < fill.price < Decimal("60020")


def test_cancel_when_resting_then_funds_return() -> None:
    ex = _exchange()
    before = {b.asset: b.total for b in ex.get_balances()}
    rest = _buy(ex, "0.1", "c", order_type=OrderType.LIMIT, price=Decimal("50000"))

    ex.cancel_order("BTCUSDT", rest.order_id)

    assert {b.asset: b.free for b in ex.get_balances()} == before
    with pytest.raises(OrderNotFoundError):
        ex.cancel_order("BTCUSDT", rest.order_id)


def test_state_when_new_instance_with_same_path_then_account_and_orders_survive(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.json"
    ex = _exchange(state_path=path)
    _buy(ex, "0.5", "a")
    _buy(ex, "0.1", "rest", order_type=OrderType.LIMIT, price=Decimal("50000"))

    reborn = _exchange(state_path=path)

    assert reborn.get_balances() == ex.get_balances()
    assert reborn.equity() == ex.equity()
    assert [o["client_order_id"] for o in reborn.open_orders()] == ["rest"]
    reborn.cancel_order("BTCUSDT", "rest")  # by client id, after the restart
    assert _buy(reborn, "0.5", "a").order_id == _buy(ex, "0.5", "a").order_id


def test_state_file_when_corrupt_then_one_line_config_error(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable simulated exchange account"):
        SimulatedExchange(CLEAN, state_path=path)


def test_same_client_id_when_placed_twice_then_executed_once() -> None:
    ex = _exchange()
    first = _buy(ex, "0.2", "dup")
    second = _buy(ex, "0.2", "dup")
    assert second == first
    assert {b.asset: b.free for b in ex.get_balances()}["BTC"] == Decimal("0.2")


def test_orders_when_rules_or_funds_break_then_refused() -> None:
    ex = _exchange(replace(CLEAN, initial_cash=100.0))
    with pytest.raises(InvalidOrderError, match="minimum notional"):
        _buy(ex, "0.00005", "tiny")
    with pytest.raises(InsufficientFundsError):
        _buy(ex, "0.01", "poor")
    with pytest.raises(InsufficientFundsError):
        ex.place_order(OrderRequest("BTCUSDT", OrderSide.SELL, "0.01", client_order_id="x"))
    with pytest.raises(InvalidOrderError, match="no price"):
        ex.place_order(OrderRequest("ETHUSDT", OrderSide.BUY, "1", client_order_id="y"))


def test_equity_when_holding_then_quote_plus_assets_at_exchange_price() -> None:
    ex = _exchange()
    fill = _buy(ex, "1", "e")
    ex.set_price("BTCUSDT", Decimal("61000"))
    assert ex.equity() == Decimal(1_000_000) - fill.notional - fill.fee + Decimal("61000")
    [position] = ex.get_open_positions()
    assert (position.symbol, position.quantity) == ("BTC/USDT", Decimal("1"))
