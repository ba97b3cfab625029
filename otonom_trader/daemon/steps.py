"""The five steps of a cycle, as plain functions: the library's ``run_once()`` and the Prefect
flow's tasks both call exactly these.

    fetch_signal → guard_check → execute → snapshot → health_check

Reads (fetch_signal, guard_check, snapshot's valuation, health_check) are safe to retry.
``execute`` hands the intents to the execution engine (``otonom_trader.execution.engine``), which
journals every order under an id derived from the intent before it is sent, so a re-run — or a
restarted process — for the same candle skips every order the journal says already left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.errors import BrokerError
from otonom_trader.broker.types import OrderSide, OrderStatus, Position, to_decimal
from otonom_trader.daemon.context import CycleContext
from otonom_trader.daemon.summary import BookLine, OrderLine, RunSummary, SignalLine
from otonom_trader.execution.engine import PAPER_ROLE, ExecutionLeg
from otonom_trader.market.candles import CandleSeries, with_jump_check
from otonom_trader.market.rules import rules_for
from otonom_trader.persistence.models import DaemonRun, OrderRecord
from otonom_trader.portfolio.ledger import (
    BookValuation,
    ensure_account,
    positions_of,
    take_snapshot,
    value_book,
)
from otonom_trader.promotion.live_gate import capped_strategy
from otonom_trader.strategy.signals import Action, OrderIntent, Signal, evaluate, size_intent

log = logging.getLogger(__name__)
BPS = Decimal(10_000)
#: Data issues after which a series' prices are not used at all (not even as marks).
UNBELIEVABLE = frozenset({"bad_value", "jump", "empty", "unavailable"})


@dataclass(frozen=True)
class SignalBatch:
    """Output of fetch_signal: decisions, sized intents, the marks used, any data issues."""

    signals: tuple[Signal, ...]
    intents: tuple[OrderIntent, ...]
    marks: dict[str, Decimal]
    issues: tuple[str, ...]


@dataclass(frozen=True)
class GuardStatus:
    """Output of guard_check."""

    active: bool
    reason: str | None
    equity: Decimal
    enabled: bool


# -- run bookkeeping ----------------------------------------------------------------------------


def begin_run(
    ctx: CycleContext, run_id: str, flow_run_id: str | None = None, *, status: str = "running"
) -> RunSummary:
    """Record the start of a run and return its (empty) summary."""
    now = ctx.clock()
    strategy = f"{ctx.strategy.name} v{ctx.strategy.version}"
    with ctx.db.session() as session:
        if session.scalars(select(DaemonRun).where(DaemonRun.run_id == run_id)).first() is None:
            session.add(
                DaemonRun(
                    run_id=run_id,
                    started_at=now,
                    status=status,
                    mode=ctx.mode.value,
                    broker=ctx.broker_name[:128],
                    data_source=ctx.market_data.name[:16],
                    config_hash=ctx.config_hash,
                    strategy_name=ctx.strategy.name,
                    strategy_version=ctx.strategy.version,
                    flow_run_id=flow_run_id,
                    account_id=ctx.account.account_id,
                    bot=ctx.bot_name,
                )
            )
    return RunSummary(
        run_id=run_id,
        mode=ctx.mode.value,
        broker=ctx.broker_name,
        data_source=ctx.market_data.name,
        strategy=strategy,
        guardrails_enabled=ctx.config.guardrails.enabled,
        notes=list(ctx.notes),
    )


def finish_run(
    ctx: CycleContext, summary: RunSummary, status: str, error: str | None = None
) -> None:
    """Record how the run ended, with its summary."""
    summary.status = status
    with ctx.db.session() as session:
        run = session.scalars(select(DaemonRun).where(DaemonRun.run_id == summary.run_id)).one()
        run.status = status
        run.finished_at = ctx.clock()
        run.summary_json = summary.to_json()
        run.error = error


def deliver_alerts(ctx: CycleContext) -> None:
    """Send what the cycle wrote to the alert outbox, on a background thread. Called once the
    cycle's work is recorded and its account released, so no delivery competes with (or waits
    in) a trading step or the lease."""
    _alert(ctx, "deliver_in_background", ctx.clock())


# -- 1. fetch_signal ----------------------------------------------------------------------------


def fetch_signal(ctx: CycleContext, now: datetime) -> SignalBatch:
    """Candles → signals → sized intents, for every symbol of the strategy."""
    strategy = capped_strategy(ctx, now)  # LIVE's first period: positions capped (promotion)
    limit = max(ctx.config.data.history_bars, strategy.required_history)
    book = ctx.sizing_book  # a bot sharing its account sizes from, and sells, its own book
    series_by_symbol = _fetch_candles(ctx, limit, now)
    # No mark from a series whose prices cannot be believed (NaN, zero, a jump): such a symbol
    # is skipped, and a holding in it is valued at the venue's or the entry price instead.
    marks = {
        s: _mark(s, series.last_close)
        for s, series in series_by_symbol.items()
        if series.candles and not any(i.kind in UNBELIEVABLE for i in series.issues)
    }
    fee_rate = to_decimal(ctx.config.paper.taker_fee_bps) / BPS
    slippage_rate = to_decimal(ctx.config.paper.slippage_bps) / BPS
    signals: list[Signal] = []
    intents: list[OrderIntent] = []
    issues: list[str] = []
    with ctx.db.session() as session:
        valuation, cash_left = sizing_valuation(ctx, session, marks)
        held = positions_of(session, book)
        for symbol, series in series_by_symbol.items():
            issues.extend(str(i) for i in series.issues)
            position = held.get(symbol)
            qty = position.quantity if position is not None else Decimal(0)
            if qty > 0 and _is_dust(symbol, qty, marks.get(symbol)):
                # Less than one lot or the minimum notional cannot be sold: treat as flat, or
                # the strategy would wait forever on a position it cannot close.
                issues.append(f"{symbol}: {book} book holds dust {qty}; treated as flat")
                qty, position = Decimal(0), None
            signal = evaluate(strategy, series, qty, position.avg_entry_price if position else None)
            if qty > 0 and signal.action is Action.HOLD and _exit_unfinished(ctx, session, symbol):
                # The last exit filled only in part: the strategy wants to be flat, so the rest
                # is sold now rather than at the next exit signal, hours later.
                signal = replace(
                    signal,
                    action=Action.SELL,
                    reason=f"completing the exit: {qty} left after a partial fill",
                )
            signals.append(signal)
            position_value = qty * marks.get(symbol, Decimal(0))
            intent = size_intent(
                strategy,
                signal,
                equity=valuation.equity,
                cash=cash_left,
                position_qty=qty,
                position_value=position_value,
                fee_rate=fee_rate,
                slippage_rate=slippage_rate,
            )
            if intent is not None:
                intent = _round_intent(intent, marks.get(symbol))
                if intent.side is OrderSide.BUY:
                    intent, cost = _fit_to_cash(intent, cash_left, fee_rate, slippage_rate)
                    cash_left -= cost
                intents.append(intent)
    return SignalBatch(
        tuple(signals), tuple(i for i in intents if i.quantity > 0), marks, tuple(issues)
    )


def _fetch_candles(ctx: CycleContext, limit: int, now: datetime) -> dict[str, CandleSeries]:
    """Every symbol's closed candles, jump-checked; requested in parallel from a source over
    the network (an exchange), in turn from a local one (synthetic, CSV: no waiting to
    overlap)."""
    strategy, source = ctx.strategy, ctx.market_data
    max_jump = ctx.config.data.max_jump_pct

    def fetch(symbol: str) -> CandleSeries:
        return with_jump_check(source.fetch(symbol, strategy.timeframe, limit, now), max_jump)

    if ctx.pool is not None and source.fetches_over_network and len(strategy.symbols) > 1:
        return dict(zip(strategy.symbols, ctx.pool.map(fetch, strategy.symbols), strict=True))
    return {symbol: fetch(symbol) for symbol in strategy.symbols}


def sizing_valuation(
    ctx: CycleContext, session: Session, marks: dict[str, Decimal]
) -> tuple[BookValuation, Decimal]:
    """The valuation that sizes the bot's orders, and the cash its buys may spend.

    The unnamed bot: the executing book (the whole account). A named bot sharing an account:
    its own book (``bot.capital`` plus its fills' results), and never more cash than the account
    has free either — the other bots' orders may already have spent it."""
    executing = leg_valuation(ctx, session, ctx.executing, marks)
    own_book = ctx.executing.bot_book
    if own_book is None:
        return executing, executing.cash
    own = value_book(session, own_book, marks)
    return own, max(Decimal(0), min(own.cash, executing.cash))


def _exit_unfinished(ctx: CycleContext, session: Session, symbol: str) -> bool:
    """True when the bot's latest filled order in ``symbol`` was a sell (an exit) and yet a
    position is left: the exit filled only in part."""
    # By status, not by filled_qty: money columns are exact text on SQLite, not numbers.
    filled = (OrderStatus.FILLED.value, OrderStatus.PARTIALLY_FILLED.value)
    mine = [OrderRecord.book == ctx.executing_book]
    if ctx.executing.bot_book is not None:  # the account's orders include other bots'
        mine.append(OrderRecord.bot == ctx.bot_name)
    last_side = session.scalars(
        select(OrderRecord.side)
        .where(
            *mine,
            OrderRecord.symbol == symbol,
            OrderRecord.status.in_(filled),
        )
        .order_by(OrderRecord.id.desc())
        .limit(1)
    ).first()
    return last_side == OrderSide.SELL.value


def _is_dust(symbol: str, quantity: Decimal, mark: Decimal | None) -> bool:
    try:
        rules = rules_for(symbol)
    except BrokerError:
        return False
    lots = rules.round_quantity(quantity)
    return lots < rules.min_qty or (mark is not None and lots * mark < rules.min_notional)


def _mark(symbol: str, close: float) -> Decimal:
    """The last close as an exact price on the market's tick grid (as exchanges quote it)."""
    price = to_decimal(close)
    try:
        tick = rules_for(symbol).tick_size
    except BrokerError:
        return price
    return price.quantize(tick)


def _fit_to_cash(
    intent: OrderIntent, cash: Decimal, fee_rate: Decimal, slippage_rate: Decimal
) -> tuple[OrderIntent, Decimal]:
    """A buy never costs more than the cash left: at most the affordable lots at the worst
    modelled fill price (tick-rounded up, slippage, fee). Returns the intent and its cost."""
    try:
        rules = rules_for(intent.symbol)
    except BrokerError:
        return intent, intent.quantity * intent.signal_price * (1 + fee_rate)
    affordable = rules.affordable_quantity(cash, intent.signal_price, fee_rate, slippage_rate)
    quantity = min(intent.quantity, affordable)
    cost = quantity * rules.worst_buy_price(intent.signal_price, slippage_rate) * (1 + fee_rate)
    return replace(intent, quantity=quantity), cost


def _round_intent(intent: OrderIntent, mark: Decimal | None) -> OrderIntent:
    """Both books get the same, lot-rounded quantity (rounded down: never more than sized),
    and the signal price is the tick-exact mark both books are measured against."""
    try:
        quantity = rules_for(intent.symbol).round_quantity(intent.quantity)
    except BrokerError:
        quantity = intent.quantity  # a market the shipped rules do not know: the broker rounds
    price = mark if mark is not None else intent.signal_price
    return replace(intent, quantity=quantity, signal_price=price)


def leg_valuation(
    ctx: CycleContext, session: Session, leg: ExecutionLeg, marks: dict[str, Decimal]
) -> BookValuation:
    """A leg's book marked to market. The paper book's account *is* its ledger; an exchange
    account is what the venue reports: the cycle's one read of it with this cycle's fills
    applied (``AccountView``), or — when that read could not be made — a read now."""
    if leg.role == PAPER_ROLE:
        return value_book(session, leg.book, marks)
    ensure_account(session, leg.book, Decimal(0), leg.quote_asset)
    view = leg.gate.current_account(ctx.clock(), ctx.pool)
    if view is not None:
        return view.valuation(leg.gate, leg.book, marks, ctx.candles_price_the_venue)
    return venue_valuation(ctx, leg, marks)


def venue_valuation(
    ctx: CycleContext, leg: ExecutionLeg, marks: dict[str, Decimal]
) -> BookValuation:
    """The venue's real account: quote balance as cash, other assets marked to the candles'
    closes when those are the venue's own prices, otherwise (and for an asset no candle prices)
    to the venue's own marks — a real account is never valued at synthetic or CSV prices."""
    cash = Decimal(0)
    positions: list[Position] = []
    candle_marks = marks if ctx.candles_price_the_venue else {}
    venue_marks: dict[str, Decimal | None] | None = None  # fetched at most once, if needed
    for balance in leg.gate.get_balances():
        if balance.asset == leg.quote_asset:
            cash += balance.total
            continue
        symbol = f"{balance.asset}/{leg.quote_asset}"
        mark = candle_marks.get(symbol)
        if mark is None:
            if venue_marks is None:
                venue_marks = {p.symbol: p.mark_price for p in leg.gate.get_open_positions()}
            mark = venue_marks.get(symbol)
        if mark is None or balance.total <= 0:
            continue
        positions.append(Position(symbol, balance.total, mark, mark_price=mark))
    return BookValuation(leg.book, cash, tuple(positions))


# -- 2. guard_check -----------------------------------------------------------------------------


def guard_check(ctx: CycleContext, batch: SignalBatch, now: datetime) -> GuardStatus:
    """Mark the executing book to market and evaluate the kill-switch on its equity. A named
    bot sharing its account: its own switch on its own book, then the account's switch on the
    account's total equity; halted when either is (``otonom_trader.fleet.guards``)."""
    _set_marks(ctx, batch.marks)
    with ctx.db.session() as session:
        equity = leg_valuation(ctx, session, ctx.executing, batch.marks).equity
        own_book = ctx.executing.bot_book
        own_equity = value_book(session, own_book, batch.marks).equity if own_book else equity
    # Evaluated even with guardrails off: a person's manual trip still halts, and shows.
    decision = ctx.kill_switch.evaluate(own_equity, now)
    account = ctx.account_switch
    if account is not None and account is not ctx.kill_switch:
        above = account.evaluate(equity, now)
        if above.active and not decision.active:
            reason = f"account {account.book}: {above.reason}"
            return GuardStatus(True, reason, own_equity, ctx.config.guardrails.enabled)
    return GuardStatus(decision.active, decision.reason, own_equity, ctx.config.guardrails.enabled)


def _set_marks(ctx: CycleContext, marks: dict[str, Decimal]) -> None:
    for leg in ctx.legs:
        leg.gate.set_marks(marks)


# -- 3. execute ---------------------------------------------------------------------------------


def execute(
    ctx: CycleContext, batch: SignalBatch, run_id: str, summary: RunSummary | None = None
) -> list[OrderLine]:
    """Hand every intent to the execution engine, for every leg the mode names."""
    _set_marks(ctx, batch.marks)
    stale = [i for i in batch.issues if "stale" in i]
    if stale:
        if summary is not None:
            summary.notes.append("no new orders this cycle: market data is stale")
        return []
    return ctx.engine.execute(batch.intents, run_id)


# -- 4. snapshot --------------------------------------------------------------------------------


def snapshot(
    ctx: CycleContext, marks: dict[str, Decimal], run_id: str, now: datetime
) -> list[BookLine]:
    """One portfolio snapshot per book in play: the paper book and the broker account."""
    lines: list[BookLine] = []
    account_id = ctx.account.account_id
    with ctx.db.session() as session:
        owned = [(leg_valuation(ctx, session, leg, marks), _owner(ctx, leg)) for leg in ctx.legs]
        owned += [
            (value_book(session, leg.bot_book, marks), ctx.bot_name)
            for leg in ctx.legs
            if leg.bot_book is not None
        ]
        for valuation, bot in owned:
            row = take_snapshot(session, valuation, run_id, now, bot=bot, account_id=account_id)
            lines.append(
                BookLine(
                    valuation.book, row.equity, row.cash, len(valuation.positions), row.peak_equity
                )
            )
    return lines


def _owner(ctx: CycleContext, leg: ExecutionLeg) -> str | None:
    """The bot a leg's book belongs to: the account's book of a shared account is no bot's."""
    return None if leg.bot_book is not None else ctx.bot_name


# -- 5. health_check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthReport:
    """Heartbeat and connectivity after the cycle."""

    gap_since_previous_s: float | None
    broker_ping: bool | None


def health_check(ctx: CycleContext, run_id: str, now: datetime) -> HealthReport:
    """Gap since the previous completed run, broker ping, health alerts and the alert outbox."""
    with ctx.db.session() as session:
        previous = session.scalars(
            select(DaemonRun)
            .where(
                DaemonRun.status == "succeeded",
                DaemonRun.run_id != run_id,
                # A named bot's heartbeat is its own runs' (other bots run on their own
                # schedules); the unnamed bot's is every run's, as before.
                *([DaemonRun.bot == ctx.bot_name] if ctx.bot_name else []),
            )
            .order_by(DaemonRun.finished_at.desc())
            .limit(1)
        ).first()
    gap = (
        (now - previous.finished_at).total_seconds() if previous and previous.finished_at else None
    )
    ping: bool | None = None
    broker_leg = ctx.broker_leg
    if broker_leg is not None and broker_leg.gate.account_view is not None:
        ping = True  # this cycle read the account: the venue answered and took the key
    elif broker_leg is not None:
        try:
            ping = broker_leg.gate.ping()
        except BrokerError:
            ping = False
        if not ping:
            _alert(ctx, "notify_broker_error", f"{ctx.broker_name}: ping failed")
    # Gap and drawdown alerts are checked and sent off the trading path, once the run is recorded
    # and its account released (the check still measures the gap before this run).
    _alert(ctx, "check_in_background", now, run_id)
    return HealthReport(gap, ping)


def _alert(ctx: CycleContext, method: str, *args: object) -> None:
    """Alerts never break or block trading: any failure is logged and the cycle goes on."""
    if ctx.alerts is None:
        return
    try:
        getattr(ctx.alerts, method)(*args)
    except Exception:  # noqa: BLE001
        log.warning("alert %s failed; trading continues", method, exc_info=True)


def describe_signals(batch: SignalBatch) -> list[SignalLine]:
    """Signal lines for the summary."""
    return [
        SignalLine(s.symbol, s.action.value, s.reason, batch.marks.get(s.symbol, s.price))
        for s in batch.signals
    ]


__all__ = [
    "Action",
    "GuardStatus",
    "HealthReport",
    "SignalBatch",
    "begin_run",
    "describe_signals",
    "execute",
    "fetch_signal",
    "finish_run",
    "guard_check",
    "health_check",
    "snapshot",
]
