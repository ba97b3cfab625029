"""Bybit's per-key, per-endpoint limits: paced before sending, corrected from the replies.

Counted on the exchange's side: the local Bybit refuses (retCode 10006) what is over a key's
per-second limit of an endpoint and counts the refusals, as Bybit does.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fake_time import FakeTime

from otonom_trader.accounts.identity import key_fingerprint
from otonom_trader.broker.ccxt_broker import CcxtBroker
from otonom_trader.broker.endpoint_limits import EndpointAllowance, shared_allowance
from otonom_trader.broker.errors import BrokerError
from otonom_trader.broker.types import OrderRequest, OrderSide
from otonom_trader.local_exchange.bybit import LocalBybitExchange

Factory = Callable[..., CcxtBroker]
CREATE = "v5/order/create"
ORDERS = 60
THREADS = 16


def test_no_more_than_the_limit_in_any_second() -> None:
    time = FakeTime(1_000.0)
    allowance = EndpointAllowance({CREATE: 3}, clock=time.clock, sleep=time.sleep)

    for _ in range(3):
        allowance.take("/v5/order/create")
        allowance.answered("/v5/order/create?category=spot")
    assert time.slept == []
    allowance.take("/v5/order/create?category=spot")

    assert time.slept == [1.0]  # the fourth waits for the first reply to leave the window


def test_a_request_holds_its_place_until_a_window_after_its_reply() -> None:
    """The venue counts a request on arrival, anywhere between send and reply: a slow reply
    keeps its place longer, so a late arrival never lands in the next window's count."""
    time = FakeTime(1_000.0)
    allowance = EndpointAllowance({CREATE: 2}, clock=time.clock, sleep=time.sleep)
    allowance.take(CREATE)
    allowance.take(CREATE)
    time.now += 5.0  # both still in flight five seconds later: still holding their places
    allowance.answered(CREATE)  # the first reply comes at last

    allowance.take(CREATE)  # the second is still in flight, the first answered just now

    assert time.slept == [pytest.approx(1.0)]


def test_a_reply_with_nothing_left_blocks_until_its_reset() -> None:
    time = FakeTime(1_000.0)
    allowance = EndpointAllowance({CREATE: 20}, clock=time.clock, sleep=time.sleep)

    allowance.observe("/v5/order/create", remaining=0, limit=20, reset_at_s=time.now + 0.4)
    allowance.take("v5/order/create")

    assert time.slept == [pytest.approx(0.4)]


def test_the_accounts_own_limit_replaces_the_table() -> None:
    time = FakeTime(1_000.0)
    allowance = EndpointAllowance({CREATE: 20}, clock=time.clock, sleep=time.sleep)

    allowance.observe("/v5/order/create", remaining=7, limit=8, reset_at_s=time.now + 1)

    assert allowance.limit_of(CREATE) == 8
    assert allowance.limit_of("v5/order/realtime") == 10  # unlisted here: the default


def _burst(broker: CcxtBroker, prefix: str) -> list[str]:
    """``ORDERS`` small market buys from ``THREADS`` threads at once; the errors, if any."""

    def buy(i: int) -> str:
        request = OrderRequest(
            "BTCUSDT", OrderSide.BUY, Decimal("0.0002"), client_order_id=f"{prefix}-{i}"
        )
        try:
            broker.place_order(request)
        except BrokerError as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    with ThreadPoolExecutor(THREADS) as pool:
        return [error for error in pool.map(buy, range(ORDERS)) if error]


def test_sixteen_threads_placing_sixty_orders_are_never_refused(
    make_bybit_broker: Factory, local_bybit: LocalBybitExchange
) -> None:
    broker = make_bybit_broker()

    errors = _burst(broker, "paced")

    assert errors == []
    assert local_bybit.rate_limited == 0
    placed = [order.client_order_id for order in local_bybit.orders]
    assert sorted(placed) == sorted(f"paced-{i}" for i in range(ORDERS))


def test_the_same_burst_unpaced_is_refused_by_the_venue(
    make_bybit_broker: Factory, local_bybit: LocalBybitExchange
) -> None:
    """The control: without the allowance the venue refuses part of the burst, so the test
    above would fail if the pacing broke."""
    broker = make_bybit_broker()
    broker._exchange.throttle = lambda cost=None: None  # noqa: SLF001 - the control experiment
    local_bybit.endpoint_limits[CREATE] = 5

    _burst(broker, "unpaced")

    assert local_bybit.rate_limited > 0


def test_a_higher_account_limit_is_learned_from_the_first_reply(
    make_bybit_broker: Factory, local_bybit: LocalBybitExchange, exchange_keys: tuple[str, str]
) -> None:
    local_bybit.endpoint_limits[CREATE] = 40  # a VIP account
    broker = make_bybit_broker()
    allowance = shared_allowance("bybit", local_bybit.base_url, key_fingerprint(exchange_keys[0]))
    assert allowance is not None
    assert allowance.limit_of(CREATE) == 20  # the published table until the venue says more

    broker.place_order(
        OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.0002"), client_order_id="vip-1")
    )

    assert allowance.limit_of(CREATE) == 40
