"""ledger: exact cost basis per position; fills unique per book and venue trade id; drift
events and book adjustments of reconciliation

Revision ID: 0006_ledger_trades
Revises: 0001_core
Create Date: 2026-11-29 20:30:00.000000

``book_positions.cost_basis`` is filled from ``quantity × avg_entry_price`` for existing rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import otonom_trader.persistence.column_types

revision: str = "0006_ledger_trades"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("ledger",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    exact = otonom_trader.persistence.column_types.ExactDecimal
    with op.batch_alter_table("book_positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_basis", exact(), nullable=True))
    positions = sa.table(
        "book_positions",
        sa.column("book", sa.String),
        sa.column("symbol", sa.String),
        sa.column("quantity", exact()),
        sa.column("avg_entry_price", exact()),
        sa.column("cost_basis", exact()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            positions.c.book, positions.c.symbol, positions.c.quantity, positions.c.avg_entry_price
        )
    ).all()
    for book, symbol, quantity, avg in rows:
        conn.execute(
            positions.update()
            .where(positions.c.book == book, positions.c.symbol == symbol)
            .values(cost_basis=quantity * avg)
        )
    with op.batch_alter_table("book_positions", schema=None) as batch_op:
        batch_op.alter_column("cost_basis", existing_type=exact(), nullable=False)
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index("ux_fills_book_trade", ["book", "exchange_trade_id"], unique=True)

    time = otonom_trader.persistence.column_types.UTCDateTime
    op.create_table(
        "drift_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("book", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("book_qty", exact(), nullable=False),
        sa.Column("venue_qty", exact(), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("seen_at", time(timezone=True), nullable=False),
        sa.Column("resolved_at", time(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("drift_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_events_book_asset_open", ["book", "asset", "resolved_at"], unique=False
        )
    op.create_table(
        "book_adjustments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("book", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("before_qty", exact(), nullable=False),
        sa.Column("after_qty", exact(), nullable=False),
        sa.Column("cost_change", exact(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("book_adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_book_adjustments_book_id", ["book", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("book_adjustments")
    op.drop_table("drift_events")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index("ux_fills_book_trade")
    with op.batch_alter_table("book_positions", schema=None) as batch_op:
        batch_op.drop_column("cost_basis")
