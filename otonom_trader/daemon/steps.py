"""The five steps of a cycle, as plain functions: the library's ``run_once()`` and the Prefect
flow's tasks both call exactly these.

    fetch_signal → guard_check → execute → snapshot → health_check

Reads (fetch_signal, guard_check, snapshot's valuation, health_check) are safe to retry.
``execute`` is not blindly retryable and does not need to be: every order is journaled with a
deterministic client order id before it is sent, and a re-run of the same cycle skips every
order the journal says already left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    BrokerError,
    KillSwitchError,
)
from otonom_trader.broker.guarded import GuardedBroker
from otonom_trader.broker.types import OrderFill, OrderRequest, OrderSide, OrderStatus, to_decimal
from otonom_trader.daemon.context import BROKER_BOOK, PAPER_BOOK, CycleContext
from otonom_trader.daemon.summary import BookLine, OrderLine, RunSummary, SignalLine
from otonom_trader.execution.journal import (
    already_sent,
    journal_order,
    make_client_order_id,
    record_failure,
    record_fill,
)
from otonom_trader.market.candles import CandleSeries
from otonom_trader.market.rules import rules_for
from otonom_trader.market.symbols import split
from otonom_trader.mode import ExecutionMode
from otonom_trader.persistence.models import DaemonRun, OrderRecord
from otonom_trader.portfolio.ledger import (
    BookValuation,
    apply_fill,
    ensure_account,
    positions_of,
    take_snapshot,
    value_book,
)
from otonom_trader.shadow.ledger import ShadowLedger, ShadowLeg
from otonom_trader.strategy.signals import Action, OrderIntent, Signal, evaluate, size_intent

log = logging.getLogger(__name__)
BPS = Decimal(10_000)


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


def begin_run(ctx: CycleContext, run_id: str, flow_run_id: str | None = None) -> RunSummary:
    """Record the start of a run and return its (empty) summary."""
    now = ctx.clock()
    strategy = f"{ctx.strategy.name} v{ctx.strategy.version}"
    with ctx.db.session() as session:
        if session.scalars(select(DaemonRun).where(DaemonRun.run_id == run_id)).first() is None:
            session.add(
                DaemonRun(
                    run_id=run_id,
                    started_at=now,
                    status="running",
                    mode=ctx.mode.value,
                    broker=ctx.broker_name[:128],
                    data_source=ctx.market_data.name[:16],
                    config_hash=ctx.config_hash,
                    strategy_name=ctx.strategy.name,
                    strategy_version=ctx.strategy.version,
                    flow_run_id=flow_run_id,
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
    # The cycle's work is done and recorded: only now send what it wrote to the alert outbox, on
    # a background thread, so no delivery competes with (or waits in) a trading step.
    _alert(ctx, "deliver_in_background", ctx.clock())


# -- 1. fetch_signal ----------------------------------------------------------------------------


def fetch_signal(ctx: CycleContext, now: datetime) -> SignalBatch:
    """Candles → signals → sized intents, for every symbol of the strategy."""
    strategy = ctx.strategy
    limit = max(ctx.config.data.history_bars, strategy.required_history)
    book = ctx.executing_book
    series_by_symbol: dict[str, CandleSeries] = {
        s: ctx.market_data.fetch(s, strategy.timeframe, limit, now) for s in strategy.symbols
    }
    marks = {
        s: _mark(s, series.last_close) for s, series in series_by_symbol.items() if series.candles
    }
    fee_rate = to_decimal(ctx.config.paper.taker_fee_bps) / BPS
    slippage_rate = to_decimal(ctx.config.paper.slippage_bps) / BPS
    signals: list[Signal] = []
    intents: list[OrderIntent] = []
    issues: list[str] = []
    with ctx.db.session() as session:
        valuation = _valuation(ctx, session, book, marks)
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
            signals.append(signal)
            position_value = qty * marks.get(symbol, Decimal(0))
            intent = size_intent(
                strategy,
                signal,
                equity=valuation.equity,
                cash=valuation.cash,
                position_qty=qty,
                position_value=position_value,
                fee_rate=fee_rate,
                slippage_rate=slippage_rate,
            )
            if intent is not None:
                intents.append(_round_intent(intent, marks.get(symbol)))
    return SignalBatch(
        tuple(signals), tuple(i for i in intents if i.quantity > 0), marks, tuple(issues)
    )


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


def _round_intent(intent: OrderIntent, mark: Decimal | None) -> OrderIntent:
    """Both books get the same, lot-rounded quantity (rounded down: never more than sized),
    and the signal price is the tick-exact mark both books are measured against."""
    try:
        quantity = rules_for(intent.symbol).round_quantity(intent.quantity)
    except BrokerError:
        quantity = intent.quantity  # a market the shipped rules do not know: the broker rounds
    price = mark if mark is not None else intent.signal_price
    return OrderIntent(intent.symbol, intent.side, quantity, price, intent.reason)


def _valuation(
    ctx: CycleContext, session: Session, book: str, marks: dict[str, Decimal]
) -> BookValuation:
    if book == BROKER_BOOK:
        ensure_account(session, BROKER_BOOK, Decimal(0), ctx.quote_asset)
        return broker_account_valuation(ctx, marks)
    return value_book(session, book, marks)


def broker_account_valuation(ctx: CycleContext, marks: dict[str, Decimal]) -> BookValuation:
    """The broker's real account: quote balance as cash, other assets marked to ``marks``
    (the candles' closes); the broker's own marks only for an asset no candle prices."""
    from otonom_trader.broker.types import Position

    assert ctx.broker is not None
    cash = Decimal(0)
    positions: list[Position] = []
    broker_marks: dict[str, Decimal | None] | None = None  # fetched at most once, if needed
    for balance in ctx.broker.get_balances():
        if balance.asset == ctx.quote_asset:
            cash += balance.total
            continue
        symbol = f"{balance.asset}/{ctx.quote_asset}"
        mark = marks.get(symbol)
        if mark is None:
            if broker_marks is None:
                broker_marks = {p.symbol: p.mark_price for p in ctx.broker.get_open_positions()}
            mark = broker_marks.get(symbol)
        if mark is None or balance.total <= 0:
            continue
        positions.append(Position(symbol, balance.total, mark, mark_price=mark))
    return BookValuation(BROKER_BOOK, cash, tuple(positions))


# -- 2. guard_check -----------------------------------------------------------------------------


def guard_check(ctx: CycleContext, batch: SignalBatch, now: datetime) -> GuardStatus:
    """Mark the executing book to market and evaluate the kill-switch on its equity."""
    _set_marks(ctx, batch.marks)
    with ctx.db.session() as session:
        equity = _valuation(ctx, session, ctx.executing_book, batch.marks).equity
    # Evaluated even with guardrails off: a person's manual trip still halts, and shows.
    decision = ctx.kill_switch.evaluate(equity, now)
    return GuardStatus(decision.active, decision.reason, equity, ctx.config.guardrails.enabled)


def _set_marks(ctx: CycleContext, marks: dict[str, Decimal]) -> None:
    for target in (ctx.paper, ctx.broker):
        setter = getattr(target, "set_price", None)
        if setter is None:
            continue
        for symbol, price in marks.items():
            setter(symbol, price)


# -- 3. execute ---------------------------------------------------------------------------------


def execute(
    ctx: CycleContext, batch: SignalBatch, run_id: str, summary: RunSummary | None = None
) -> list[OrderLine]:
    """Send every intent to the books the mode names; journal first, never twice."""
    _set_marks(ctx, batch.marks)
    stale = [i for i in batch.issues if "stale" in i]
    if stale:
        if summary is not None:
            summary.notes.append("no new orders this cycle: market data is stale")
        return []
    lines: list[OrderLine] = []
    ledger = _shadow_ledger(ctx)
    for index, intent in enumerate(batch.intents):
        paper_result = broker_result = None
        if ctx.guarded_paper is not None:
            paper_result = _send(ctx, ctx.guarded_paper, PAPER_BOOK, intent, index, run_id)
            lines.append(paper_result.line)
        if ctx.guarded_broker is not None:
            broker_result = _send(ctx, ctx.guarded_broker, BROKER_BOOK, intent, index, run_id)
            lines.append(broker_result.line)
        if ledger is not None and paper_result is not None and broker_result is not None:
            _record_shadow_pair(ctx, ledger, run_id, index, intent, paper_result, broker_result)
    return lines


@dataclass(frozen=True)
class _LegResult:
    line: OrderLine
    fill: OrderFill | None
    error: BaseException | None


def _send(
    ctx: CycleContext,
    broker: GuardedBroker,
    book: str,
    intent: OrderIntent,
    index: int,
    run_id: str,
) -> _LegResult:
    now = ctx.clock()
    cid = make_client_order_id(run_id, index, intent.symbol, intent.side.value, book)
    quantity = intent.quantity
    if intent.side is OrderSide.SELL:
        quantity = _sellable(ctx, book, intent)
    request = OrderRequest(
        intent.symbol,
        intent.side,
        quantity if quantity > 0 else intent.quantity,
        client_order_id=cid,
    )
    with ctx.db.session() as session:
        record = journal_order(
            session,
            request,
            book=book,
            mode=ctx.mode.value,
            run_id=run_id,
            signal_price=intent.signal_price,
            now=now,
        )
        if already_sent(record):
            line = _line_from_record(record, note="already sent in an earlier attempt; not resent")
            return _LegResult(line, None, None)
    fill: OrderFill | None = None
    error: BaseException | None = None
    try:
        if quantity <= 0:
            raise BrokerError(f"{book} book holds no {split(intent.symbol)[0]} to sell")
        fill = broker.place_order(request)
    except BrokerError as exc:  # AmbiguousOrderError included: recorded as UNKNOWN below
        error = exc
    with ctx.db.session() as session:
        record = session.scalars(
            select(OrderRecord).where(OrderRecord.client_order_id == cid)
        ).one()
        done = ctx.clock()
        if fill is not None:
            record_fill(record, fill, done)
            if book == BROKER_BOOK:
                ensure_account(session, BROKER_BOOK, Decimal(0), ctx.quote_asset)
                apply_fill(session, BROKER_BOOK, record, fill, done)
        elif isinstance(error, AmbiguousOrderError):
            record_failure(record, OrderStatus.UNKNOWN, str(error), done)
        else:
            record_failure(record, OrderStatus.REJECTED, str(error), done)
        line = _line_from_record(record)
    if error is not None and not isinstance(error, KillSwitchError) and book == BROKER_BOOK:
        _alert(ctx, "notify_broker_error", f"{intent.side.value} {intent.symbol}: {error}")
    return _LegResult(line, fill, error)


def _sellable(ctx: CycleContext, book: str, intent: OrderIntent) -> Decimal:
    """A sell never exceeds what this book bought (and, for the broker, what the account holds)."""
    with ctx.db.session() as session:
        position = positions_of(session, book).get(intent.symbol)
    held = position.quantity if position is not None else Decimal(0)
    quantity = min(intent.quantity, held)
    if book == BROKER_BOOK and ctx.broker is not None:
        base = split(intent.symbol)[0]
        free = sum((b.free for b in ctx.broker.get_balances() if b.asset == base), Decimal(0))
        quantity = min(quantity, free)
    try:
        return rules_for(intent.symbol).round_quantity(quantity)
    except BrokerError:
        return quantity


def _line_from_record(record: OrderRecord, note: str | None = None) -> OrderLine:
    return OrderLine(
        book=record.book,
        symbol=record.symbol,
        side=record.side,
        requested_qty=record.requested_qty,
        status=record.status,
        filled_qty=record.filled_qty,
        price=record.avg_fill_price,
        fee=record.fee,
        client_order_id=record.client_order_id,
        error=note or record.error,
    )


def _shadow_ledger(ctx: CycleContext) -> ShadowLedger | None:
    return ShadowLedger(ctx.db) if ctx.mode is ExecutionMode.SHADOW else None


def _record_shadow_pair(
    ctx: CycleContext,
    ledger: ShadowLedger,
    run_id: str,
    index: int,
    intent: OrderIntent,
    paper: _LegResult,
    broker: _LegResult,
) -> None:
    def leg(result: _LegResult) -> ShadowLeg:
        if result.fill is not None:
            return ShadowLeg.from_fill(result.fill)
        if result.error is not None:
            return ShadowLeg.from_error(result.error, result.line.client_order_id)
        return ShadowLeg.skipped(result.line.error or "not sent", result.line.client_order_id)

    ledger.record(
        run_id=run_id,
        intent_id=f"{index}",
        symbol=intent.symbol,
        side=intent.side,
        requested_qty=intent.quantity,
        signal_price=intent.signal_price,
        paper=leg(paper),
        broker=leg(broker),
        at=ctx.clock(),
    )


# -- 4. snapshot --------------------------------------------------------------------------------


def snapshot(
    ctx: CycleContext, marks: dict[str, Decimal], run_id: str, now: datetime
) -> list[BookLine]:
    """One portfolio snapshot per book in play: the paper book and the broker account."""
    lines: list[BookLine] = []
    with ctx.db.session() as session:
        valuations: list[BookValuation] = []
        if ctx.paper is not None:
            valuations.append(value_book(session, PAPER_BOOK, marks))
        if ctx.broker is not None:
            valuations.append(broker_account_valuation(ctx, marks))
        for valuation in valuations:
            row = take_snapshot(session, valuation, run_id, now)
            lines.append(
                BookLine(
                    valuation.book, row.equity, row.cash, len(valuation.positions), row.peak_equity
                )
            )
    return lines


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
            .where(DaemonRun.status == "succeeded", DaemonRun.run_id != run_id)
            .order_by(DaemonRun.finished_at.desc())
            .limit(1)
        ).first()
    gap = (
        (now - previous.finished_at).total_seconds() if previous and previous.finished_at else None
    )
    ping: bool | None = None
    if ctx.broker is not None:
        try:
            ping = ctx.broker.ping()
        except BrokerError:
            ping = False
        if not ping:
            _alert(ctx, "notify_broker_error", f"{ctx.broker_name}: ping failed")
    # Gap and drawdown alerts are checked and sent off the trading path, once finish_run has
    # recorded the run (the check still measures the gap before this run).
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
