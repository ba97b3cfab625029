"""Domain values that cross the ``Broker`` boundary.

Money is ``Decimal`` everywhere: quantities, prices, fees and balances. Constructors accept
``int``, ``str``, ``float`` or ``Decimal`` (the guide writes ``quantity=0.001``); a float is
converted through its shortest ``repr`` (``Decimal(str(0.001)) == Decimal("0.001")``), never
through its binary value (``Decimal(0.001)`` would be 0.001000000000000000020816…), so no float
drift ever enters an amount. ``to_decimal`` is that one rule, and it is tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

Number = Decimal | int | float | str


def to_decimal(value: Number, *, name: str = "value") -> Decimal:
    """Convert a number to ``Decimal`` exactly as a person wrote it.

    Floats go through ``repr`` (the shortest string that round-trips), so ``0.1`` becomes
    ``Decimal("0.1")``. NaN and infinities are refused: they have no place in money.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not a bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{name} is not a number: {value!r}") from exc
    else:
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


class OrderSide(StrEnum):
    """Buy or sell."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Market (fill now at the best available price) or limit (fill at the price or better)."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """Life cycle of an order as this system records it."""

    JOURNALED = "journaled"  # written to the database, not yet sent
    SUBMITTED = "submitted"  # sent; outcome not yet known
    OPEN = "open"  # accepted and resting (limit order)
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # ambiguous failure and the lookup found nothing yet
    # Journaled, then verified absent on the venue (the process ended before sending, or the
    # request never arrived): final for its run, and the same intent may be sent again.
    NOT_SENT = "not_sent"


@dataclass(frozen=True)
class OrderRequest:
    """An order to place. ``quantity`` is in the base asset (BTC for BTCUSDT).

    ``price`` is required for LIMIT orders and must be ``None`` for MARKET orders (a priced market
    order would be sent by ccxt as a quote-amount order). ``client_order_id`` is the idempotency
    key: brokers send it to the exchange, and the same id is never submitted twice.
    """

    symbol: str
    side: OrderSide
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    client_order_id: str | None = None
    reduce_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", OrderSide(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        quantity = to_decimal(self.quantity, name="quantity")
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        object.__setattr__(self, "quantity", quantity)
        if self.price is not None:
            price = to_decimal(self.price, name="price")
            if price <= 0:
                raise ValueError(f"price must be positive, got {price}")
            object.__setattr__(self, "price", price)
        if self.order_type is OrderType.LIMIT and self.price is None:
            raise ValueError("a LIMIT order needs a price")
        if not self.symbol:
            raise ValueError("symbol must not be empty")


@dataclass(frozen=True)
class OrderFill:
    """The result of ``place_order``: what was filled, at what average price, for what fee.

    ``quantity`` is the filled base amount (0 for an order that rests unfilled); ``price`` the
    average fill price (``None`` if nothing filled); ``requested_quantity`` what was asked.
    """

    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal | None
    requested_quantity: Decimal
    status: OrderStatus
    order_id: str
    client_order_id: str | None = None
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", OrderSide(self.side))
        object.__setattr__(self, "status", OrderStatus(self.status))
        object.__setattr__(self, "quantity", to_decimal(self.quantity, name="quantity"))
        object.__setattr__(
            self, "requested_quantity", to_decimal(self.requested_quantity, name="requested")
        )
        object.__setattr__(self, "fee", to_decimal(self.fee, name="fee"))
        if self.price is not None:
            object.__setattr__(self, "price", to_decimal(self.price, name="price"))

    @property
    def notional(self) -> Decimal:
        """Filled quantity × average price (0 when nothing filled)."""
        return self.quantity * self.price if self.price is not None else Decimal(0)


@dataclass(frozen=True)
class Position:
    """A holding in one symbol. ``quantity`` > 0 is long (spot positions are never short)."""

    symbol: str
    quantity: Decimal
    avg_entry_price: Decimal
    mark_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in ("quantity", "avg_entry_price", "realized_pnl"):
            object.__setattr__(self, name, to_decimal(getattr(self, name), name=name))
        if self.mark_price is not None:
            object.__setattr__(self, "mark_price", to_decimal(self.mark_price, name="mark_price"))

    @property
    def market_value(self) -> Decimal:
        """Quantity × mark price (entry price when no mark is known)."""
        return self.quantity * (
            self.mark_price if self.mark_price is not None else self.avg_entry_price
        )

    @property
    def unrealized_pnl(self) -> Decimal:
        """Mark-to-market profit of the open quantity (0 when no mark is known)."""
        if self.mark_price is None:
            return Decimal(0)
        return (self.mark_price - self.avg_entry_price) * self.quantity


@dataclass(frozen=True)
class Balance:
    """Holdings of one asset: ``free`` can be spent, ``locked`` is held by open orders."""

    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "free", to_decimal(self.free, name="free"))
        object.__setattr__(self, "locked", to_decimal(self.locked, name="locked"))

    @property
    def total(self) -> Decimal:
        """Free plus locked."""
        return self.free + self.locked
