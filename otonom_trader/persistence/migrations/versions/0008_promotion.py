"""promotion: strategy versions, their stage, the evidence of each gate and every move

Revision ID: 0008_promotion
Revises: 0001_core
Create Date: 2026-11-29 23:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import otonom_trader.persistence.column_types

revision: str = "0008_promotion"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("promotion",)
depends_on: str | Sequence[str] | None = None

_TIME = otonom_trader.persistence.column_types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "strategy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("strategy_hash", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("stage_since", _TIME(timezone=True), nullable=False),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "name", "version", "strategy_hash", name="uq_strategy_versions_identity"
        ),
    )
    op.create_table(
        "promotion_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("strategy_version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("data_json", sa.Text(), nullable=False),
        sa.Column("recorded_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["strategy_version_id"], ["strategy_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_promotion_evidence_version_kind",
        "promotion_evidence",
        ["strategy_version_id", "kind", "id"],
        unique=False,
    )
    op.create_table(
        "promotion_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("strategy_version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=False),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("checks_json", sa.Text(), nullable=False),
        sa.Column("at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["strategy_version_id"], ["strategy_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_promotion_events_version_id",
        "promotion_events",
        ["strategy_version_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_promotion_events_version_id", table_name="promotion_events")
    op.drop_table("promotion_events")
    op.drop_index("ix_promotion_evidence_version_kind", table_name="promotion_evidence")
    op.drop_table("promotion_evidence")
    op.drop_table("strategy_versions")
