"""Faults injected into the local Binance: what CcxtBroker does, and how many orders exist after.

The rule under test (DESIGN.md decision 5): a submit is never resent. A definite refusal (429,
418) raises at once; an ambiguous one (5xx, -1007, dropped connection, lost reply, timeout) is
followed by lookups by client order id, which return the order if it exists and otherwise end
in ``AmbiguousOrderError``. Reads are retried on temporary errors, a bounded number of times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from otonom_trader.broker.ccxt_broker import CcxtBroker, RetryPolicy
from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    BrokerNetworkError,
    ExchangeUnavailableError,
    RateLimitError,
)
from otonom_trader.broker.types import OrderRequest, OrderSide, OrderStatus
from otonom_trader.local_exchange import LocalBinanceExchange

BUY = OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.01"), client_order_id="intent-42")


def _lookups(exchange: LocalBinanceExchange) -> list[dict[str, str]]:
    return [r.params for r in exchange.requests if (r.method, r.path) == ("GET", "/api/v3/order")]


def _posts(exchange: LocalBinanceExchange) -> int:
    return exchange.request_paths().count("POST /api/v3/order")


@pytest.mark.parametrize("fault", ["http_429", "http_418"])
def test_submit_throttled_then_rate_limit_error_without_lookup_and_no_order(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange, fault: str
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault(fault, path="/api/v3/order", method="POST")

    with pytest.raises(RateLimitError, match=r"code -1003") as err:
        binance_broker.place_order(BUY)

    assert err.value.temporary is True
    assert not isinstance(err.value, AmbiguousOrderError)
    assert _posts(local_binance) == 1 and _lookups(local_binance) == []
    assert local_binance.orders == []


@pytest.mark.parametrize("fault", ["http_500", "http_502", "http_503", "code_-1007"])
def test_submit_5xx_then_looked_up_not_found_ambiguous_and_never_resent(
    binance_broker: CcxtBroker,
    local_binance: LocalBinanceExchange,
    recording_sleep: Any,
    fault: str,
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault(fault, path="/api/v3/order", method="POST")

    with pytest.raises(AmbiguousOrderError, match="NOT resent") as err:
        binance_broker.place_order(BUY)

    assert err.value.client_order_id == "intent-42"
    assert err.value.temporary is True
    assert _posts(local_binance) == 1
    assert [p["origClientOrderId"] for p in _lookups(local_binance)] == ["intent-42"] * 3
    assert recording_sleep.waits == [0.5, 1.0, 2.0]
    assert local_binance.orders == []


def test_submit_minus_1007_names_the_unknown_execution_status(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault("code_-1007", path="/api/v3/order", method="POST")

    with pytest.raises(AmbiguousOrderError) as err:
        binance_broker.place_order(BUY)

    first = err.value.__cause__
    assert isinstance(first, AmbiguousOrderError)
    assert "execution status unknown. (code -1007)" in str(first)


def test_submit_connection_dropped_then_ambiguous_and_no_order(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault("drop_connection", path="/api/v3/order", method="POST")

    with pytest.raises(AmbiguousOrderError):
        binance_broker.place_order(BUY)

    assert _posts(local_binance) == 1 and len(_lookups(local_binance)) == 3
    assert local_binance.orders == []


def test_submit_reply_lost_then_found_by_client_id_and_exactly_one_order(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault("lost_reply", path="/api/v3/order", method="POST")

    fill = binance_broker.place_order(BUY)

    assert (fill.status, fill.quantity, fill.price) == (OrderStatus.FILLED, Decimal("0.01"), 50000)
    assert fill.client_order_id == "intent-42"
    assert fill.order_id == str(local_binance.orders[0].order_id)
    assert len(local_binance.orders) == 1
    assert _posts(local_binance) == 1
    assert [p["origClientOrderId"] for p in _lookups(local_binance)] == ["intent-42"]


def test_lost_reply_and_first_lookup_fails_then_second_lookup_finds_it(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault("lost_reply", path="/api/v3/order", method="POST")
    local_binance.inject_fault("http_503", path="/api/v3/order", method="GET")

    fill = binance_broker.place_order(BUY)

    assert fill.status is OrderStatus.FILLED
    assert len(_lookups(local_binance)) == 2
    assert len(local_binance.orders) == 1 and _posts(local_binance) == 1


def test_submit_slower_than_timeout_then_lookup_waits_for_it_and_one_order(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    # Real time: the exchange executes the order 0.8 s after it arrived, long after the
    # client's 0.3 s timeout; the lookups (waits 0.25, 0.5, 1.0 s) must find it.
    broker = make_binance_broker(
        timeout_ms=300,
        retry=RetryPolicy(lookup_attempts=5, base_delay_s=0.25),
        sleep=time.sleep,
    )
    broker.load_markets()
    local_binance.inject_fault("delay", path="/api/v3/order", method="POST", seconds=0.8)

    started = time.monotonic()
    fill = broker.place_order(BUY)
    elapsed = time.monotonic() - started

    assert fill.status is OrderStatus.FILLED
    assert len(local_binance.orders) == 1 and _posts(local_binance) == 1
    assert len(_lookups(local_binance)) >= 2  # the first lookup came before the execution
    assert elapsed < 5


def test_submit_timeout_and_lookups_fail_then_ambiguous_and_order_lands_only_once(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    broker = make_binance_broker(timeout_ms=200, retry=RetryPolicy(lookup_attempts=2))
    broker.load_markets()
    # The POST is executed 0.6 s late, past the 0.2 s timeout, and both lookups fail (500):
    # the broker cannot know, so it says "ambiguous" and never resends.
    local_binance.inject_fault("delay", path="/api/v3/order", method="POST", seconds=0.6)
    local_binance.inject_fault("http_500", count=2, path="/api/v3/order", method="GET")

    with pytest.raises(AmbiguousOrderError) as err:
        broker.place_order(BUY)
    time.sleep(0.8)  # the real server's timing: let the delayed request execute

    assert "RequestTimeout" in str(err.value.__cause__)
    assert _posts(local_binance) == 1
    assert len(local_binance.orders) == 1
    assert local_binance.orders[0].client_order_id == "intent-42"


# ----------------------------------------------------------------------------- reads
def test_read_retried_on_5xx_then_succeeds(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange, recording_sleep: Any
) -> None:
    local_binance.inject_fault("http_503", count=2, path="/api/v3/account")

    balances = binance_broker.get_balances()

    assert [b.asset for b in balances] == ["USDT"]
    assert local_binance.request_paths().count("GET /api/v3/account") == 3
    assert recording_sleep.waits == [0.5, 1.0]


@pytest.mark.parametrize("fault", ["http_429", "http_418", "code_-1007", "drop_connection"])
def test_read_retried_on_every_temporary_fault(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange, fault: str
) -> None:
    local_binance.inject_fault(fault, path="/api/v3/account")

    assert binance_broker.get_balances()[0].free == Decimal("10000")
    assert local_binance.request_paths().count("GET /api/v3/account") == 2


def test_read_gives_up_after_bounded_attempts(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    local_binance.inject_fault("http_500", count=5, path="/api/v3/account")

    with pytest.raises(ExchangeUnavailableError, match="500") as err:
        binance_broker.get_balances()

    assert err.value.temporary is True
    assert local_binance.request_paths().count("GET /api/v3/account") == 3


def test_read_timeout_then_network_error_after_retries(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    broker = make_binance_broker(timeout_ms=150, retry=RetryPolicy(read_attempts=2))
    local_binance.inject_fault("delay", count=2, path="/api/v3/account", seconds=0.4)

    with pytest.raises(BrokerNetworkError, match="RequestTimeout"):
        broker.get_balances()

    assert local_binance.request_paths().count("GET /api/v3/account") == 2


def test_final_read_error_not_retried(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    broker = make_binance_broker(api_secret="wrong-secret")

    with pytest.raises(AuthenticationError):
        broker.get_balances()

    assert local_binance.request_paths().count("GET /api/v3/account") == 1


def test_cancel_5xx_then_temporary_error_and_not_retried(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    binance_broker.load_markets()
    local_binance.inject_fault("http_502", path="/api/v3/order", method="DELETE")

    with pytest.raises(ExchangeUnavailableError):
        binance_broker.cancel_order("BTCUSDT", "1")

    assert local_binance.request_paths().count("DELETE /api/v3/order") == 1
