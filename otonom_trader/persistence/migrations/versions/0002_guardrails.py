"""guardrails: kill-switch state and events, closed-trade index on fills

Revision ID: 0002_guardrails
Revises: 0001_core
Create Date: 2026-11-25 04:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import otonom_trader.persistence.column_types

revision: str = "0002_guardrails"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("guardrails",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kill_switch_state",
        sa.Column("book", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "tripped_at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("numbers_json", sa.Text(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("locks_json", sa.Text(), nullable=False),
        sa.Column("cursors_json", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("book"),
    )
    op.create_table(
        "kill_switch_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("book", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers_json", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column(
            "at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kill_switch_events", schema=None) as batch_op:
        batch_op.create_index("ix_kill_switch_events_book_id", ["book", "id"], unique=False)
    # Closed trades only (realized_pnl set): the consecutive-loss check reads the newest N of a
    # book without stepping over every opening fill.
    op.create_index(
        "ix_fills_book_closed",
        "fills",
        ["book", "id"],
        unique=False,
        sqlite_where=sa.text("realized_pnl IS NOT NULL"),
        postgresql_where=sa.text("realized_pnl IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_fills_book_closed", table_name="fills")
    with op.batch_alter_table("kill_switch_events", schema=None) as batch_op:
        batch_op.drop_index("ix_kill_switch_events_book_id")
    op.drop_table("kill_switch_events")
    op.drop_table("kill_switch_state")
