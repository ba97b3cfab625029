"""history: an index on daemon_runs(started_at, id), so what a cycle reads of the runs' history
(the first run's start, the newest run's status) is one index probe, however many runs there are

Revision ID: 0007_history_indexes
Revises: 0001_core
Create Date: 2026-11-29 23:30:00.000000

Without it the alert health check's ``min(started_at)`` and its newest-run lookup scanned and
sorted every run: 20 ms → 679 ms after 100,000 runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_history_indexes"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("history",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("daemon_runs", schema=None) as batch_op:
        batch_op.create_index("ix_daemon_runs_started_id", ["started_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("daemon_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_daemon_runs_started_id")
