"""Writes the rows the guardrails read (snapshots and closed trades), as the daemon would."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import count

from otonom_trader.persistence import Database, FillRecord, OrderRecord, PortfolioSnapshot

_ids = count(1)


def add_snapshot(
    db: Database, book: str, taken_at: datetime, equity: Decimal, peak: Decimal | None = None
) -> None:
    """One portfolio snapshot; ``peak`` defaults to ``equity``."""
    with db.session() as session:
        session.add(
            PortfolioSnapshot(
                book=book,
                run_id=None,
                taken_at=taken_at,
                equity=equity,
                cash=equity,
                peak_equity=peak if peak is not None else equity,
                positions_json="[]",
            )
        )


def add_closed_trade(db: Database, book: str, at: datetime, pnl: Decimal | None) -> int:
    """An order and its fill; ``pnl`` None is an opening fill (no realized PnL)."""
    with db.session() as session:
        order = OrderRecord(
            client_order_id=f"t-{next(_ids)}-{book}"[:36],
            book=book,
            mode="paper",
            symbol="BTC/USDT",
            side="sell" if pnl is not None else "buy",
            order_type="market",
            status="filled",
            reduce_only=False,
            requested_qty=Decimal("0.01"),
            filled_qty=Decimal("0.01"),
            created_at=at,
            updated_at=at,
        )
        session.add(order)
        session.flush()
        fill = FillRecord(
            order_id=order.id,
            book=book,
            symbol="BTC/USDT",
            side=order.side,
            quantity=Decimal("0.01"),
            price=Decimal(50_000),
            realized_pnl=pnl,
            filled_at=at,
        )
        session.add(fill)
        session.flush()
        return fill.id
