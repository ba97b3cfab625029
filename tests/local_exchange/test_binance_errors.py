"""Binance's error codes from the local exchange, as the real ccxt.binance maps them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import pytest

from otonom_trader.broker.ccxt_routing import LOCAL_BINANCE_OPTIONS, route_ccxt_to
from otonom_trader.local_exchange import LocalBinanceExchange


def _client(base_url: str, key: str = "test-key", secret: str = "test-secret") -> ccxt.binance:
    client = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "timeout": 2000,
            "enableRateLimit": False,
            "options": dict(LOCAL_BINANCE_OPTIONS),
        }
    )
    route_ccxt_to(client, base_url)
    return client


@pytest.fixture
def loaded(binance_client: ccxt.binance) -> Iterator[ccxt.binance]:
    binance_client.load_markets()
    yield binance_client


def test_limit_price_above_max_price_is_refused_with_price_filter(
    local_binance: LocalBinanceExchange, loaded: ccxt.binance
) -> None:
    with pytest.raises(ccxt.InvalidOrder, match=r"-1013.*Filter failure: PRICE_FILTER"):
        loaded.create_order("BTC/USDT", "limit", "buy", 0.00001, 2_000_000)

    assert local_binance.orders == []


def test_price_off_the_tick_sent_raw_is_refused_with_price_filter(loaded: ccxt.binance) -> None:
    # ccxt rounds prices to the tick itself, so the raw endpoint proves the server's own check.
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        loaded.private_post_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "40000.005",
            }
        )


def test_quantity_above_max_qty_is_refused_with_lot_size(loaded: ccxt.binance) -> None:
    with pytest.raises(ccxt.InvalidOrder, match=r"-1013.*Filter failure: LOT_SIZE"):
        loaded.create_order("BTC/USDT", "limit", "buy", 9001, 1)


def test_quantity_off_the_step_sent_raw_is_refused_with_lot_size(loaded: ccxt.binance) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        loaded.private_post_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0010001"}
        )


def test_order_below_min_notional_is_refused_with_notional_as_bad_request(
    loaded: ccxt.binance,
) -> None:
    with pytest.raises(ccxt.BadRequest, match=r"-1013.*Filter failure: NOTIONAL") as caught:
        loaded.create_order("BTC/USDT", "market", "buy", 0.00005)

    assert not isinstance(caught.value, ccxt.InvalidOrder)


def test_order_larger_than_balance_is_refused_with_insufficient_funds(
    local_binance: LocalBinanceExchange, loaded: ccxt.binance
) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        loaded.create_order("BTC/USDT", "market", "buy", 1)

    assert local_binance.balance("USDT") == Decimal("10000")


def test_sell_without_base_asset_is_refused_with_insufficient_funds(loaded: ccxt.binance) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        loaded.create_order("ETH/USDT", "limit", "sell", 1, 4000)


def test_unknown_symbol_is_refused_with_invalid_symbol(loaded: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        loaded.public_get_ticker_24hr({"symbol": "FOOUSDT"})


def test_limit_maker_that_would_cross_is_refused(loaded: ccxt.binance) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="immediately match"):
        loaded.create_order("BTC/USDT", "limit", "buy", 0.001, 51000, {"postOnly": True})


def test_wrong_secret_is_refused_with_invalid_signature(
    local_binance: LocalBinanceExchange,
) -> None:
    client = _client(local_binance.base_url, secret="not-the-secret")

    with pytest.raises(ccxt.AuthenticationError, match=r"-1022.*Signature for this request"):
        client.fetch_balance()


def test_unknown_api_key_is_refused_with_2015(local_binance: LocalBinanceExchange) -> None:
    client = _client(local_binance.base_url, key="someone-else")

    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        client.fetch_balance()


def test_timestamp_outside_recv_window_is_refused_with_1021() -> None:
    # The exchange's clock runs 30 s ahead of ours: every request looks stale to it.
    ahead = timedelta(seconds=30)
    with LocalBinanceExchange(clock=lambda: datetime.now(UTC) + ahead) as exchange:
        client = _client(exchange.base_url)

        with pytest.raises(ccxt.InvalidNonce, match=r"-1021.*outside of the recvWindow"):
            client.fetch_balance()


def test_timestamp_ahead_of_server_is_refused_with_1021() -> None:
    behind = timedelta(seconds=5)
    with LocalBinanceExchange(clock=lambda: datetime.now(UTC) - behind) as exchange:
        client = _client(exchange.base_url)

        with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
            client.fetch_balance()


def test_api_restrictions_report_withdrawal_permission_switch(
    local_binance: LocalBinanceExchange, loaded: ccxt.binance
) -> None:
    safe = loaded.sapi_get_account_apirestrictions()
    local_binance.can_withdraw = True

    risky = loaded.sapi_get_account_apirestrictions()

    assert safe["enableWithdrawals"] is False
    assert safe["enableSpotAndMarginTrading"] is True
    assert safe["enableReading"] is True
    assert safe["ipRestrict"] is False
    assert risky["enableWithdrawals"] is True
    assert loaded.fetch_balance()["info"]["canWithdraw"] is True


def test_api_restrictions_when_disabled_then_404_like_a_testnet(
    local_binance: LocalBinanceExchange, loaded: ccxt.binance
) -> None:
    local_binance.restrictions_endpoint_enabled = False

    with pytest.raises(ccxt.ExchangeNotAvailable, match="404"):
        loaded.sapi_get_account_apirestrictions()
