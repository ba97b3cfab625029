"""accounts: the account each book belongs to, account leases, the account of each run

Revision ID: 0005_accounts
Revises: 0001_core
Create Date: 2026-11-29 20:10:00.000000

The existing ``broker`` book is not renamed here: the migration cannot know which venue it
traded. The first cycle on an account whose venue matches the legacy book's last runs adopts it
(``otonom_trader.accounts.registry``), so its history, peak and positions carry over; until then
it stays readable under its old name.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import otonom_trader.persistence.column_types

revision: str = "0005_accounts"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("accounts",)
depends_on: str | Sequence[str] | None = None

_TIME = otonom_trader.persistence.column_types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=False),
        sa.Column("book", sa.String(length=32), nullable=False),
        sa.Column("bot", sa.String(length=160), nullable=True),
        sa.Column("adopted_from", sa.String(length=32), nullable=True),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.Column("last_used_at", _TIME(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "account_leases",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("since", _TIME(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    with op.batch_alter_table("daemon_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=32), nullable=True))
        batch_op.create_index(
            "ix_daemon_runs_account_status", ["account_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("daemon_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_daemon_runs_account_status")
        batch_op.drop_column("account_id")
    op.drop_table("account_leases")
    op.drop_table("accounts")
