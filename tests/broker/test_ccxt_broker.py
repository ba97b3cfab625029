"""CcxtBroker driving the real ccxt.binance over HTTP against the local Binance."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from otonom_trader.broker import build_broker
from otonom_trader.broker.ccxt_broker import CcxtBroker, clear_markets_cache
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.broker.errors import (
    AuthenticationError,
    BelowMinimumNotionalError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)
from otonom_trader.broker.types import OrderRequest, OrderSide, OrderStatus, OrderType
from otonom_trader.config.errors import ConfigError
from otonom_trader.local_exchange import LocalBinanceExchange

if TYPE_CHECKING:
    from conftest import Gate

Posted = Callable[[], list[dict[str, str]]]


# ----------------------------------------------------------------------------- construction
def test_unknown_kind_then_config_error_names_broker_kind() -> None:
    with pytest.raises(ConfigError) as err:
        CcxtBroker(BrokerConfig(kind="binanse", testnet=True))

    assert str(err.value).startswith("broker.kind: 'binanse' is not a ccxt exchange id")


def test_name_and_production_flag_follow_testnet_and_base_url() -> None:
    testnet = CcxtBroker(BrokerConfig(kind="binance", testnet=True))
    local = CcxtBroker(
        BrokerConfig(kind="binance", testnet=False, base_url="http://127.0.0.1:8765")
    )
    production = CcxtBroker(BrokerConfig(kind="bybit", testnet=False))

    assert (testnet.name, testnet.is_production) == ("binance (testnet)", False)
    assert local.is_production is False
    assert (production.name, production.is_production) == ("bybit (PRODUCTION)", True)


def test_repr_and_config_repr_never_show_secrets() -> None:
    cfg = BrokerConfig(kind="binance", api_key="KEY-abc123", api_secret="SECRET-xyz789")

    broker = CcxtBroker(cfg)

    assert "KEY-abc123" not in repr(broker) and "SECRET-xyz789" not in repr(broker)
    assert "KEY-abc123" not in repr(broker.config)


def test_bad_base_url_then_config_error_names_base_url() -> None:
    with pytest.raises(ConfigError, match=r"^broker\.base_url: "):
        CcxtBroker(BrokerConfig(kind="binance", base_url="127.0.0.1:8765"))


# ----------------------------------------------------------------------------- the guide
def test_guide_snippet_runs_as_written_against_local_exchange(
    local_binance: LocalBinanceExchange, tmp_path: Path
) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text(
        "kind: binance\n"
        'api_key: "test-key"\n'
        'api_secret: "test-secret"\n'
        f'base_url: "{local_binance.base_url}"\n'
        "testnet: true\n"
    )

    broker = build_broker(str(config))
    connected = broker.ping()
    req = OrderRequest(
        symbol="BTCUSDT", side=OrderSide.BUY, quantity=0.001, order_type=OrderType.MARKET
    )
    fill = broker.place_order(req)
    broker.close()

    assert connected is True
    assert fill.price == Decimal("50000")
    assert fill.quantity == Decimal("0.001")
    assert fill.status is OrderStatus.FILLED
    assert len(local_binance.orders) == 1


def test_keys_left_out_of_the_file_come_from_the_environment(
    local_binance: LocalBinanceExchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    config = tmp_path / "broker.yaml"
    config.write_text(f"kind: binance\nbase_url: {local_binance.base_url}\ntestnet: true\n")

    broker = build_broker(config)

    assert broker.ping() is True


def test_shipped_example_files_load_and_the_local_one_trades(
    local_binance: LocalBinanceExchange, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[2]
    example = build_broker(repo / "config" / "broker.yaml.example")
    local_text = (repo / "config" / "broker.local.yaml.example").read_text()
    local_file = tmp_path / "broker.local.yaml"
    local_file.write_text(local_text.replace("http://127.0.0.1:8765", local_binance.base_url))

    local = build_broker(local_file)

    assert (
        isinstance(example, CcxtBroker)
        and example.name == "binance (testnet @ https://testnet.binance.vision)"
    )
    assert local.ping() is True
    assert local.get_balances()[0].asset == "USDT"


@pytest.mark.parametrize(
    ("option", "env", "name", "production"),
    [
        ("binance_testnet", "BINANCE_TESTNET", "binance (testnet)", False),
        ("binance", "BINANCE", "binance (PRODUCTION)", True),
        ("bybit_testnet", "BYBIT_TESTNET", "bybit (testnet)", False),
        ("bybit", "BYBIT", "bybit (PRODUCTION)", True),
    ],
)
def test_hydra_broker_options_build_ccxt_brokers_with_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, option: str, env: str, name: str, production: bool
) -> None:
    monkeypatch.setenv(f"{env}_API_KEY", f"{option}-key-value")
    monkeypatch.setenv(f"{env}_API_SECRET", f"{option}-secret-value")
    repo = Path(__file__).resolve().parents[2]

    broker = build_broker(repo / "conf" / "broker" / f"{option}.yaml")

    assert isinstance(broker, CcxtBroker)
    assert (broker.name, broker.is_production, broker.has_keys) == (name, production, True)
    assert broker.exchange.apiKey == f"{option}-key-value"
    assert f"{option}-key-value" not in repr(broker)


# ----------------------------------------------------------------------------- placement
def test_market_buy_then_filled_at_feed_with_base_fee_converted_to_quote(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange, posted: Posted
) -> None:
    req = OrderRequest("BTC/USDT", OrderSide.BUY, Decimal("0.01"), client_order_id="cycle-1-btc")

    fill = binance_broker.place_order(req)

    assert fill.status is OrderStatus.FILLED
    assert (fill.quantity, fill.price) == (Decimal("0.01"), Decimal("50000"))
    # Binance charged 0.00001 BTC; at the 50 000 average that is 0.5 USDT.
    assert (fill.fee, fill.fee_currency) == (Decimal("0.5"), "USDT")
    assert fill.client_order_id == "cycle-1-btc"
    assert fill.order_id == str(local_binance.orders[0].order_id)
    assert fill.latency_ms is not None and fill.latency_ms > 0
    assert fill.timestamp.tzinfo is not None
    sent = posted()[0]
    assert sent["newClientOrderId"] == "cycle-1-btc"
    assert sent["quantity"] == "0.01" and "price" not in sent and "quoteOrderQty" not in sent


def test_market_sell_then_fee_in_quote_reported_as_is(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    binance_broker.place_order(OrderRequest("ETHUSDT", OrderSide.BUY, Decimal("1")))

    fill = binance_broker.place_order(OrderRequest("ETHUSDT", OrderSide.SELL, Decimal("0.5")))

    assert (fill.side, fill.quantity, fill.price) == (OrderSide.SELL, Decimal("0.5"), 3000)
    assert (fill.fee, fill.fee_currency) == (Decimal("1.5"), "USDT")
    assert local_binance.balance("ETH") == Decimal("0.499")


def test_limit_below_market_then_rests_open_and_cancel_removes_it(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    req = OrderRequest(
        "BTCUSDT", OrderSide.BUY, Decimal("0.001"), OrderType.LIMIT, price=Decimal("45000")
    )

    fill = binance_broker.place_order(req)
    open_before = binance_broker.fetch_open_orders("BTCUSDT")
    binance_broker.cancel_order("BTCUSDT", fill.order_id)
    open_after = binance_broker.fetch_open_orders()

    assert (fill.status, fill.quantity, fill.price) == (OrderStatus.OPEN, 0, None)
    assert [o.order_id for o in open_before] == [fill.order_id]
    assert open_before[0].status is OrderStatus.OPEN
    assert open_after == []
    assert local_binance.orders[0].status == "CANCELED"
    assert local_binance.locked("USDT") == 0


def test_limit_that_fills_later_then_lookup_by_client_id_reports_filled(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    req = OrderRequest(
        "BTCUSDT", OrderSide.BUY, Decimal("0.002"), OrderType.LIMIT, Decimal("49000"), "lim-1"
    )
    binance_broker.place_order(req)

    local_binance.set_price("BTC/USDT", Decimal("48000"))
    found = binance_broker.fetch_order_by_client_id("BTC/USDT", "lim-1")

    assert found is not None
    assert (found.status, found.quantity, found.price) == (
        OrderStatus.FILLED,
        Decimal("0.002"),
        49000,
    )
    assert binance_broker.fetch_order_by_client_id("BTC/USDT", "never-sent") is None


def test_amounts_rounded_down_to_lot_and_prices_to_tick_before_sending(
    binance_broker: CcxtBroker, posted: Posted
) -> None:
    rules = binance_broker.market_rules("BTCUSDT")
    buy = OrderRequest(
        "BTCUSDT", OrderSide.BUY, Decimal("0.0012345678"), OrderType.LIMIT, Decimal("45000.1299")
    )
    sell = OrderRequest("BTCUSDT", OrderSide.SELL, Decimal("0.0012345678"), OrderType.MARKET)

    buy_fill = binance_broker.place_order(buy)
    binance_broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.002")))
    sell_fill = binance_broker.place_order(sell)

    assert (rules.lot_step, rules.tick_size) == (Decimal("0.00001"), Decimal("0.01"))
    sent_buy, _, sent_sell = posted()
    assert (sent_buy["quantity"], sent_buy["price"]) == ("0.00123", "45000.12")
    assert sent_sell["quantity"] == "0.00123"
    assert buy_fill.requested_quantity == Decimal("0.00123")
    assert sell_fill.quantity == Decimal("0.00123")


def test_sell_limit_price_rounded_up_to_the_tick(
    binance_broker: CcxtBroker, posted: Posted
) -> None:
    binance_broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.002")))

    binance_broker.place_order(
        OrderRequest("BTCUSDT", OrderSide.SELL, "0.001", OrderType.LIMIT, "51000.001")
    )

    assert posted()[-1]["price"] == "51000.01"


def test_below_minimum_notional_then_refused_before_sending(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange, posted: Posted, gate_of: Gate
) -> None:
    tiny_market = OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.00005"))  # 2.5 USDT
    tiny_limit = OrderRequest("ETHUSDT", OrderSide.BUY, "0.001", OrderType.LIMIT, "3000")

    with pytest.raises(BelowMinimumNotionalError) as market_err:
        gate_of(binance_broker).place_order(tiny_market)
    with pytest.raises(BelowMinimumNotionalError):
        gate_of(binance_broker).place_order(tiny_limit)

    assert "below the minimum notional 5 USDT" in str(market_err.value)
    assert posted() == [] and local_binance.orders == []


def test_quantity_rounding_to_zero_then_invalid_order_before_sending(
    binance_broker: CcxtBroker, posted: Posted, gate_of: Gate
) -> None:
    with pytest.raises(InvalidOrderError, match="below the minimum"):
        gate_of(binance_broker).place_order(
            OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.000001"))
        )

    assert posted() == []


def test_unknown_market_and_bad_client_id_refused_before_sending(
    binance_broker: CcxtBroker, posted: Posted
) -> None:
    with pytest.raises(InvalidOrderError, match="unknown spot market 'SOLUSDT'"):
        binance_broker.place_order(OrderRequest("SOLUSDT", OrderSide.BUY, Decimal("1")))
    with pytest.raises(InvalidOrderError, match="client_order_id"):
        binance_broker.place_order(
            OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.001"), client_order_id="a b")
        )

    assert posted() == []


def test_generated_client_order_id_is_valid_and_unique(
    binance_broker: CcxtBroker, posted: Posted
) -> None:
    req = OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.001"))

    first = binance_broker.place_order(req)
    second = binance_broker.place_order(req)

    ids = [p["newClientOrderId"] for p in posted()]
    assert ids == [first.client_order_id, second.client_order_id]
    assert ids[0] != ids[1] and all(len(i) <= 36 and i.startswith("ot-") for i in ids)


def test_open_client_id_reused_then_duplicate_is_final_invalid_order(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    req = OrderRequest("BTCUSDT", OrderSide.BUY, "0.001", OrderType.LIMIT, "45000", "dup-1")
    binance_broker.place_order(req)

    with pytest.raises(InvalidOrderError, match="Duplicate order sent") as err:
        binance_broker.place_order(req)

    assert err.value.temporary is False
    assert len(local_binance.orders) == 1


def test_not_enough_quote_then_insufficient_funds(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    with pytest.raises(InsufficientFundsError, match="insufficient balance") as err:
        binance_broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("1")))

    assert err.value.temporary is False
    assert local_binance.orders == []


def test_cancel_unknown_order_then_order_not_found(binance_broker: CcxtBroker) -> None:
    with pytest.raises(OrderNotFoundError, match="Unknown order sent"):
        binance_broker.cancel_order("BTCUSDT", "424242")


# ----------------------------------------------------------------------------- account
def test_balances_and_positions_after_a_buy(binance_broker: CcxtBroker) -> None:
    binance_broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.01")))

    balances = {b.asset: b for b in binance_broker.get_balances()}
    positions = binance_broker.get_open_positions()

    assert balances["USDT"].free == Decimal("9500")
    assert balances["BTC"].total == Decimal("0.00999")
    assert len(positions) == 1
    position = positions[0]
    assert (position.symbol, position.quantity) == ("BTC/USDT", Decimal("0.00999"))
    assert position.mark_price == Decimal("50000")


def test_limit_order_funds_show_as_locked(binance_broker: CcxtBroker) -> None:
    binance_broker.place_order(
        OrderRequest("BTCUSDT", OrderSide.BUY, "0.01", OrderType.LIMIT, "40000")
    )

    usdt = next(b for b in binance_broker.get_balances() if b.asset == "USDT")

    assert (usdt.free, usdt.locked, usdt.total) == (9600, 400, 10000)


def test_fetch_last_price_follows_the_feed(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    local_binance.set_price("ETH/USDT", Decimal("3125.5"))

    assert binance_broker.fetch_last_price("ETHUSDT") == Decimal("3125.5")


def test_markets_loaded_once_per_process_for_the_same_exchange(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    clear_markets_cache()
    first, second = make_binance_broker(), make_binance_broker()

    first.market_rules("BTCUSDT")
    second.market_rules("ETH/USDT")
    first.fetch_last_price("BTCUSDT")

    assert local_binance.request_paths().count("GET /api/v3/exchangeInfo") == 1


# ----------------------------------------------------------------------------- ping
def test_ping_detail_when_key_accepted(binance_broker: CcxtBroker) -> None:
    assert binance_broker.ping() is True
    assert "reachable and the API key is accepted" in binance_broker.ping_detail()


def test_ping_when_key_refused_then_false_and_says_why(
    make_binance_broker: Callable[..., CcxtBroker],
) -> None:
    broker = make_binance_broker(api_key="wrong-key")

    assert broker.ping() is False
    assert "API key was refused" in broker.ping_detail()
    assert "Invalid API-key" in broker.ping_detail()
    assert "wrong-key" not in broker.ping_detail()


def test_ping_without_keys_then_false_and_names_the_variables(
    make_binance_broker: Callable[..., CcxtBroker],
) -> None:
    broker = make_binance_broker(api_key=None, api_secret=None)

    assert broker.ping() is False
    assert "BINANCE_TESTNET_API_KEY" in broker.ping_detail()


def test_ping_when_nothing_listens_then_false_not_reachable(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    broker = make_binance_broker()
    local_binance.stop()

    assert broker.ping() is False
    assert "not usable" in broker.ping_detail()


def test_wrong_secret_then_authentication_error_final(
    make_binance_broker: Callable[..., CcxtBroker],
) -> None:
    broker = make_binance_broker(api_secret="not-the-secret")

    with pytest.raises(AuthenticationError, match="Signature for this request is not valid") as e:
        broker.get_balances()

    assert e.value.temporary is False
    assert "not-the-secret" not in str(e.value)


def test_ccxt_debug_log_masks_api_key(
    binance_broker: CcxtBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="ccxt"):
        binance_broker.get_balances()

    requests = [r for r in caplog.records if r.name == "ccxt.base.exchange"]
    assert requests, "ccxt logged no request at DEBUG"
    assert all("test-key" not in r.getMessage() for r in requests)
    assert any("***" in r.getMessage() for r in requests)


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("129.81")), "MARKET_LOT_SIZE"),
        (
            OrderRequest("BTCUSDT", OrderSide.SELL, "200", OrderType.LIMIT, "60000"),
            "NOTIONAL: order value 12000000 USDT is above the maximum",
        ),
        (
            OrderRequest("BTCUSDT", OrderSide.SELL, "0.001", OrderType.LIMIT, "2000000"),
            "PRICE_FILTER",
        ),
        (  # a bid 6x the market price (Binance allows up to 5x)
            OrderRequest("BTCUSDT", OrderSide.BUY, "0.001", OrderType.LIMIT, "300000"),
            "PERCENT_PRICE_BY_SIDE",
        ),
    ],
)
def test_the_gate_refuses_what_the_venue_would_naming_the_rule(
    binance_broker: CcxtBroker,
    local_binance: LocalBinanceExchange,
    request_: OrderRequest,
    rule: str,
    gate_of: Gate,
) -> None:
    with pytest.raises(InvalidOrderError, match=rule):
        gate_of(binance_broker).place_order(request_)

    assert local_binance.orders == []


def test_the_gate_keeps_to_the_venues_order_rate(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange, gate_of: Gate
) -> None:

    from otonom_trader.broker.errors import RateLimitError

    gate = gate_of(binance_broker)
    order = OrderRequest("ETHUSDT", OrderSide.BUY, Decimal("0.002"), reference_price=3000)
    for _ in range(100):  # Binance: 100 orders per 10 s (exchangeInfo rateLimits, ORDERS)
        gate.place_order(order.__class__(**{**order.__dict__, "client_order_id": None}))

    with pytest.raises(RateLimitError, match="100 orders per 10 s"):
        gate.place_order(order)
    assert len(local_binance.orders) == 100
