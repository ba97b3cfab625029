"""CcxtBroker driving the real ccxt.bybit (v5, unified account, spot) against the local Bybit."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from otonom_trader.broker.ccxt_broker import CcxtBroker
from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    BelowMinimumNotionalError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from otonom_trader.broker.key_audit import audit_api_key
from otonom_trader.broker.types import OrderRequest, OrderSide, OrderStatus, OrderType
from otonom_trader.local_exchange.bybit import LocalBybitExchange

if TYPE_CHECKING:
    from conftest import Gate

Factory = Callable[..., CcxtBroker]
CREATE = "POST /v5/order/create"


@pytest.fixture
def bybit_broker(make_bybit_broker: Factory) -> CcxtBroker:
    """A CcxtBroker on ``local_bybit`` with the test keys and fake retry waits."""
    return make_bybit_broker()


def _creates(exchange: LocalBybitExchange) -> int:
    return exchange.request_paths().count(CREATE)


def test_market_buy_sends_base_quantity_and_reports_fill_with_fee_in_quote(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange
) -> None:
    fill = bybit_broker.place_order(
        OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.0123456789"), client_order_id="by-1")
    )

    # Lot step 0.000001: 0.0123456789 → 0.012345 BTC, bought as BTC (marketUnit baseCoin).
    assert local_bybit.orders[0].orig_qty == Decimal("0.012345")
    assert (fill.status, fill.quantity, fill.price) == (
        OrderStatus.FILLED,
        Decimal("0.012345"),
        Decimal("50000"),
    )
    # 0.1 % taken in BTC (0.000012345) → 0.61725 USDT at the 50 000 average.
    assert (fill.fee, fill.fee_currency) == (Decimal("0.61725"), "USDT")
    assert fill.client_order_id == "by-1"
    assert fill.order_id == str(local_bybit.orders[0].order_id)


def test_market_sell_then_filled_and_balances_and_positions_follow(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange
) -> None:
    bybit_broker.place_order(OrderRequest("ETHUSDT", OrderSide.BUY, Decimal("1")))

    fill = bybit_broker.place_order(OrderRequest("ETH/USDT", OrderSide.SELL, Decimal("0.5")))
    balances = {b.asset: b.total for b in bybit_broker.get_balances()}
    positions = bybit_broker.get_open_positions()

    assert (fill.side, fill.quantity, fill.price) == (OrderSide.SELL, Decimal("0.5"), 3000)
    assert (fill.fee, fill.fee_currency) == (Decimal("1.5"), "USDT")
    assert balances == {"ETH": Decimal("0.499"), "USDT": Decimal("8498.5")}
    assert [(p.symbol, p.quantity, p.mark_price) for p in positions] == [
        ("ETH/USDT", Decimal("0.499"), Decimal("3000"))
    ]


def test_limit_rounded_to_tick_rests_open_and_cancel_removes_it(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange
) -> None:
    req = OrderRequest("BTCUSDT", OrderSide.BUY, "0.001", OrderType.LIMIT, "45000.19")

    fill = bybit_broker.place_order(req)
    open_orders = bybit_broker.fetch_open_orders("BTCUSDT")
    bybit_broker.cancel_order("BTCUSDT", fill.order_id)

    assert local_bybit.orders[0].price == Decimal("45000.1")  # tick 0.1, rounded down
    assert fill.status is OrderStatus.OPEN
    assert [o.order_id for o in open_orders] == [fill.order_id]
    assert bybit_broker.fetch_open_orders() == []
    assert local_bybit.orders[0].status == "CANCELED"


def test_below_minimum_notional_refused_before_sending(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange, gate_of: Gate
) -> None:
    with pytest.raises(BelowMinimumNotionalError, match="minimum notional 5 USDT"):
        gate_of(bybit_broker).place_order(
            OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.00002"))
        )

    assert _creates(local_bybit) == 0 and local_bybit.orders == []


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("insufficient", InsufficientFundsError),
        ("duplicate", InvalidOrderError),
        ("wrong_key", AuthenticationError),
    ],
)
def test_bybit_refusals_map_to_final_errors(
    make_bybit_broker: Factory,
    local_bybit: LocalBybitExchange,
    setup: str,
    error: type[Exception],
) -> None:
    broker = make_bybit_broker(api_key="wrong-key-123" if setup == "wrong_key" else "test-key")
    limit = OrderRequest("BTCUSDT", OrderSide.BUY, "0.001", OrderType.LIMIT, "40000", "dup-1")
    if setup == "duplicate":
        broker.place_order(limit)
    req = OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("1")) if setup == "insufficient" else limit

    with pytest.raises(error) as err:  # type: ignore[var-annotated]
        broker.place_order(req)

    assert err.value.temporary is False  # type: ignore[attr-defined]
    assert "wrong-key-123" not in str(err.value)


def test_cancel_unknown_order_then_order_not_found(bybit_broker: CcxtBroker) -> None:
    with pytest.raises(OrderNotFoundError, match=r"code 170213"):
        bybit_broker.cancel_order("BTCUSDT", "12345")


# ----------------------------------------------------------------------------- faults
@pytest.mark.parametrize("fault", ["http_429", "http_418"])
def test_submit_throttled_then_rate_limit_and_no_order(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange, fault: str
) -> None:
    bybit_broker.fetch_last_price("BTCUSDT")
    local_bybit.inject_fault(fault, path="/v5/order/create", method="POST")

    with pytest.raises(RateLimitError, match=r"code 10006"):
        bybit_broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.001")))

    assert _creates(local_bybit) == 1 and local_bybit.orders == []
    assert "GET /v5/order/realtime" not in local_bybit.request_paths()


@pytest.mark.parametrize("fault", ["http_500", "http_503", "code_-1007", "drop_connection"])
def test_submit_ambiguous_then_looked_up_and_never_resent(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange, fault: str
) -> None:
    bybit_broker.fetch_last_price("BTCUSDT")
    local_bybit.inject_fault(fault, path="/v5/order/create", method="POST")

    with pytest.raises(AmbiguousOrderError, match="NOT resent") as err:
        bybit_broker.place_order(
            OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.001"), client_order_id="by-amb")
        )

    assert err.value.client_order_id == "by-amb"
    assert _creates(local_bybit) == 1 and local_bybit.orders == []
    lookups = [r.params for r in local_bybit.requests if r.path == "/v5/order/realtime"]
    assert len(lookups) == 3 and all(p["orderLinkId"] == "by-amb" for p in lookups)


def test_submit_reply_lost_then_found_by_order_link_id_and_exactly_one_order(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange
) -> None:
    bybit_broker.fetch_last_price("BTCUSDT")
    local_bybit.inject_fault("lost_reply", path="/v5/order/create", method="POST")

    fill = bybit_broker.place_order(
        OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.001"), client_order_id="by-lost")
    )

    assert (fill.status, fill.quantity, fill.client_order_id) == (
        OrderStatus.FILLED,
        Decimal("0.001"),
        "by-lost",
    )
    assert _creates(local_bybit) == 1 and len(local_bybit.orders) == 1


# ----------------------------------------------------------------------------- ping, audit
def test_ping_detail_when_key_accepted(bybit_broker: CcxtBroker) -> None:
    assert bybit_broker.ping() is True
    assert "reachable and the API key is accepted" in bybit_broker.ping_detail()


def test_key_audit_trade_only_key_checked(bybit_broker: CcxtBroker) -> None:
    result = audit_api_key(bybit_broker)

    assert (result.checked, result.can_withdraw, result.can_trade) == (True, False, True)


def test_key_audit_withdraw_key_refused_unless_allowed(
    make_bybit_broker: Factory, local_bybit: LocalBybitExchange
) -> None:
    local_bybit.can_withdraw = True

    with pytest.raises(PermissionDeniedError, match="can WITHDRAW"):
        audit_api_key(make_bybit_broker())
    allowed = audit_api_key(make_bybit_broker(allow_withdraw_permission=True))

    assert (allowed.checked, allowed.can_withdraw) == (True, True)


def test_key_audit_endpoint_404_then_skipped(
    bybit_broker: CcxtBroker, local_bybit: LocalBybitExchange
) -> None:

    local_bybit.restrictions_endpoint_enabled = False

    result = audit_api_key(bybit_broker)

    assert result.checked is False and "GET /v5/user/query-api does not exist" in result.message
