"""Order handling of the local Binance, driven by the real ccxt.binance over HTTP."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from otonom_trader.local_exchange import LocalBinanceExchange


def test_load_markets_makes_only_one_local_exchange_info_request(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    markets = binance_client.load_markets()

    assert set(markets) == {
        "BTC/USDT",
        "ETH/USDT",
        "ADA/USDT",
        "LTC/USDT",
        "XRP/USDT",
        "DOGE/USDT",
        "TRX/USDT",
    }
    assert local_binance.request_paths() == ["GET /api/v3/exchangeInfo"]
    assert markets["BTC/USDT"]["limits"]["cost"]["min"] == 5.0


def test_create_market_buy_when_funded_then_fills_at_feed_and_charges_fee_in_base(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()

    order = binance_client.create_order("BTC/USDT", "market", "buy", 0.01)

    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    assert order["average"] == 50000.0
    assert order["fee"] == {"currency": "BTC", "cost": 1e-05}
    assert local_binance.balance("USDT") == Decimal("9500")
    assert local_binance.balance("BTC") == Decimal("0.00999")


def test_create_market_sell_then_quote_credited_minus_fee(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    binance_client.create_order("ETH/USDT", "market", "buy", 1)

    order = binance_client.create_order("ETH/USDT", "market", "sell", 0.5)

    assert order["status"] == "closed"
    assert order["fee"]["currency"] == "USDT"
    assert order["fee"]["cost"] == 1.5
    # 10000 - 3000 + 1500 - 1.5 fee
    assert local_binance.balance("USDT") == Decimal("8498.5")
    assert local_binance.balance("ETH") == Decimal("0.499")


def test_market_buy_with_spread_fills_at_ask(binance_client: ccxt.binance) -> None:
    with LocalBinanceExchange(
        balances={"USDT": Decimal("10000")},
        prices={"BTC/USDT": Decimal("50000")},
        spread=Decimal("0.001"),
    ) as exchange:
        from otonom_trader.broker.ccxt_routing import route_ccxt_to

        route_ccxt_to(binance_client, exchange.base_url)
        order = binance_client.create_order("BTC/USDT", "market", "buy", 0.01)

    assert order["average"] == 50025.0


def test_limit_buy_below_feed_rests_then_fills_when_price_crosses(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    order = binance_client.create_order("BTC/USDT", "limit", "buy", 0.01, 49000)
    assert order["status"] == "open"
    assert local_binance.locked("USDT") == Decimal("490")
    assert [o["id"] for o in binance_client.fetch_open_orders("BTC/USDT")] == [order["id"]]

    local_binance.set_price("BTC/USDT", Decimal("48900"))

    fetched = binance_client.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "closed"
    assert fetched["average"] == 49000.0
    assert local_binance.open_orders() == []
    assert local_binance.locked("USDT") == Decimal(0)
    assert local_binance.balance("USDT") == Decimal("9510")
    assert local_binance.balance("BTC") == Decimal("0.00999")


def test_limit_buy_above_feed_fills_immediately_as_taker(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()

    order = binance_client.create_order("BTC/USDT", "limit", "buy", 0.01, 51000)

    assert order["status"] == "closed"
    assert order["average"] == 50000.0
    assert local_binance.balance("USDT") == Decimal("9500")


def test_fetch_order_by_client_order_id_returns_the_order(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    placed = binance_client.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "intent-42"}
    )

    fetched = binance_client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "intent-42"})

    assert fetched["id"] == placed["id"]
    assert fetched["clientOrderId"] == "intent-42"
    assert fetched["status"] == "open"
    assert local_binance.orders[0].client_order_id == "intent-42"


def test_cancel_order_when_resting_then_canceled_and_funds_released(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    order = binance_client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000)

    canceled = binance_client.cancel_order(order["id"], "BTC/USDT")

    assert canceled["status"] == "canceled"
    assert local_binance.balance("USDT") == Decimal("10000")
    assert local_binance.locked("USDT") == Decimal(0)
    assert binance_client.fetch_open_orders("BTC/USDT") == []


def test_cancel_order_when_already_filled_then_order_not_found(
    binance_client: ccxt.binance,
) -> None:
    binance_client.load_markets()
    order = binance_client.create_order("BTC/USDT", "market", "buy", 0.01)

    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        binance_client.cancel_order(order["id"], "BTC/USDT")


def test_fetch_order_when_unknown_then_order_not_found(binance_client: ccxt.binance) -> None:
    binance_client.load_markets()

    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        binance_client.fetch_order("999", "BTC/USDT")


def test_duplicate_client_order_id_among_open_orders_is_refused_but_reusable_after_fill(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    binance_client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "dup-1"})

    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        binance_client.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "dup-1"}
        )
    binance_client.create_order("ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "m-1"})
    again = binance_client.create_order(
        "ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "m-1"}
    )

    assert again["status"] == "closed"
    assert len(local_binance.orders) == 3


def test_fetch_balance_reports_free_and_used(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    binance_client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000)

    balance = binance_client.fetch_balance()

    assert balance["USDT"] == {"free": 9600.0, "used": 400.0, "total": 10000.0}


def test_market_buy_with_price_spends_amount_times_price_via_quote_order_qty(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()

    order = binance_client.create_order("BTC/USDT", "market", "buy", 0.01, 40000)

    # ccxt sends quoteOrderQty = 0.01 × 40000 = 400 USDT, which buys 0.008 BTC at 50000.
    assert local_binance.requests[-1].params["quoteOrderQty"] == "400"
    assert order["filled"] == 0.008
    assert local_binance.balance("USDT") == Decimal("9600")


def test_repr_never_shows_key_or_secret(local_binance: LocalBinanceExchange) -> None:
    text = repr(local_binance)

    assert "test-key" not in text
    assert "test-secret" not in text
    assert local_binance.base_url in text


def test_concurrent_market_buys_from_threads_keep_balances_exact(
    local_binance: LocalBinanceExchange,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from otonom_trader.broker.ccxt_routing import LOCAL_BINANCE_OPTIONS, route_ccxt_to

    def buy_five(_: int) -> int:
        client = ccxt.binance(
            {
                "apiKey": "test-key",
                "secret": "test-secret",
                "enableRateLimit": False,
                "options": dict(LOCAL_BINANCE_OPTIONS),
            }
        )
        route_ccxt_to(client, local_binance.base_url)
        client.load_markets()
        return sum(
            client.create_order("ETH/USDT", "market", "buy", 0.1)["status"] == "closed"
            for _ in range(5)
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        closed = sum(pool.map(buy_five, range(4)))

    assert closed == 20
    assert local_binance.balance("USDT") == Decimal("10000") - 20 * Decimal("300")
    assert local_binance.balance("ETH") == Decimal("1.998")
    assert len({o.order_id for o in local_binance.orders}) == 20
