"""bots: every run, order, fill, snapshot, kill-switch row, shadow pair and alert row carries the
named bot that wrote it (``bot``, NULL for the unnamed single bot) and its account

Revision ID: 0009_bots
Revises: 0002_guardrails, 0004_shadow, 0005_accounts, 0005_alert_transitions
Create Date: 2026-11-30 02:30:00.000000

Several bots may share one database and one exchange account (``otonom_trader.fleet.books``):
the views filter by bot, so the tables they read by bot get an index on it. Rows written before
this migration keep NULL (the unnamed bot); ``account_id`` of old orders and fills is their book
when that book is an account's (the account id is the book's name), and stays NULL otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_bots"
# It alters tables of four branches, so it merges them: each must exist before it runs. (A
# ``depends_on`` instead leaves those branches' revisions out of the version table while they
# stay heads, and every start would see a schema to upgrade.)
down_revision: str | Sequence[str] | None = ("0002_guardrails", "0004_shadow", "0005_accounts", "0005_alert_transitions")  # noqa: E501  # fmt: skip
depends_on: str | Sequence[str] | None = None

#: Tables that get both columns (``daemon_runs`` already has ``account_id``).
_BOTH = (
    "orders",
    "fills",
    "portfolio_snapshots",
    "kill_switch_state",
    "kill_switch_events",
    "shadow_pairs",
    "alert_outbox",
)
_INDEXES = (
    ("daemon_runs", "ix_daemon_runs_bot_started", ["bot", "started_at"]),
    ("orders", "ix_orders_bot_created", ["bot", "created_at"]),
    ("fills", "ix_fills_bot_id", ["bot", "id"]),
    ("portfolio_snapshots", "ix_snapshots_bot_taken", ["bot", "taken_at"]),
    ("shadow_pairs", "ix_shadow_pairs_bot_created", ["bot", "created_at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("daemon_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bot", sa.String(length=24), nullable=True))
    for table in _BOTH:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("bot", sa.String(length=24), nullable=True))
            batch_op.add_column(sa.Column("account_id", sa.String(length=32), nullable=True))
    for table, name, columns in _INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
    # An old order's or fill's account is its book when the book is an account's own.
    for table in ("orders", "fills"):
        op.execute(
            f"UPDATE {table} SET account_id = book "  # noqa: S608 - fixed table names
            "WHERE book IN (SELECT book FROM accounts)"
        )


def downgrade() -> None:
    for table, name, _ in reversed(_INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    for table in reversed(_BOTH):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("account_id")
            batch_op.drop_column("bot")
    with op.batch_alter_table("daemon_runs", schema=None) as batch_op:
        batch_op.drop_column("bot")
