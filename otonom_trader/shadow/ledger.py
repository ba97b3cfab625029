"""The shadow ledger: for every SHADOW intent, the paper fill and the broker fill side by side.

In SHADOW mode the paper book and the broker execute the same order intents. The daemon turns
each side's outcome into a :class:`ShadowLeg` (from the ``OrderFill`` it got back, or from the
exception it caught) and hands both to :meth:`ShadowLedger.record`, which computes each leg's
slippage against the signal price and writes one ``shadow_pairs`` row.

Slippage is in basis points of the signal price and signed so that **positive is worse** for the
order's side: a buy filled above the signal price, or a sell filled below it, is positive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select

from otonom_trader.broker.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    KillSwitchError,
    PermissionDeniedError,
)
from otonom_trader.broker.types import OrderFill, OrderSide, OrderStatus, to_decimal
from otonom_trader.persistence import Database
from otonom_trader.persistence.shadow_models import ShadowPair


class LegStatus:
    """The outcomes a leg can have (plain strings: they are stored and shown as they are)."""

    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    OPEN = "open"
    REJECTED = "rejected"
    ERROR = "error"
    HALTED = "halted"
    SKIPPED = "skipped"

    ALL: frozenset[str] = frozenset(
        {FILLED, PARTIALLY_FILLED, OPEN, REJECTED, ERROR, HALTED, SKIPPED}
    )


#: Order statuses that mean "the exchange accepted the order and nothing filled yet".
_OPEN_STATUSES = {OrderStatus.JOURNALED, OrderStatus.SUBMITTED, OrderStatus.OPEN}

#: Final errors where the broker or exchange *refused* the order (as opposed to failing to
#: answer): they are "rejected", everything else that is not a halt is "error".
_REJECTION_ERRORS = (InvalidOrderError, InsufficientFundsError, PermissionDeniedError)

#: ``key=value`` pairs that could carry a credential if an exception quotes a request URL or body.
_SECRET_PAIR = re.compile(
    r"(?i)\b([\w-]*(?:signature|api[_-]?key|secret|token|password|passwd))"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;]+)"
)
_ERROR_MAX_CHARS = 300
_BPS_QUANTUM = Decimal("0.0001")


def one_line_error(exc: BaseException) -> str:
    """``ClassName: message`` on one line, credentials masked, at most 300 characters.

    Broker errors are already written without secrets; the masking is a second line of defence
    for foreign exceptions that quote a signed request (``signature=…``, ``apiKey=…``).
    """
    message = " ".join(str(exc).split())
    message = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}***", message)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > _ERROR_MAX_CHARS:
        text = text[: _ERROR_MAX_CHARS - 1] + "…"
    return text


@dataclass(frozen=True)
class ShadowLeg:
    """One side's (paper or broker) outcome for one intent.

    ``quantity`` is the filled base quantity (0 when nothing filled), ``price`` the average fill
    price (``None`` when nothing filled), ``fee`` in the quote currency, ``error`` one line
    without secrets.
    """

    status: str
    quantity: Decimal
    price: Decimal | None
    fee: Decimal
    latency_ms: float | None
    client_order_id: str | None
    error: str | None

    def __post_init__(self) -> None:
        if self.status not in LegStatus.ALL:
            allowed = ", ".join(sorted(LegStatus.ALL))
            raise ValueError(f"shadow leg status must be one of {allowed}, got {self.status!r}")
        object.__setattr__(self, "quantity", to_decimal(self.quantity, name="quantity"))
        object.__setattr__(self, "fee", to_decimal(self.fee, name="fee"))
        if self.quantity < 0:
            raise ValueError(f"shadow leg quantity must not be negative, got {self.quantity}")
        if self.price is not None:
            price = to_decimal(self.price, name="price")
            if price <= 0:
                raise ValueError(f"shadow leg price must be positive, got {price}")
            object.__setattr__(self, "price", price)

    @property
    def filled(self) -> bool:
        """True when any quantity filled (fully or partially)."""
        return self.quantity > 0

    @classmethod
    def from_fill(cls, fill: OrderFill) -> ShadowLeg:
        """The leg for an order that came back from ``place_order``."""
        error: str | None = None
        if fill.status is OrderStatus.FILLED:
            status = LegStatus.FILLED
        elif fill.status is OrderStatus.PARTIALLY_FILLED:
            status = LegStatus.PARTIALLY_FILLED
        elif fill.status in _OPEN_STATUSES:
            # A resting limit order may already have filled part of its quantity.
            status = LegStatus.PARTIALLY_FILLED if fill.quantity > 0 else LegStatus.OPEN
        elif fill.status is OrderStatus.CANCELLED:
            # Cancelled before completion (e.g. an IOC remainder): what filled still counts.
            status = LegStatus.PARTIALLY_FILLED if fill.quantity > 0 else LegStatus.REJECTED
            if fill.quantity == 0:
                error = "order cancelled without a fill"
        elif fill.status is OrderStatus.REJECTED:
            status = LegStatus.REJECTED
            error = "order rejected by the exchange"
        else:  # UNKNOWN: an ambiguous failure whose lookup has not found the order yet
            status = LegStatus.ERROR
            error = "order outcome unknown (ambiguous failure, not found by client order id yet)"
        return cls(
            status=status,
            quantity=fill.quantity,
            price=fill.price if fill.quantity > 0 else None,
            fee=fill.fee,
            latency_ms=fill.latency_ms,
            client_order_id=fill.client_order_id,
            error=error,
        )

    @classmethod
    def from_error(cls, exc: BaseException, client_order_id: str | None) -> ShadowLeg:
        """The leg for an order whose placement raised: halted, rejected or error."""
        if isinstance(exc, KillSwitchError):
            status = LegStatus.HALTED
        elif isinstance(exc, _REJECTION_ERRORS):
            status = LegStatus.REJECTED
        else:
            status = LegStatus.ERROR
        return cls(
            status=status,
            quantity=Decimal(0),
            price=None,
            fee=Decimal(0),
            latency_ms=None,
            client_order_id=client_order_id,
            error=one_line_error(exc),
        )

    @classmethod
    def skipped(cls, reason: str, client_order_id: str | None = None) -> ShadowLeg:
        """The leg of a book that did not execute the intent at all (``reason`` says why)."""
        return cls(
            status=LegStatus.SKIPPED,
            quantity=Decimal(0),
            price=None,
            fee=Decimal(0),
            latency_ms=None,
            client_order_id=client_order_id,
            error=" ".join(reason.split())[:_ERROR_MAX_CHARS] or None,
        )


def slippage_bps(
    side: OrderSide, signal_price: Decimal, fill_price: Decimal | None
) -> Decimal | None:
    """Slippage of a fill against the signal price, in basis points, positive = worse.

    A buy pays ``(fill - signal) / signal``; a sell receives ``(signal - fill) / signal``.
    Rounded half-even to 0.0001 bps (well below any price tick). ``None`` when nothing filled.
    """
    if fill_price is None:
        return None
    if signal_price <= 0:
        raise ValueError(f"signal price must be positive, got {signal_price}")
    difference = fill_price - signal_price if side is OrderSide.BUY else signal_price - fill_price
    return (difference / signal_price * 10_000).quantize(_BPS_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class ShadowPairView:
    """One ledger row as a value: the intent, both legs and their slippages."""

    id: int
    run_id: str
    intent_id: str
    symbol: str
    side: OrderSide
    requested_qty: Decimal
    signal_price: Decimal
    paper: ShadowLeg
    broker: ShadowLeg
    paper_slippage_bps: Decimal | None
    broker_slippage_bps: Decimal | None
    created_at: datetime

    @property
    def fee_difference(self) -> Decimal:
        """Broker fee minus paper fee (positive: the broker cost more)."""
        return self.broker.fee - self.paper.fee

    @property
    def status_mismatch(self) -> bool:
        """True when the two books ended in different statuses."""
        return self.paper.status != self.broker.status

    @property
    def quantity_mismatch(self) -> bool:
        """True when the two books filled different quantities."""
        return self.paper.quantity != self.broker.quantity

    def leg(self, book: str) -> ShadowLeg:
        """The ``"paper"`` or ``"broker"`` leg."""
        if book == "paper":
            return self.paper
        if book == "broker":
            return self.broker
        raise ValueError(f"book must be 'paper' or 'broker', got {book!r}")

    def slippage(self, book: str) -> Decimal | None:
        """The ``"paper"`` or ``"broker"`` leg's slippage in bps."""
        self.leg(book)  # validates the name
        return self.paper_slippage_bps if book == "paper" else self.broker_slippage_bps


