"""to_decimal and the value types that cross the Broker boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest

from otonom_trader.broker.types import Balance, OrderRequest, OrderSide, Position, to_decimal


def test_to_decimal_when_float_then_via_shortest_repr() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(0.001) == Decimal("0.001")
    assert to_decimal(1e-05) == Decimal("0.00001")


@pytest.mark.parametrize("value", [7, "7.50", " 7.5 ", Decimal("7.5")])
def test_to_decimal_when_int_str_or_decimal_then_exact(value: object) -> None:
    assert to_decimal(value) in (Decimal(7), Decimal("7.5"))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "NaN", "-Infinity", Decimal("nan")])
def test_to_decimal_when_not_finite_then_refused(value: object) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_decimal(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, False])
def test_to_decimal_when_bool_then_refused(value: bool) -> None:
    with pytest.raises(TypeError, match="not a bool"):
        to_decimal(value)


def test_to_decimal_when_text_or_other_type_then_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        to_decimal("ten")
    with pytest.raises(TypeError):
        to_decimal([1])  # type: ignore[arg-type]


def test_order_request_when_guide_floats_then_decimal_and_validated() -> None:
    req = OrderRequest(symbol="BTCUSDT", side="buy", quantity=0.001)  # type: ignore[arg-type]
    assert req.quantity == Decimal("0.001") and req.side is OrderSide.BUY
    with pytest.raises(ValueError, match="positive"):
        OrderRequest("BTCUSDT", OrderSide.BUY, 0)
    with pytest.raises(ValueError, match="needs a price"):
        OrderRequest("BTCUSDT", OrderSide.BUY, 1, "limit")  # type: ignore[arg-type]


def test_position_and_balance_when_marked_then_value_and_pnl() -> None:
    position = Position("BTC/USDT", "2", "100", mark_price="110")  # type: ignore[arg-type]
    assert position.market_value == Decimal("220") and position.unrealized_pnl == Decimal("20")
    assert Position("BTC/USDT", 2, 100).market_value == Decimal(200)
    assert Balance("USDT", "5", "1.5").total == Decimal("6.5")  # type: ignore[arg-type]
