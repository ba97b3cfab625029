"""alerts: the alert outbox

Revision ID: 0003_alerts
Revises: 0001_core
Create Date: 2026-11-25 04:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import otonom_trader.persistence.column_types

revision: str = "0003_alerts"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("alerts",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "next_attempt_at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "sent_at",
            otonom_trader.persistence.column_types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_outbox_status_next", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_alert_outbox_dedupe", ["dedupe_key", "channel", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_alert_outbox_channel_sent", ["channel", "status", "sent_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_outbox_channel_sent")
        batch_op.drop_index("ix_alert_outbox_dedupe")
        batch_op.drop_index("ix_alert_outbox_status_next")

    op.drop_table("alert_outbox")
