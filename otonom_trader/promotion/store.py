"""The promotion tables, read and written: versions, their evidence and their moves.

Every method opens its own transaction (``Database.session``); a move changes the stage and
records its event in the same transaction, so the stage and its audit trail never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otonom_trader.persistence.database import Database
from otonom_trader.persistence.promotion_models import (
    PromotionEventRecord,
    PromotionEvidenceRecord,
    StrategyVersionRecord,
)
from otonom_trader.promotion.stages import Stage, StrategyIdentity


@dataclass(frozen=True)
class VersionState:
    """A strategy version's row: where it stands and since when."""

    id: int
    identity: StrategyIdentity
    stage: Stage
    stage_since: datetime
    created_at: datetime


@dataclass(frozen=True)
class Evidence:
    """One recorded fact (``backtest`` or ``key_audit``)."""

    kind: str
    source: str
    data: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class PromotionEvent:
    """One recorded move between stages."""

    kind: str
    from_stage: str
    to_stage: str
    passed: bool
    reason: str | None
    actor: str
    checks: list[dict[str, Any]]
    at: datetime


def _state(row: StrategyVersionRecord) -> VersionState:
    return VersionState(
        id=row.id,
        identity=StrategyIdentity(row.name, row.version, row.strategy_hash, row.path),
        stage=Stage(row.stage),
        stage_since=row.stage_since,
        created_at=row.created_at,
    )


def find_version(session: Session, identity: StrategyIdentity) -> StrategyVersionRecord | None:
    """The row of exactly this version (name, version and hash), if it was ever seen."""
    return session.scalars(
        select(StrategyVersionRecord).where(
            StrategyVersionRecord.name == identity.name,
            StrategyVersionRecord.version == identity.version,
            StrategyVersionRecord.strategy_hash == identity.sha256,
        )
    ).first()


class PromotionStore:
    """Reads and writes the promotion tables of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def version(self, identity: StrategyIdentity, now: datetime) -> VersionState:
        """This version's state; a version never seen before is registered at ``research``."""
        for _ in range(2):  # a second process may register it between our read and insert
            try:
                with self.db.session() as session:
                    row = find_version(session, identity)
                    if row is None:
                        row = StrategyVersionRecord(
                            name=identity.name,
                            version=identity.version,
                            strategy_hash=identity.sha256,
                            path=identity.path,
                            stage=Stage.RESEARCH.value,
                            stage_since=now,
                            created_at=now,
                        )
                        session.add(row)
                        session.flush()
                    return _state(row)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not register strategy version {identity.describe()}")

    def other_versions(self, identity: StrategyIdentity) -> list[VersionState]:
        """Other files (hashes) recorded under the same name and version, newest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(StrategyVersionRecord)
                .where(
                    StrategyVersionRecord.name == identity.name,
                    StrategyVersionRecord.version == identity.version,
                    StrategyVersionRecord.strategy_hash != identity.sha256,
                )
                .order_by(StrategyVersionRecord.id.desc())
            )
            return [_state(row) for row in rows]

    def record_evidence(
        self, version_id: int, kind: str, source: str, data: dict[str, Any], now: datetime
    ) -> None:
        """Keep one fact for a version's gates (a backtest's metrics, a key audit)."""
        with self.db.session() as session:
            session.add(
                PromotionEvidenceRecord(
                    strategy_version_id=version_id,
                    kind=kind,
                    source=source[:2000],
                    data_json=json.dumps(data, sort_keys=True, default=str),
                    recorded_at=now,
                )
            )

    def latest_evidence(self, version_id: int, kind: str) -> Evidence | None:
        """The newest fact of ``kind`` recorded for the version."""
        with self.db.session() as session:
            row = session.scalars(
                select(PromotionEvidenceRecord)
                .where(
                    PromotionEvidenceRecord.strategy_version_id == version_id,
                    PromotionEvidenceRecord.kind == kind,
                )
                .order_by(PromotionEvidenceRecord.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            return Evidence(row.kind, row.source, json.loads(row.data_json), row.recorded_at)

    def move(
        self,
        version_id: int,
        *,
        to_stage: Stage,
        kind: str,
        passed: bool,
        reason: str | None,
        actor: str,
        checks: Sequence[dict[str, Any]],
        now: datetime,
        expected_stage: Stage,
    ) -> None:
        """Move the version to ``to_stage`` and record the event, in one transaction. Refuses
        (``RuntimeError``) when the stage is no longer ``expected_stage`` (another process moved
        it since it was judged)."""
        with self.db.session() as session:
            row = session.get(StrategyVersionRecord, version_id, with_for_update=True)
            if row is None or row.stage != expected_stage.value:
                raise RuntimeError(
                    f"the strategy version changed stage while it was judged "
                    f"(expected {expected_stage.value}); check again"
                )
            session.add(
                PromotionEventRecord(
                    strategy_version_id=version_id,
                    kind=kind,
                    from_stage=row.stage,
                    to_stage=to_stage.value,
                    passed=passed,
                    reason=reason,
                    actor=actor[:64],
                    checks_json=json.dumps(list(checks), sort_keys=True, default=str),
                    at=now,
                )
            )
            row.stage = to_stage.value
            row.stage_since = now

    def events(self, version_id: int) -> list[PromotionEvent]:
        """The version's moves, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(PromotionEventRecord)
                .where(PromotionEventRecord.strategy_version_id == version_id)
                .order_by(PromotionEventRecord.id)
            )
            return [
                PromotionEvent(
                    row.kind,
                    row.from_stage,
                    row.to_stage,
                    row.passed,
                    row.reason,
                    row.actor,
                    json.loads(row.checks_json),
                    row.at,
                )
                for row in rows
            ]
