"""The order journal: every intent is a database row *before* it is sent.

Client order ids are deterministic — a hash of the run, the intent's position in the run, the
symbol, the side and the book — so a re-run of the same cycle produces the same ids, finds the
journaled rows, and never sends an order twice. Ids fit every exchange: at most 36 characters of
``[A-Za-z0-9_-]`` (Binance allows ``[.A-Z:/a-z0-9_-]{1,36}``).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.types import OrderFill, OrderRequest, OrderStatus
from otonom_trader.persistence.models import OrderRecord

# Statuses after which an order must not be sent again.
SENT_STATUSES = {
    OrderStatus.SUBMITTED,
    OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.REJECTED,
    OrderStatus.UNKNOWN,
}


def make_client_order_id(run_id: str, index: int, symbol: str, side: str, book: str) -> str:
    """``ot-<24 hex>-<book letter>``: deterministic, 29 characters.

    The book is part of the hash, not only of the suffix: two books that share a first letter
    ("paper", "probe") must never share an id (the journal's client ids are unique).
    """
    digest = hashlib.sha256(f"{run_id}|{index}|{symbol}|{side}|{book}".encode()).hexdigest()[:24]
    letter = book[:1].lower()
    if not (letter.isascii() and letter.isalnum()):
        letter = "x"
    return f"ot-{digest}-{letter}"


def random_client_order_id() -> str:
    """For orders placed outside a daemon cycle (CLI, guide snippets)."""
    return f"ot-{uuid.uuid4().hex[:24]}-x"


def journal_order(
    session: Session,
    req: OrderRequest,
    *,
    book: str,
    mode: str,
    run_id: str | None,
    signal_price: Decimal | None,
    now: datetime,
) -> OrderRecord:
    """The journal row of ``req`` (by its client order id), created as JOURNALED if new."""
    if not req.client_order_id:
        raise ValueError("journaled orders need a client_order_id")
    existing = session.scalars(
        select(OrderRecord).where(OrderRecord.client_order_id == req.client_order_id)
    ).first()
    if existing is not None:
        return existing
    record = OrderRecord(
        client_order_id=req.client_order_id,
        run_id=run_id,
        book=book,
        mode=mode,
        symbol=req.symbol,
        side=req.side.value,
        order_type=req.order_type.value,
        status=OrderStatus.JOURNALED.value,
        reduce_only=req.reduce_only,
        requested_qty=req.quantity,
        requested_price=req.price,
        signal_price=signal_price,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    return record


def already_sent(record: OrderRecord) -> bool:
    """True when the journal says this order left (or may have left) the building."""
    return OrderStatus(record.status) in SENT_STATUSES


def record_fill(record: OrderRecord, fill: OrderFill, now: datetime) -> None:
    """Write the outcome of a placed order onto its journal row."""
    record.status = fill.status.value
    record.filled_qty = fill.quantity
    record.avg_fill_price = fill.price
    record.fee = fill.fee
    record.fee_currency = fill.fee_currency
    record.exchange_order_id = fill.order_id
    record.updated_at = now


def record_failure(record: OrderRecord, status: OrderStatus, error: str, now: datetime) -> None:
    """Mark a journaled order as rejected (final error) or unknown (ambiguous outcome)."""
    record.status = status.value
    record.error = error[:2000]
    record.updated_at = now