def _leg_from_row(row: ShadowPair, prefix: str) -> ShadowLeg:
    return ShadowLeg(
        status=getattr(row, f"{prefix}status"),
        quantity=getattr(row, f"{prefix}qty"),
        price=getattr(row, f"{prefix}price"),
        fee=getattr(row, f"{prefix}fee"),
        latency_ms=getattr(row, f"{prefix}latency_ms"),
        client_order_id=getattr(row, f"{prefix}client_order_id"),
        error=getattr(row, f"{prefix}error"),
    )


def _view(row: ShadowPair) -> ShadowPairView:
    return ShadowPairView(
        id=row.id,
        run_id=row.run_id,
        intent_id=row.intent_id,
        symbol=row.symbol,
        side=OrderSide(row.side),
        requested_qty=row.requested_qty,
        signal_price=row.signal_price,
        paper=_leg_from_row(row, "paper_"),
        broker=_leg_from_row(row, "broker_"),
        paper_slippage_bps=row.paper_slippage_bps,
        broker_slippage_bps=row.broker_slippage_bps,
        created_at=row.created_at,
    )


def _write_leg(row: ShadowPair, prefix: str, leg: ShadowLeg, slippage: Decimal | None) -> None:
    setattr(row, f"{prefix}status", leg.status)
    setattr(row, f"{prefix}qty", leg.quantity)
    setattr(row, f"{prefix}price", leg.price)
    setattr(row, f"{prefix}fee", leg.fee)
    setattr(row, f"{prefix}slippage_bps", slippage)
    setattr(row, f"{prefix}latency_ms", leg.latency_ms)
    setattr(row, f"{prefix}client_order_id", leg.client_order_id)
    setattr(row, f"{prefix}error", leg.error)


