"""Injected faults of the local Binance and the ccxt exceptions they produce."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from otonom_trader.local_exchange import LocalBinanceExchange

ORDER = "/api/v3/order"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("http_429", ccxt.DDoSProtection),
        ("http_418", ccxt.DDoSProtection),
        ("http_500", ccxt.ExchangeNotAvailable),
        ("http_502", ccxt.ExchangeNotAvailable),
        ("http_503", ccxt.ExchangeNotAvailable),
        ("code_-1007", ccxt.RequestTimeout),
    ],
)
def test_error_status_fault_on_submit_raises_mapped_error_and_places_nothing(
    local_binance: LocalBinanceExchange,
    binance_client: ccxt.binance,
    kind: str,
    expected: type[Exception],
) -> None:
    binance_client.load_markets()
    local_binance.inject_fault(kind, count=1, path=ORDER, method="POST")

    with pytest.raises(expected):
        binance_client.create_order("BTC/USDT", "market", "buy", 0.001)

    assert local_binance.orders == []
    assert local_binance.balance("USDT") == Decimal("10000")


def test_code_1007_says_execution_status_unknown(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    local_binance.inject_fault("code_-1007", path=ORDER, method="POST")

    with pytest.raises(ccxt.RequestTimeout, match="execution status unknown"):
        binance_client.create_order("BTC/USDT", "market", "buy", 0.001)


def test_429_is_ddos_protection_not_rate_limit_exceeded(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    local_binance.inject_fault("http_429")

    with pytest.raises(ccxt.DDoSProtection) as caught:
        binance_client.fetch_time()

    assert not isinstance(caught.value, ccxt.RateLimitExceeded)


def test_drop_connection_raises_network_error_and_places_nothing(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    local_binance.inject_fault("drop_connection", path=ORDER, method="POST")

    with pytest.raises(ccxt.NetworkError):
        binance_client.create_order("BTC/USDT", "market", "buy", 0.001)

    assert local_binance.orders == []


def test_lost_reply_raises_network_error_but_leaves_exactly_one_order(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    local_binance.inject_fault("lost_reply", path=ORDER, method="POST")

    with pytest.raises(ccxt.NetworkError):
        binance_client.create_order(
            "BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "intent-lost-1"}
        )

    assert len(local_binance.orders) == 1
    found = binance_client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "intent-lost-1"})
    assert found["status"] == "closed"
    assert found["filled"] == 0.001


def test_delay_longer_than_client_timeout_raises_request_timeout(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.timeout = 300  # ms
    local_binance.inject_fault("delay", seconds=0.6, path="/api/v3/time")

    with pytest.raises(ccxt.RequestTimeout):
        binance_client.fetch_time()


def test_delay_shorter_than_timeout_still_answers(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    local_binance.inject_fault("delay", seconds=0.2, path="/api/v3/time")

    assert binance_client.fetch_time() > 0


def test_fault_is_consumed_after_count_requests(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    local_binance.inject_fault("http_503", count=2, path="/api/v3/time")

    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            binance_client.fetch_time()
    server_time = binance_client.fetch_time()

    assert server_time > 0
    assert local_binance.faults.pending == []


def test_fault_for_other_path_leaves_this_request_alone(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    local_binance.inject_fault("http_500", path=ORDER, method="POST")

    assert binance_client.fetch_time() > 0
    assert len(local_binance.faults.pending) == 1


def test_inject_fault_with_unknown_kind_names_the_kind(local_binance: LocalBinanceExchange) -> None:
    with pytest.raises(ValueError, match="unknown kind 'http_999'"):
        local_binance.inject_fault("http_999")


def test_inject_delay_without_seconds_is_refused(local_binance: LocalBinanceExchange) -> None:
    with pytest.raises(ValueError, match="delay"):
        local_binance.inject_fault("delay")


def test_code_1007_with_execute_places_the_order_although_the_client_sees_a_timeout(
    local_binance: LocalBinanceExchange, binance_client: ccxt.binance
) -> None:
    binance_client.load_markets()
    local_binance.inject_fault("code_-1007", path=ORDER, method="POST", execute=True)

    with pytest.raises(ccxt.RequestTimeout):
        binance_client.create_order(
            "BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "intent-1007"}
        )

    assert [o.client_order_id for o in local_binance.orders] == ["intent-1007"]
    assert local_binance.balance("BTC") == Decimal("0.000999")


def test_execute_on_a_connection_fault_is_refused(local_binance: LocalBinanceExchange) -> None:
    with pytest.raises(ValueError, match="execute=True applies to 5xx"):
        local_binance.inject_fault("drop_connection", execute=True)
