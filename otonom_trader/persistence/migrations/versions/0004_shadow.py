"""shadow ledger: paper and broker fills of each SHADOW intent, paired

Revision ID: 0004_shadow
Revises: 0001_core
Create Date: 2026-11-25 04:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import otonom_trader.persistence.column_types

revision: str = "0004_shadow"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("shadow",)
depends_on: str | Sequence[str] | None = None


def _leg_columns(prefix: str) -> list[sa.Column[Any]]:
    """The columns of one leg (``paper_`` or ``broker_``); both legs have the same shape."""
    exact = otonom_trader.persistence.column_types.ExactDecimal
    return [
        sa.Column(f"{prefix}status", sa.String(length=20), nullable=False),
        sa.Column(f"{prefix}qty", exact(), nullable=False),
        sa.Column(f"{prefix}price", exact(), nullable=True),
        sa.Column(f"{prefix}fee", exact(), nullable=False),
        sa.Column(f"{prefix}slippage_bps", exact(), nullable=True),
        sa.Column(f"{prefix}latency_ms", sa.Float(), nullable=True),
        sa.Column(f"{prefix}client_order_id", sa.String(length=36), nullable=True),
        sa.Column(f"{prefix}error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "shadow_pairs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("intent_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column(
            "requested_qty", otonom_trader.persistence.column_types.ExactDecimal(), nullable=False
        ),
        sa.Column(
            "signal_price", otonom_trader.persistence.column_types.ExactDecimal(), nullable=False
        ),
        *_leg_columns("paper_"),
        *_leg_columns("broker_"),
        sa.Column(
            "created_at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "intent_id", name="uq_shadow_pairs_run_intent"),
    )
    with op.batch_alter_table("shadow_pairs", schema=None) as batch_op:
        batch_op.create_index("ix_shadow_pairs_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_shadow_pairs_run_id", ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shadow_pairs", schema=None) as batch_op:
        batch_op.drop_index("ix_shadow_pairs_run_id")
        batch_op.drop_index("ix_shadow_pairs_created_at")
    op.drop_table("shadow_pairs")
