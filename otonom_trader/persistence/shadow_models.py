"""The shadow ledger's table: one row per order intent executed in SHADOW mode.

Each row pairs what the paper book did with what the broker did for the *same* intent, so fills
can be compared leg by leg (price, quantity, fee, slippage against the signal price, latency,
status). Written by :class:`otonom_trader.shadow.ledger.ShadowLedger`; migration ``0004_shadow``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otonom_trader.persistence.models import Base, utc_now


class ShadowPair(Base):
    """The paper leg and the broker leg of one intent, side by side.

    ``*_slippage_bps`` is signed so that a positive value is *worse* than the signal price for the
    order's side (a buy filled above it, a sell filled below it); ``None`` when nothing filled.
    """

    __tablename__ = "shadow_pairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64))
    intent_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    requested_qty: Mapped[Decimal]
    signal_price: Mapped[Decimal]

    paper_status: Mapped[str] = mapped_column(String(20))
    paper_qty: Mapped[Decimal]
    paper_price: Mapped[Decimal | None]
    paper_fee: Mapped[Decimal]
    paper_slippage_bps: Mapped[Decimal | None]
    paper_latency_ms: Mapped[float | None] = mapped_column(Float)
    paper_client_order_id: Mapped[str | None] = mapped_column(String(36))
    paper_error: Mapped[str | None] = mapped_column(Text)

    broker_status: Mapped[str] = mapped_column(String(20))
    broker_qty: Mapped[Decimal]
    broker_price: Mapped[Decimal | None]
    broker_fee: Mapped[Decimal]
    broker_slippage_bps: Mapped[Decimal | None]
    broker_latency_ms: Mapped[float | None] = mapped_column(Float)
    broker_client_order_id: Mapped[str | None] = mapped_column(String(36))
    broker_error: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # The named bot of a fleet that wrote the row (NULL: the unnamed single bot) — migration 0009.
    bot: Mapped[str | None] = mapped_column(String(24))
    account_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("run_id", "intent_id", name="uq_shadow_pairs_run_intent"),
        Index("ix_shadow_pairs_created_at", "created_at"),
        Index("ix_shadow_pairs_run_id", "run_id"),
        Index("ix_shadow_pairs_bot_created", "bot", "created_at"),
    )
