"""What LIVE on a production account asks of the promotion workflow.

* :func:`refuse_unpromoted_live` — called once by the start-up validation
  (``config.validation.check_inputs``): LIVE on a production (non-testnet) account refuses a
  strategy version (name, version, file hash) that is not promoted to live, with one line that
  names the gate it still has to pass, and a promoted one with guardrails ``off`` (a condition of
  the shadow → live gate). It only reads the database (a missing database, or one
  without the promotion tables, has promoted nothing) and sends nothing. Testnet and simulated
  accounts, PAPER and SHADOW are free.
* :func:`position_cap` / :func:`capped_strategy` — called by ``fetch_signal`` each cycle: during
  the first ``promotion.live.first_period_days`` after the version reached live, no position is
  sized above ``promotion.live.first_period_max_position_quote``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from otonom_trader.config.errors import ConfigError
from otonom_trader.promotion.stages import Stage, StrategyIdentity, file_sha256

if TYPE_CHECKING:
    from otonom_trader.broker.config import BrokerConfig
    from otonom_trader.config.schema import AppConfig
    from otonom_trader.daemon.context import CycleContext
    from otonom_trader.persistence.database import Database
    from otonom_trader.strategy.model import Strategy


def is_production_account(broker: BrokerConfig) -> bool:
    """A real exchange account that is not a testnet (the account identity's ``production``
    environment): where LIVE needs a version promoted to live. Simulated exchanges and testnets
    are free."""
    return broker.kind != "sim" and not broker.testnet


def _requires_promotion(app: AppConfig) -> bool:
    from otonom_trader.mode import ExecutionMode

    return app.mode.execution_mode is ExecutionMode.LIVE and is_production_account(app.broker)


def refuse_unpromoted_live(app: AppConfig) -> None:
    """Raise one ``ConfigError`` line when LIVE on a production account would start a version
    that is not promoted to live (see the module docstring)."""
    if not _requires_promotion(app):
        return
    from otonom_trader.config.validation import resolve_project_path

    identity = StrategyIdentity.of_file(resolve_project_path(app.strategy.path))
    stage, edited = _stage_read_only(app.db.url, identity)
    if stage is Stage.LIVE:
        if not app.guardrails.enabled:  # the shadow → live gate's condition must still hold
            raise ConfigError(
                f"LIVE on {app.broker.display_name} refuses to run {identity.describe()} with "
                "guardrails off; choose a guardrails profile other than off",
                key="guardrails",
            )
        return
    missing = {
        None: "research → paper (no promotion record)",
        Stage.RESEARCH: "research → paper",
        Stage.PAPER: "paper → shadow",
        Stage.SHADOW: "shadow → live",
    }[stage]
    note = (
        " (the file changed since an earlier version was promoted: it starts over)"
        if edited
        else ""
    )
    raise ConfigError(
        f"LIVE on {app.broker.display_name} refuses {identity.describe()}: not promoted to live; "
        f"missing gate {missing}{note}; see `otonom-trader promote status`",
        key="promotion",
    )


def _stage_read_only(url: str | None, identity: StrategyIdentity) -> tuple[Stage | None, bool]:
    """The version's stage (``None``: never recorded) and whether another file of the same name
    and version was recorded (an edit). Reads without migrating or creating anything."""
    from sqlalchemy.engine import make_url

    from otonom_trader.persistence.database import (
        Database,
        DatabaseError,
        describe_url,
        one_line,
        resolve_url,
    )

    resolved = make_url(resolve_url(url))
    if resolved.get_backend_name() == "sqlite":
        database = resolved.database or ""
        if database in ("", ":memory:") or not Path(database).exists():
            return None, False
    db = Database(url, migrate=False)
    try:
        return _stage_in(db, identity)
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"cannot read the promotion records of {describe_url(db.url)}: {one_line(exc)}"
        ) from None
    finally:
        db.dispose()


def _stage_in(db: Database, identity: StrategyIdentity) -> tuple[Stage | None, bool]:
    from sqlalchemy import select

    from otonom_trader.persistence.promotion_models import StrategyVersionRecord
    from otonom_trader.promotion.store import find_version

    if "strategy_versions" not in inspect(db.engine).get_table_names():
        return None, False
    with db.session() as session:
        row = find_version(session, identity)
        others = session.scalars(
            select(StrategyVersionRecord.id).where(
                StrategyVersionRecord.name == identity.name,
                StrategyVersionRecord.version == identity.version,
                StrategyVersionRecord.strategy_hash != identity.sha256,
            )
        ).first()
    return (Stage(row.stage) if row is not None else None), others is not None


def position_cap(ctx: CycleContext, now: datetime) -> Decimal | None:
    """The largest position (quote currency) LIVE may hold now, or ``None`` for no cap.

    A cap applies to LIVE on a production account during the first period after the version
    reached live. A version with no live record there (the start check refused it; a file
    edited while the process runs) is treated as just promoted: capped, never uncapped.
    """
    if not _requires_promotion(ctx.config):
        return None
    from otonom_trader.persistence.promotion_models import StrategyVersionRecord
    from otonom_trader.promotion.store import find_version

    live = ctx.config.promotion.live
    cap = Decimal(str(live.first_period_max_position_quote))
    try:
        digest = file_sha256(ctx.strategy.path)
    except ConfigError:  # the file was removed while the process runs: unknown, so capped
        return cap
    identity = StrategyIdentity(ctx.strategy.name, ctx.strategy.version, digest, ctx.strategy.path)
    with ctx.db.session() as session:
        row: StrategyVersionRecord | None = find_version(session, identity)
        since = row.stage_since if row is not None and row.stage == Stage.LIVE.value else None
    if since is not None and now >= since + timedelta(days=live.first_period_days):
        return None
    return cap


def capped_strategy(ctx: CycleContext, now: datetime) -> Strategy:
    """``ctx.strategy`` with its per-position cap lowered to :func:`position_cap`, if any."""
    cap = position_cap(ctx, now)
    strategy = ctx.strategy
    if cap is None:
        return strategy
    current = strategy.sizing.max_position_quote
    if current is not None and Decimal(str(current)) <= cap:
        return strategy
    return replace(strategy, sizing=replace(strategy.sizing, max_position_quote=float(cap)))
