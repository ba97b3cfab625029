"""Promotion tables: each strategy version's stage, the evidence it was judged on, every move.

* ``strategy_versions``: one row per strategy *version*, identified by name, version and the
  SHA-256 of the strategy file's bytes (an edited file is another version and starts at
  ``research``); its current ``stage`` (research, paper, shadow, live) and since when.
* ``promotion_evidence``: facts recorded for a version's gates that the database does not hold
  otherwise: a backtest's ``metrics.json`` (``backtest``) and an API-key audit (``key_audit``).
* ``promotion_events``: every advance (with the gate's checks and numbers), every forced advance
  (with its reason) and every rollback: the audit trail.

Written by :mod:`otonom_trader.promotion.store`; migration ``0008_promotion``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otonom_trader.persistence.models import Base, utc_now


class StrategyVersionRecord(Base):
    """One version of a strategy file and the stage it has reached."""

    __tablename__ = "strategy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    strategy_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16), default="research")
    stage_since: Mapped[datetime] = mapped_column(default=utc_now)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        UniqueConstraint("name", "version", "strategy_hash", name="uq_strategy_versions_identity"),
    )


class PromotionEvidenceRecord(Base):
    """A fact a gate reads: a backtest's metrics or an API-key audit, as recorded."""

    __tablename__ = "promotion_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    strategy_version_id: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id"))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    data_json: Mapped[str] = mapped_column(Text, default="{}")
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        Index("ix_promotion_evidence_version_kind", "strategy_version_id", "kind", "id"),
    )


class PromotionEventRecord(Base):
    """One move of a version between stages: ``advance``, ``forced`` or ``rollback``."""

    __tablename__ = "promotion_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    strategy_version_id: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id"))
    kind: Mapped[str] = mapped_column(String(16))
    from_stage: Mapped[str] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    checks_json: Mapped[str] = mapped_column(Text, default="[]")
    at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (Index("ix_promotion_events_version_id", "strategy_version_id", "id"),)
