"""Everything one cycle works with, built once from the configuration.

``CycleContext`` wires the domains together — database, strategy, market data, the paper book,
the broker behind its kill-switch, alerts — and nothing else: no trading logic lives here.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from otonom_trader.accounts.identity import Account
from otonom_trader.broker.base import Broker
from otonom_trader.broker.factory import build_broker
from otonom_trader.broker.guarded import GuardedBroker
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.config.validation import resolve_project_path
from otonom_trader.execution.engine import BROKER_ROLE, PAPER_ROLE, ExecutionEngine, ExecutionLeg
from otonom_trader.execution.reconcile import Reconciler
from otonom_trader.fleet.books import BotBooks
from otonom_trader.fleet.guards import account_level, build_switches
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.home import otonom_home
from otonom_trader.market.candles import MarketDataSource
from otonom_trader.market.sources import build_market_data
from otonom_trader.mode import ExecutionMode
from otonom_trader.paper.broker import PaperBroker
from otonom_trader.persistence.database import Database, describe_url, resolve_url
from otonom_trader.portfolio.ledger import ensure_account, value_book
from otonom_trader.strategy.model import Strategy, load_strategy

log = logging.getLogger(__name__)

CONFIRM_ENV = "OTONOM_CONFIRM_PRODUCTION"


@dataclass
class CycleContext:
    """The wired components of one daemon (reused across cycles of the same process).

    The legs' gates are the only brokers a cycle can reach: every order passes a kill-switch.
    """

    config: AppConfig
    db: Database
    strategy: Strategy
    market_data: MarketDataSource
    mode: ExecutionMode
    account: Account
    legs: tuple[ExecutionLeg, ...]
    executing: ExecutionLeg
    engine: ExecutionEngine
    reconciler: Reconciler
    kill_switch: KillSwitch
    alerts: Any | None
    config_hash: str
    broker_name: str
    candles_price_the_venue: bool
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    notes: list[str] = field(default_factory=list)
    #: Threads for the cycle's requests in flight at once (``execution.io_workers``; ``None``
    #: when it is 1: everything in turn).
    pool: ThreadPoolExecutor | None = None
    #: The books of the bot (``otonom_trader.fleet.books``); set by ``build_context``.
    books: BotBooks | None = None
    #: The account's own switch: the same as ``kill_switch`` unless a named bot shares the
    #: account, then the second level above the bot's (``otonom_trader.fleet.guards``).
    account_switch: KillSwitch | None = None

    @property
    def executing_book(self) -> str:
        """Whose equity the guardrails watch: the paper book in PAPER, the account otherwise."""
        return self.executing.book

    @property
    def bot(self) -> str:
        """The strategy trading the account: ``name vVERSION`` (with the bot's name first when
        the bot is named: ``name: strategy vVERSION``)."""
        strategy = f"{self.strategy.name} v{self.strategy.version}"
        return f"{self.bot_name}: {strategy}" if self.bot_name else strategy

    @property
    def bot_name(self) -> str | None:
        """The named bot of a fleet (``bot.name``), ``None`` for the unnamed single bot."""
        return self.config.bot.name or None

    @property
    def sizing_book(self) -> str:
        """The book the bot sizes from and sells from: its own book when it shares an account,
        else the executing book."""
        return self.executing.bot_book or self.executing.book

    @property
    def broker_leg(self) -> ExecutionLeg | None:
        """The leg on the real (or simulated) exchange; ``None`` in PAPER."""
        return next((leg for leg in self.legs if leg.role == BROKER_ROLE), None)

    @property
    def quote_asset(self) -> str:
        return self.config.broker.quote_asset

    def new_run_id(self) -> str:
        return uuid.uuid4().hex

    def close(self) -> None:
        """Release network connections and the database pool."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        closables: list[Any] = [self.alerts, *(leg.gate for leg in self.legs), self.market_data]
        for closable in closables:
            try:
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
    quote = app.broker.quote_asset

    broker: Broker | None = None
    account = Account.paper()
    if mode.uses_broker:
        broker = _build_broker(app, db, clock)
        account = Account.for_broker(app.broker, sim_endpoint=_sim_endpoint(db))
        if app.broker.kind == "sim":
            notes.append("broker: the simulated exchange (no real exchange configured)")
        if app.broker.is_production or (mode is ExecutionMode.LIVE and app.broker.kind != "sim"):
            notes.append(_audit_key(broker))

    books = BotBooks.plan(
        app.bot.name,
        account.account_id,
        uses_broker=broker is not None,
        paper=mode is not ExecutionMode.LIVE or app.mode.paper_book_in_live,
    )
    capital = app.bot.allocation(
        uses_broker=broker is not None, paper_cash=app.paper.initial_cash, quote=quote
    )
    paper: PaperBroker | None = None
    if books.paper is not None:
        paper_cfg = app.paper if capital is None else replace(app.paper, initial_cash=capital)
        paper = PaperBroker(db, books.paper, paper_cfg, quote, mode=mode.value, clock=clock)
    if books.attribution is not None and capital is not None:
        open_bot_book(db, books.attribution, capital, quote)

    alerts = (
        alerts_factory(app, db)
        if alerts_factory
        else _default_alerts(app, db, clock, account.account_id)
    )
    # Each transition's outbox rows commit with the state change; the alert sender sends them.
    switches = build_switches(
        app, db, books, on_transition_tx=getattr(alerts, "record_transition", None)
    )
    kill_switch = switches.bot
    equity_source: Broker = broker if broker is not None else paper  # type: ignore[assignment]
    candles_price_the_venue = _candles_price_the_venue(app, broker)
    executing_gate: list[GuardedBroker] = []  # set below, once the gates exist

    def equity() -> Decimal:
        from otonom_trader.broker.guarded import account_equity

        gate = executing_gate[0]
        view = gate.current_account(clock())
        if view is not None and broker is not None:
            # The cycle's account read plus its own fills: no request per order.
            return view.valuation(gate, account.book, gate.marks, candles_price_the_venue).equity
        return account_equity(equity_source, quote)

    def bot_equity() -> Decimal:
        # A bot sharing the account: its own book (capital + its fills) at the cycle's marks.
        with db.session() as session:
            return value_book(session, books.guarded, executing_gate[0].marks).equity

    two_levels = switches.two_levels
    account_guard = account_level(switches.account, equity, clock) if two_levels else None

    # One kill switch and one equity for every leg: in SHADOW the account's decision also
    # governs the paper book, so the two books keep seeing the same orders.
    def gate(venue: Broker) -> GuardedBroker:
        return GuardedBroker(
            venue,
            app.guardrails,
            kill_switch=kill_switch,
            equity_fn=bot_equity if two_levels else equity,
            clock=clock,
            account_guard=account_guard,
        )

    legs: list[ExecutionLeg] = []
    if paper is not None:
        legs.append(ExecutionLeg(PAPER_ROLE, paper.book, gate(paper), quote))
    if broker is not None:
        legs.append(ExecutionLeg(BROKER_ROLE, account.book, gate(broker), quote, books.attribution))
    executing = legs[-1] if broker is not None else legs[0]
    executing_gate.append(executing.gate)
    workers = app.execution.io_workers
    pool = ThreadPoolExecutor(workers, thread_name_prefix="otonom-io") if workers > 1 else None

    def alert(message: str, dedupe_key: str) -> None:
        # Raised by the engine and the reconciler: broker errors, unresolved or anomalous
        # orders, drifts. The key makes repeats of the same thing one alert (within the cooldown).
        if alerts is None:
            return
        from otonom_trader.alerts.config import AlertEvent, Severity

        alerts.notify(
            "Broker error",
            message,
            event=AlertEvent.BROKER_ERROR,
            severity=Severity.ERROR,
            dedupe_key=dedupe_key,
        )

    engine = ExecutionEngine(
        db,
        legs,
        account_id=account.account_id,
        bot=f"{strategy.name} v{strategy.version}",
        bot_name=books.bot,
        mode=mode.value,
        clock=clock,
        alert=alert,
        shadow=mode is ExecutionMode.SHADOW,
        ambiguity_window_s=app.execution.ambiguity_window_seconds,
        price_band_pct=app.execution.price_band_pct,
        pool=pool,
    )
    # A drift is the account's: under ``halt`` it stops every bot on the account.
    reconciler = Reconciler(
        db, switches.account, app.execution.reconcile_policy, clock=clock, alert=alert
    )
    log.info("database: %s", describe_url(resolve_url(app.db.url)))
    return CycleContext(
        config=app,
        db=db,
        strategy=strategy,
        market_data=market_data,
        mode=mode,
        account=account,
        legs=tuple(legs),
        executing=executing,
        engine=engine,
        reconciler=reconciler,
        kill_switch=kill_switch,
        alerts=alerts,
        config_hash=config_hash,
        broker_name=broker.name if broker is not None else "none (PAPER: paper book only)",
        candles_price_the_venue=candles_price_the_venue,
        clock=clock,
        notes=notes,
        pool=pool,
        books=books,
        account_switch=switches.account,
    )


