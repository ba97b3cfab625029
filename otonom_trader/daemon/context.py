"""Everything one cycle works with, built once from the configuration.

``CycleContext`` wires the domains together — database, strategy, market data, the paper book,
the broker behind its kill-switch, alerts — and nothing else: no trading logic lives here.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from otonom_trader.broker.base import Broker
from otonom_trader.broker.factory import build_broker
from otonom_trader.broker.guarded import GuardedBroker
from otonom_trader.broker.sim import SimulatedExchange
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.config.validation import resolve_project_path
from otonom_trader.guardrails.kill_switch import KillSwitch, KillSwitchTransition
from otonom_trader.home import otonom_home
from otonom_trader.market.candles import MarketDataSource
from otonom_trader.market.sources import build_market_data
from otonom_trader.mode import ExecutionMode
from otonom_trader.paper.broker import PaperBroker
from otonom_trader.persistence.database import Database, describe_url, resolve_url
from otonom_trader.strategy.model import Strategy, load_strategy

log = logging.getLogger(__name__)

PAPER_BOOK = "paper"
BROKER_BOOK = "broker"
CONFIRM_ENV = "OTONOM_CONFIRM_PRODUCTION"


@dataclass
class CycleContext:
    """The wired components of one daemon (reused across cycles of the same process)."""

    config: AppConfig
    db: Database
    strategy: Strategy
    market_data: MarketDataSource
    mode: ExecutionMode
    paper: PaperBroker | None
    broker: Broker | None  # the raw broker (None in PAPER)
    kill_switch: KillSwitch
    guarded_paper: GuardedBroker | None
    guarded_broker: GuardedBroker | None
    alerts: Any | None
    config_hash: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    notes: list[str] = field(default_factory=list)

    @property
    def executing_book(self) -> str:
        """Whose equity the guardrails watch: the paper book in PAPER, the broker otherwise."""
        return PAPER_BOOK if self.mode is ExecutionMode.PAPER else BROKER_BOOK

    @property
    def broker_name(self) -> str:
        """What every run prints as its broker."""
        if self.broker is None:
            return "none (PAPER: paper book only)"
        return self.broker.name

    @property
    def quote_asset(self) -> str:
        return self.config.broker.quote_asset

    def new_run_id(self) -> str:
        return uuid.uuid4().hex

    def close(self) -> None:
        """Release network connections and the database pool."""
        for closable in (self.broker, self.market_data):
            try:
                if closable is not None:
                    closable.close()
            except Exception:  # noqa: BLE001 - closing must never mask the cycle's outcome
                log.debug("close failed", exc_info=True)
        self.db.dispose()


def build_context(
    app: AppConfig,
    config_hash: str,
    *,
    clock: Callable[[], datetime] | None = None,
    alerts_factory: Callable[[AppConfig, Database], Any] | None = None,
) -> CycleContext:
    """Validate what only makes sense together, then build every component."""
    mode = app.mode.execution_mode
    _refuse_unconfirmed_production(app, mode)
    strategy = load_strategy(resolve_project_path(app.strategy.path))
    db = Database(app.db.url, busy_timeout_ms=app.db.busy_timeout_ms, echo=app.db.echo)
    notes: list[str] = []
    market_data = build_market_data(app.data)
    clock = clock or (lambda: datetime.now(UTC))

    paper: PaperBroker | None = None
    if mode is not ExecutionMode.LIVE or app.mode.paper_book_in_live:
        paper = PaperBroker(
            db, PAPER_BOOK, app.paper, app.broker.quote_asset, mode=mode.value, clock=clock
        )

    broker: Broker | None = None
    if mode.uses_broker:
        broker = _build_broker(app, db, clock)
        if app.broker.kind == "sim":
            notes.append("broker: the simulated exchange (no real exchange configured)")
        if app.broker.is_production or (mode is ExecutionMode.LIVE and app.broker.kind != "sim"):
            notes.append(_audit_key(broker))

    alerts = alerts_factory(app, db) if alerts_factory else _default_alerts(app, db)
    executing = PAPER_BOOK if mode is ExecutionMode.PAPER else BROKER_BOOK

    def announce(transition: KillSwitchTransition) -> None:
        # Once per transition (the kill switch guarantees it); alerts never break trading.
        if alerts is None:
            return
        try:
            if transition.kind == "trigger":
                alerts.notify_kill_switch(transition.message)
            else:
                from otonom_trader.alerts.config import AlertEvent, Severity

                alerts.notify(
                    "KILL-SWITCH: trading resumed",
                    transition.message,
                    event=AlertEvent.KILL_SWITCH,
                    severity=Severity.WARNING,
                    dedupe_key=f"kill_switch_reset:{transition.message}",
                )
        except Exception:  # noqa: BLE001
            log.warning("kill-switch alert failed; trading continues", exc_info=True)

    kill_switch = KillSwitch(db, app.guardrails, executing, on_transition=announce)
    equity_source: Broker | None = paper if mode is ExecutionMode.PAPER else broker
    assert equity_source is not None

    def equity() -> Decimal:
        from otonom_trader.broker.guarded import account_equity

        return account_equity(equity_source, app.broker.quote_asset)

    # One kill switch and one equity for every book: in SHADOW the broker's decision also
    # governs the paper book, so the two books keep seeing the same orders.
    guarded_paper = (
        GuardedBroker(paper, app.guardrails, kill_switch=kill_switch, equity_fn=equity, clock=clock)
        if paper is not None
        else None
    )
    guarded_broker = (
        GuardedBroker(
            broker, app.guardrails, kill_switch=kill_switch, equity_fn=equity, clock=clock
        )
        if broker is not None
        else None
    )
    log.info("database: %s", describe_url(resolve_url(app.db.url)))
    return CycleContext(
        config=app,
        db=db,
        strategy=strategy,
        market_data=market_data,
        mode=mode,
        paper=paper,
        broker=broker,
        kill_switch=kill_switch,
        guarded_paper=guarded_paper,
        guarded_broker=guarded_broker,
        alerts=alerts,
        config_hash=config_hash,
        clock=clock,
        notes=notes,
    )


def _refuse_unconfirmed_production(app: AppConfig, mode: ExecutionMode) -> None:
    if not mode.uses_broker or not app.broker.is_production:
        return
    confirmed = app.mode.confirm_production or os.environ.get(CONFIRM_ENV, "").lower() in {
        "1",
        "yes",
        "true",
    }
    if not confirmed:
        raise ConfigError(
            f"{mode.value.upper()} on {app.broker.display_name} trades real money; refusing to "
            f"start without mode.confirm_production=true or {CONFIRM_ENV}=yes",
            key="mode.confirm_production",
        )


def _build_broker(app: AppConfig, db: Database, clock: Callable[[], datetime]) -> Broker:
    if app.broker.kind == "sim":
        # The simulated exchange keeps its account beside the database, like an exchange
        # account that outlives the process.
        return SimulatedExchange(
            app.broker.sim, app.broker.quote_asset, state_path=_sim_state_path(db), clock=clock
        )
    return build_broker(app.broker)


def _sim_state_path(db: Database) -> Path:
    if db.dialect == "sqlite" and db.engine.url.database not in (None, "", ":memory:"):
        return Path(str(db.engine.url.database)).with_suffix(".sim-exchange.json")
    return otonom_home() / "sim-exchange.json"


def _audit_key(broker: Broker) -> str:
    """Refuse a key that can withdraw (``audit_api_key`` raises); say when the check is skipped."""
    from otonom_trader.broker.ccxt_broker import CcxtBroker
    from otonom_trader.broker.key_audit import audit_api_key

    if not isinstance(broker, CcxtBroker):
        return "API-key audit: not applicable"
    return f"API-key audit: {audit_api_key(broker).message}"


def _default_alerts(app: AppConfig, db: Database) -> Any | None:
    if not app.alerts.enabled:
        return None
    from otonom_trader.alerts import AlertEngine

    return AlertEngine(app.alerts, db=db, mode=app.mode.name)
