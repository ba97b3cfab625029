"""The local Bybit v5 stand-in, driven by the real ccxt.bybit over HTTP."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from otonom_trader.broker.ccxt_routing import LOCAL_BYBIT_OPTIONS, route_ccxt_to
from otonom_trader.local_exchange import LocalBybitExchange


def test_load_markets_uses_only_local_spot_endpoints(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    markets = bybit_client.load_markets()

    assert "BTC/USDT" in markets and markets["BTC/USDT"]["spot"] is True
    assert len(markets) == 7
    assert sorted(local_bybit.request_paths()) == [
        "GET /v5/asset/coin/query-info",
        "GET /v5/market/instruments-info",
    ]
    assert local_bybit.requests[-1].params == {"category": "spot"}


def test_fetch_balance_reports_unified_wallet(bybit_client: ccxt.bybit) -> None:
    balance = bybit_client.fetch_balance()

    assert balance["USDT"]["free"] == 10000.0
    assert balance["USDT"]["total"] == 10000.0


def test_create_market_buy_fills_and_moves_balances(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    placed = bybit_client.create_order("BTC/USDT", "market", "buy", 0.01)

    fetched = bybit_client.fetch_order(placed["id"], "BTC/USDT", {"acknowledged": True})

    assert fetched["status"] == "closed"
    assert fetched["filled"] == 0.01
    assert fetched["fee"] == {"cost": 1e-05, "currency": "BTC"}
    assert local_bybit.balance("USDT") == Decimal("9500")
    assert local_bybit.balance("BTC") == Decimal("0.00999")


def test_create_limit_rests_then_cancel_releases_funds(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    placed = bybit_client.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "by-intent-1"}
    )
    assert [o["clientOrderId"] for o in bybit_client.fetch_open_orders("BTC/USDT")] == [
        "by-intent-1"
    ]
    assert local_bybit.locked("USDT") == Decimal("400")

    bybit_client.cancel_order(placed["id"], "BTC/USDT")

    fetched = bybit_client.fetch_order(placed["id"], "BTC/USDT", {"acknowledged": True})
    assert fetched["status"] == "canceled"
    assert local_bybit.balance("USDT") == Decimal("10000")
    assert local_bybit.open_orders() == []


def test_resting_limit_fills_when_set_price_crosses(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    placed = bybit_client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000)

    local_bybit.set_price("BTC/USDT", Decimal("39990"))

    fetched = bybit_client.fetch_order(placed["id"], "BTC/USDT", {"acknowledged": True})
    assert fetched["status"] == "closed"
    assert fetched["average"] == 40000.0


def test_cancel_unknown_order_raises_order_not_found(bybit_client: ccxt.bybit) -> None:
    bybit_client.load_markets()

    with pytest.raises(ccxt.OrderNotFound, match="170213"):
        bybit_client.cancel_order("123", "BTC/USDT")


def test_order_beyond_balance_raises_insufficient_funds(bybit_client: ccxt.bybit) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="170131"):
        bybit_client.create_order("BTC/USDT", "limit", "buy", 1, 40000)


def test_order_below_min_value_raises_invalid_order(bybit_client: ccxt.bybit) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="170140"):
        bybit_client.create_order("BTC/USDT", "limit", "buy", 0.0001, 40000)


def test_query_api_reports_withdraw_permission_only_when_switched_on(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    safe = bybit_client.private_get_v5_user_query_api()["result"]["permissions"]
    local_bybit.can_withdraw = True

    risky = bybit_client.private_get_v5_user_query_api()["result"]["permissions"]

    assert "Withdraw" not in safe["Wallet"]
    assert safe["Spot"] == ["SpotTrade"]
    assert "Withdraw" in risky["Wallet"]


def test_query_api_when_disabled_then_404(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    local_bybit.restrictions_endpoint_enabled = False

    with pytest.raises(ccxt.ExchangeNotAvailable, match="404"):
        bybit_client.private_get_v5_user_query_api()


def test_wrong_secret_is_refused_with_10004(local_bybit: LocalBybitExchange) -> None:
    client = ccxt.bybit(
        {"apiKey": "test-key", "secret": "wrong", "options": dict(LOCAL_BYBIT_OPTIONS)}
    )
    route_ccxt_to(client, local_bybit.base_url)

    with pytest.raises(ccxt.AuthenticationError, match="10004"):
        client.private_get_v5_account_info()


def test_unknown_key_is_refused_with_10003(local_bybit: LocalBybitExchange) -> None:
    client = ccxt.bybit(
        {"apiKey": "other", "secret": "test-secret", "options": dict(LOCAL_BYBIT_OPTIONS)}
    )
    route_ccxt_to(client, local_bybit.base_url)

    with pytest.raises(ccxt.AuthenticationError, match="10003"):
        client.private_get_v5_account_info()


def test_lost_reply_on_create_leaves_exactly_one_order(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    bybit_client.fetch_balance()  # markets and account mode loaded before the fault
    local_bybit.inject_fault("lost_reply", path="/v5/order/create", method="POST")

    with pytest.raises(ccxt.NetworkError):
        bybit_client.create_order(
            "BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "by-lost"}
        )

    assert [o.client_order_id for o in local_bybit.orders] == ["by-lost"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("http_429", ccxt.RateLimitExceeded),
        ("http_500", ccxt.ExchangeNotAvailable),
        ("http_503", ccxt.ExchangeNotAvailable),
        ("code_-1007", ccxt.ExchangeError),
        ("drop_connection", ccxt.NetworkError),
    ],
)
def test_fault_on_create_raises_mapped_error_and_places_nothing(
    local_bybit: LocalBybitExchange,
    bybit_client: ccxt.bybit,
    kind: str,
    expected: type[Exception],
) -> None:
    bybit_client.fetch_balance()
    local_bybit.inject_fault(kind, path="/v5/order/create", method="POST")

    with pytest.raises(expected):
        bybit_client.create_order("BTC/USDT", "market", "buy", 0.001)

    assert local_bybit.orders == []


def test_code_1007_on_bybit_is_server_timeout_10000(
    local_bybit: LocalBybitExchange, bybit_client: ccxt.bybit
) -> None:
    bybit_client.fetch_balance()
    local_bybit.inject_fault("code_-1007", path="/v5/order/create", method="POST", execute=True)

    with pytest.raises(ccxt.ExchangeError, match="10000"):
        bybit_client.create_order("BTC/USDT", "market", "buy", 0.001)

    assert len(local_bybit.orders) == 1