def open_bot_book(db: Database, book: str, capital: float, quote: str) -> None:
    """Open a named bot's own book with its capital as cash (once: an existing book keeps its
    history; a changed ``bot.capital`` is not applied to it retroactively)."""
    with db.session() as session:
        ensure_account(session, book, Decimal(str(capital)), quote)


def _candles_price_the_venue(app: AppConfig, broker: Broker | None) -> bool:
    """True when the candles' closes are the executing venue's own prices: the paper book and
    the simulated exchange fill at them, and public candles of the same exchange and host are
    that exchange's prices. Otherwise (synthetic or CSV data beside a real exchange) the
    account is valued at the venue's own marks, never at prices from elsewhere."""
    if broker is None or app.broker.kind == "sim":
        return True
    data = app.data
    return (
        data.source == "exchange"
        and data.exchange_id == app.broker.kind
        and (data.exchange_base_url or "").rstrip("/") == (app.broker.base_url or "").rstrip("/")
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
    # The simulated exchange keeps its account beside the database, like an exchange account
    # that outlives the process.
    state = _sim_state_path(db) if app.broker.kind == "sim" else None
    return build_broker(app.broker, state_path=state, clock=clock)


def _sim_endpoint(db: Database) -> str:
    return str(_sim_state_path(db).resolve())


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


def _default_alerts(
    app: AppConfig, db: Database, clock: Callable[[], datetime], account_id: str
) -> Any | None:
    if not app.alerts.enabled:
        return None
    from otonom_trader.alerts import AlertEngine

    # Raising an alert in a cycle only writes outbox rows; health_check sends in the background.
    return AlertEngine(
        app.alerts,
        db=db,
        mode=app.mode.name,
        clock=clock,
        deliver_immediately=False,
        bot=app.bot.name or None,
        account_id=account_id,
    )