def _keep_known(recorded: ShadowLeg, new: ShadowLeg) -> ShadowLeg:
    """The new leg, unless it is a skip that would hide an outcome already recorded."""
    if new.status == LegStatus.SKIPPED and recorded.status != LegStatus.SKIPPED:
        return recorded
    return new


class ShadowLedger:
    """Writes and reads ``shadow_pairs`` rows on one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        run_id: str,
        intent_id: str,
        symbol: str,
        side: OrderSide,
        requested_qty: Decimal,
        signal_price: Decimal,
        paper: ShadowLeg,
        broker: ShadowLeg,
        at: datetime,
        bot: str | None = None,
        account_id: str | None = None,
    ) -> int:
        """Write the pair for one intent and return its row id.

        Recording the same ``(run_id, intent_id)`` again updates that row (same id): a re-run
        execute step looks orders up by client order id instead of resending them, so its outcome
        is the more complete one. A ``skipped`` leg never overwrites a recorded outcome, though: a
        re-run that skips an order because it was already sent knows less than the first run.
        """
        side = OrderSide(side)
        requested_qty = to_decimal(requested_qty, name="requested_qty")
        signal_price = to_decimal(signal_price, name="signal_price")
        if requested_qty <= 0:
            raise ValueError(f"requested_qty must be positive, got {requested_qty}")
        if signal_price <= 0:
            raise ValueError(f"signal_price must be positive, got {signal_price}")
        if at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware (UTC), got naive {at}")
        if not run_id or not intent_id:
            raise ValueError("run_id and intent_id must not be empty")
        with self._db.session() as session:
            row = session.scalars(
                select(ShadowPair).where(
                    ShadowPair.run_id == run_id, ShadowPair.intent_id == intent_id
                )
            ).one_or_none()
            if row is None:
                row = ShadowPair(run_id=run_id, intent_id=intent_id, bot=bot, account_id=account_id)
                session.add(row)
            else:
                paper = _keep_known(_leg_from_row(row, "paper_"), paper)
                broker = _keep_known(_leg_from_row(row, "broker_"), broker)
            row.symbol = symbol
            row.side = side.value
            row.requested_qty = requested_qty
            row.signal_price = signal_price
            row.created_at = at
            _write_leg(row, "paper_", paper, slippage_bps(side, signal_price, paper.price))
            _write_leg(row, "broker_", broker, slippage_bps(side, signal_price, broker.price))
            session.flush()
            return row.id

    def pairs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        run_id: str | None = None,
    ) -> list[ShadowPairView]:
        """Pairs with ``since <= created_at <= until`` (either bound optional), oldest first."""
        query = select(ShadowPair)
        if since is not None:
            query = query.where(ShadowPair.created_at >= since)
        if until is not None:
            query = query.where(ShadowPair.created_at <= until)
        if run_id is not None:
            query = query.where(ShadowPair.run_id == run_id)
        query = query.order_by(ShadowPair.created_at, ShadowPair.id)
        with self._db.session() as session:
            return [_view(row) for row in session.scalars(query)]
