"""``force_live``: promote a strategy version straight to live, as a person would with
``otonom-trader promote advance --force --reason …`` three times (each move recorded with its
reason and its failing checks). For tests that run LIVE on a production-like account (a local
exchange with ``testnet: false``) and are about something else than promotion."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from otonom_trader.persistence.database import Database
from otonom_trader.promotion.stages import Stage, StrategyIdentity


def force_live(
    db_path: str | Path, strategy_path: str | Path, *, reason: str, now: datetime | None = None
) -> None:
    """Force the version of ``strategy_path`` up to live in the database at ``db_path``."""
    from otonom_trader.config.compose import load_config
    from otonom_trader.promotion.workflow import PromotionWorkflow

    _, app = load_config([])
    when = now or datetime.now(UTC)
    db = Database(db_path)
    try:
        workflow = PromotionWorkflow(db, app, app.promotion)
        version = workflow.version(StrategyIdentity.of_file(strategy_path), when)
        while version.stage is not Stage.LIVE:
            version = workflow.advance(
                version, when, actor="test", force=True, reason=reason
            ).version
    finally:
        db.dispose()
