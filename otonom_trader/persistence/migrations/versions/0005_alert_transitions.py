"""alerts: kill-switch transitions in the outbox (one row per transition and channel)

Revision ID: 0005_alert_transitions
Revises: 0003_alerts
Create Date: 2026-11-29 19:45:00.000000

Adds to ``alert_outbox`` the transition a row announces (``transition_id``: the
``kill_switch_events`` id; ``book``; ``state_after``), ``batched_into`` (a row delivered inside
another row's message when a rate limit batched them) and a unique index on
``(transition_id, channel)``: a transition is announced at most once per channel, whoever retries.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_alert_transitions"
down_revision: str | Sequence[str] | None = "0003_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transition_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("book", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("state_after", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("batched_into", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ux_alert_outbox_transition_channel", ["transition_id", "channel"], unique=True
        )
        batch_op.create_index(
            "ix_alert_outbox_channel_status_id", ["channel", "status", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_outbox_channel_status_id")
        batch_op.drop_index("ux_alert_outbox_transition_channel")
        batch_op.drop_column("batched_into")
        batch_op.drop_column("state_after")
        batch_op.drop_column("book")
        batch_op.drop_column("transition_id")
