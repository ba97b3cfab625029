"""The order journal: every intent is a database row *before* it is sent.

Client order ids are derived from what the order *is*, not from which run sent it: the account,
the bot (strategy name and version), the symbol, the side, the closed candle that produced the
signal and the leg (paper or broker). A restarted or overlapping cycle for the same candle
computes the same id, finds it in the journal (or, after recovery, on the exchange) and never
sends it twice. Ids fit every exchange: at most 36 characters of
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

# Statuses after which an order must not be sent again (NOT_SENT and JOURNALED may be sent).
SENT_STATUSES = {
    OrderStatus.ANOMALOUS,
    OrderStatus.SUBMITTED,
    OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.REJECTED,
    OrderStatus.UNKNOWN,
}


def intent_key(*, account: str, bot: str, symbol: str, side: str, candle: str) -> str:
    """24 hex digits naming one intent: the same in every run for the same candle.

    ``candle`` is the open time of the closed candle whose signal this order carries out.
    """
    return hashlib.sha256("|".join((account, bot, symbol, side, candle)).encode()).hexdigest()[:24]


def intent_client_order_id(key: str, leg: str) -> str:
    """``ot-<24 hex>-<leg letter>``: the client order id of intent ``key`` on ``leg``.

    The leg is part of the hash, not only of the suffix: two legs that share a first letter
    must never share an id (the journal's client ids are unique).
    """
    digest = hashlib.sha256(f"{key}|{leg}".encode()).hexdigest()[:24]
    letter = leg[:1].lower()
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
    bot: str | None = None,
    account_id: str | None = None,
) -> OrderRecord:
    """The journal row of ``req`` (by its client order id), created as JOURNALED if new; it
    carries the named bot that sent it (``None``: the unnamed bot) and the account it trades."""
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
        bot=bot,
        account_id=account_id,
    )
    session.add(record)
    session.flush()
    return record


# Statuses that a later cycle still has to resolve from the venue.
OPEN_STATUSES = {
    OrderStatus.JOURNALED,
    OrderStatus.SUBMITTED,
    OrderStatus.OPEN,
    OrderStatus.UNKNOWN,
    OrderStatus.ANOMALOUS,
}


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
    record.error = None  # an earlier attempt's refusal (a halt since reset) no longer applies
    record.updated_at = now


def record_failure(record: OrderRecord, status: OrderStatus, error: str, now: datetime) -> None:
    """Mark a journaled order as rejected (final error) or unknown (ambiguous outcome)."""
    record.status = status.value
    record.error = error[:2000]
    record.updated_at = now
