"""The backtest: a strategy replayed over history through the daemon's own trading code.

::

    indicators, once per symbol (causal) ─┐
    for each closed bar, on a simulated clock at the candle's close:
        marks → decide → size → round → fit to cash        (strategy.signals, daemon.steps)
        kill-switch evaluation when it can matter          (guardrails.KillSwitch)
        intents → ExecutionEngine → GuardedBroker → PaperBroker → ledger   (the PAPER stack)
        snapshot → equity curve

The book is the PAPER cycle's own stack (``daemon.context.build_context``) on an in-memory
SQLite database: the same fill model, fees, market rules, journal, ledger and kill-switch. What
the backtest does not repeat on every bar is what cannot change its outcome:

* the book is read from the ledger after each bar that traded and kept in memory in between
  (cash and positions only move on fills), and valued with the ledger's ``BookValuation``;
* the kill-switch is evaluated on the first bar, on every bar with an order, while it is
  active, and whenever a conservative in-memory check says a guardrail *could* breach (equity
  reaching the daily-loss limit against the day's highest equity, the drawdown limit against
  the highest equity seen, or a losing streak as long as the limit). Before each evaluation the
  snapshots the guardrails read (the newest, the last before today's 00:00 UTC and, on the first
  day, the first; each with the running peak) are written with the ledger's ``take_snapshot``.
  On every other bar the evaluation would breach nothing, so skipping it changes no decision.

The parity test (``tests/backtest/test_parity.py``) replays the same candles through PAPER
``TradingDaemon.run_once()`` cycles and asserts the same fills, to the last digit.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from otonom_trader.broker.types import OrderSide, Position, to_decimal
from otonom_trader.config.schema import AppConfig
from otonom_trader.daemon.context import CycleContext, build_context
from otonom_trader.daemon.steps import _fit_to_cash, _is_dust, _mark, _round_intent
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.guardrails.protections import reaches_limit
from otonom_trader.market.candles import Candle, timeframe_seconds
from otonom_trader.market.config import DataConfig
from otonom_trader.persistence.guardrail_models import KillSwitchEventRecord
from otonom_trader.persistence.models import FillRecord
from otonom_trader.portfolio.ledger import BookValuation, take_snapshot, value_book
from otonom_trader.strategy.model import Strategy
from otonom_trader.strategy.signals import (
    Action,
    IndicatorTable,
    OrderIntent,
    candle_stamp,
    condition_holds_at,
    decide,
    size_intent,
)
from otonom_trader.testkit.clock import ManualClock

BPS = Decimal(10_000)
ZERO = Decimal(0)


@dataclass(frozen=True)
class BacktestFill:
    """One fill of the backtest's book (a row of ``trades.csv``)."""

    time: datetime
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    reason: str
    realized_pnl: Decimal | None


@dataclass(frozen=True)
class EquityPoint:
    """The book after one bar: equity, cash and the value of the positions."""

    time: datetime
    equity: Decimal
    cash: Decimal
    positions_value: Decimal


@dataclass
class BacktestResult:
    """What a backtest produced: fills, the equity curve and the prices it traded on."""

    strategy: Strategy
    timeframe: str
    initial_cash: Decimal
    fills: list[BacktestFill] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)
    prices: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    kill_switch_halts: int = 0
    fees_paid: Decimal = ZERO
    bar_steps: int = 0  # symbol-bars decided


@dataclass
class _Held:
    quantity: Decimal
    avg_entry_price: Decimal
    realized_pnl: Decimal


class _GuardWatch:
    """The conservative in-memory check: could any guardrail breach at this equity?"""

    def __init__(self, app: AppConfig) -> None:
        cfg = app.guardrails
        self.enabled = cfg.enabled
        self.daily_limit = to_decimal(cfg.max_daily_loss_pct)
        self.drawdown_limit = to_decimal(cfg.max_drawdown_pct)
        self.loss_limit = cfg.max_consecutive_losses
        self.day: object = None
        self.day_high: Decimal | None = None
        self.peak: Decimal | None = None
        self.last_post_equity: Decimal | None = None
        self.losing_streak = 0

    def see(self, equity: Decimal, now: datetime) -> None:
        """Record an equity the book had (before or after a bar's orders)."""
        day = now.date()
        if day != self.day:
            # Every daily reference the guard can pick lies between the previous day's last
            # snapshot and now: the highest of them bounds the loss it can measure.
            self.day = day
            self.day_high = self.last_post_equity
        self.day_high = equity if self.day_high is None else max(self.day_high, equity)
        self.peak = equity if self.peak is None else max(self.peak, equity)

    def could_breach(self, equity: Decimal) -> bool:
        if not self.enabled:
            return False
        assert self.day_high is not None and self.peak is not None
        return (
            reaches_limit(self.day_high, equity, self.daily_limit)
            or reaches_limit(self.peak, equity, self.drawdown_limit)
            or self.losing_streak >= self.loss_limit
        )

    def closed_trade(self, realized: Decimal) -> None:
        self.losing_streak = self.losing_streak + 1 if realized < 0 else 0


class Backtest:
    """One strategy over one history, on a simulated clock.

    Args:
        app: the composed configuration (paper fills and fees, guardrails, execution).
        strategy: the validated strategy (its parameters already applied).
        history: closed candles per symbol, oldest first, gap-free (``history.load_history``).
        start: first candle open time to trade (earlier candles only warm the indicators).
        end: end of the span: the last candle traded closes at or before it.
    """

    def __init__(
        self,
        app: AppConfig,
        strategy: Strategy,
        history: Mapping[str, Sequence[Candle]],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        self.strategy = strategy
        self.history = history
        self.start = start
        self.end = end
        self.app = _paper_in_memory(app, strategy)
        self.step = timedelta(seconds=timeframe_seconds(strategy.timeframe))
        first = min((c[0].open_time for c in history.values() if c), default=None)
        self.clock = ManualClock(first + self.step if first else datetime.now(UTC))

    def run(self) -> BacktestResult:
        """Replay every bar; return the fills and the equity curve."""
        ctx = build_context(self.app, "backtest", clock=self.clock)
        ctx.strategy = self.strategy
        # A simulated halt is counted in the metrics; logged, it would read like a live one.
        switch_log = logging.getLogger(KillSwitch.__module__)
        level = switch_log.level
        switch_log.setLevel(logging.ERROR)
        try:
            return _Replay(ctx, self).run()
        finally:
            switch_log.setLevel(level)
            ctx.close()


def _paper_in_memory(app: AppConfig, strategy: Strategy) -> AppConfig:
    """The configuration of a PAPER cycle on an in-memory book, alerts off, no data source."""
    paper = copy.deepcopy(app)
    paper.mode.name = "paper"
    paper.db.url = "sqlite:///:memory:"
    paper.alerts.enabled = False
    paper.data = DataConfig()  # the candles are given; no source is opened
    paper.strategy.path = strategy.path
    return paper


class _Replay:
    """The bar loop of one run (state that lives only while it runs)."""

    def __init__(self, ctx: CycleContext, backtest: Backtest) -> None:
        self.ctx = ctx
        self.bt = backtest
        self.strategy = backtest.strategy
        self.book = ctx.executing_book
        self.fee_rate = to_decimal(ctx.config.paper.taker_fee_bps) / BPS
        self.slippage_rate = to_decimal(ctx.config.paper.slippage_bps) / BPS
        self.guard = _GuardWatch(ctx.config)
        self.cash = to_decimal(ctx.config.paper.initial_cash)
        self.held: dict[str, _Held] = {}
        self.last_filled_side: dict[str, str] = {}
        self.pending: list[tuple[datetime, BookValuation, Decimal]] = []
        self.snapshot_peak: Decimal | None = None
        self.before_midnight_written = False
        self.today_first_written = False
        self.last_fill_id = 0
        self.active = False
        self.result = BacktestResult(
            self.strategy, self.strategy.timeframe, to_decimal(ctx.config.paper.initial_cash)
        )

    # ------------------------------------------------------------------ the loop

    def run(self) -> BacktestResult:
        symbols = [s for s in self.strategy.symbols if s in self.bt.history]
        candles = {s: self.bt.history[s] for s in symbols}
        if self.bt.end is not None:
            end = self.bt.end - self.bt.step
            candles = {s: [c for c in cs if c.open_time <= end] for s, cs in candles.items()}
        closes = {s: [c.close for c in cs] for s, cs in candles.items()}
        tables = {s: IndicatorTable.for_strategy(self.strategy, closes[s]) for s in symbols}
        marks = {s: [_mark(s, close) for close in closes[s]] for s in symbols}
        times = sorted({c.open_time for cs in candles.values() for c in cs})
        if self.bt.start is not None:
            times = [t for t in times if t >= self.bt.start]
        # Candles before the span only warm the indicators up: the first bar's pointer skips them.
        pointer = {s: -1 for s in symbols}
        required = self.strategy.required_history
        for s in symbols:
            self.result.prices[s] = []
        for t in times:
            now = t + self.bt.step
            self.bt.clock.now = now
            bar_marks: dict[str, Decimal] = {}
            for s in symbols:
                i = pointer[s]
                series = candles[s]
                while i + 1 < len(series) and series[i + 1].open_time <= t:
                    i += 1
                pointer[s] = i
                if i >= 0:
                    bar_marks[s] = marks[s][i]
                    if series[i].open_time == t:
                        self.result.prices[s].append((now, closes[s][i]))
            valuation = self._valuation(bar_marks)
            intents = self._intents(
                symbols, candles, tables, pointer, bar_marks, valuation, required
            )
            self._step(now, bar_marks, valuation, intents)
        self._finish()
        return self.result

    def _intents(
        self,
        symbols: list[str],
        candles: Mapping[str, Sequence[Candle]],
        tables: Mapping[str, IndicatorTable],
        pointer: Mapping[str, int],
        marks: dict[str, Decimal],
        valuation: BookValuation,
        required: int,
    ) -> list[OrderIntent]:
        """``daemon.steps.fetch_signal``'s decisions and sizing, on the precomputed tables."""
        intents: list[OrderIntent] = []
        cash_left = valuation.cash
        for symbol in symbols:
            i = pointer[symbol]
            if i < 0:
                continue
            self.result.bar_steps += 1
            held = self.held.get(symbol)
            qty = held.quantity if held is not None else ZERO
            if qty > 0 and _is_dust(symbol, qty, marks.get(symbol)):
                qty, held = ZERO, None
            if i + 1 < required:
                continue  # SKIP: not enough closed candles yet
            if qty == 0 and not all(
                condition_holds_at(c, tables[symbol], i) for c in self.strategy.entry
            ):
                continue  # flat and no entry: decide() would say HOLD (the common bar, cheaply)
            stamp = candle_stamp(candles[symbol][i].open_time)
            avg = held.avg_entry_price if held is not None else None
            signal = decide(self.strategy, symbol, tables[symbol], i, stamp, qty, avg)
            if (
                qty > 0
                and signal.action is Action.HOLD
                and self.last_filled_side.get(symbol) == OrderSide.SELL.value
            ):
                signal = replace(
                    signal,
                    action=Action.SELL,
                    reason=f"completing the exit: {qty} left after a partial fill",
                )
            position_value = qty * marks.get(symbol, ZERO)
            intent = size_intent(
                self.strategy,
                signal,
                equity=valuation.equity,
                cash=cash_left,
                position_qty=qty,
                position_value=position_value,
                fee_rate=self.fee_rate,
                slippage_rate=self.slippage_rate,
            )
            if intent is not None:
                intent = _round_intent(intent, marks.get(symbol))
                if intent.side is OrderSide.BUY:
                    intent, cost = _fit_to_cash(
                        intent, cash_left, self.fee_rate, self.slippage_rate
                    )
                    cash_left -= cost
                intents.append(intent)
        return [i for i in intents if i.quantity > 0]

    def _step(
        self,
        now: datetime,
        marks: dict[str, Decimal],
        valuation: BookValuation,
        intents: list[OrderIntent],
    ) -> None:
        """guard_check and execute when they can matter; then the bar's snapshot."""
        equity = valuation.equity
        self.guard.see(equity, now)
        first = not self.result.equity
        if first or intents or self.active or self.guard.could_breach(equity):
            self._write_snapshots(now)
            for leg in self.ctx.legs:
                leg.gate.set_marks(marks)
            self.active = self.ctx.kill_switch.evaluate(equity, now).active
            if intents:
                self.ctx.engine.execute(intents, f"backtest-{now:%Y%m%dT%H%M}")
                self.active = self.ctx.kill_switch.status()[0]
                if self._read_fills(intents):
                    valuation = self._valuation(marks, reload=True)
                    self.guard.see(valuation.equity, now)
        self.pending.append((now, valuation, valuation.equity))
        self.guard.last_post_equity = valuation.equity
        positions_value = valuation.equity - valuation.cash
        self.result.equity.append(
            EquityPoint(now, valuation.equity, valuation.cash, positions_value)
        )

    # ------------------------------------------------------------------ the book

    def _valuation(self, marks: dict[str, Decimal], *, reload: bool = False) -> BookValuation:
        """The book marked to ``marks``, as ``value_book`` computes it (read from the ledger
        after a fill, from the copy kept in memory otherwise)."""
        if reload:
            with self.ctx.db.session() as session:
                fresh = value_book(session, self.book, marks)
            self.cash = fresh.cash
            self.held = {
                p.symbol: _Held(p.quantity, p.avg_entry_price, p.realized_pnl)
                for p in fresh.positions
            }
            return fresh
        positions = tuple(
            Position(
                symbol=symbol,
                quantity=h.quantity,
                avg_entry_price=h.avg_entry_price,
                mark_price=marks.get(symbol),
                realized_pnl=h.realized_pnl,
            )
            for symbol, h in sorted(self.held.items())
        )
        return BookValuation(self.book, self.cash, positions)

    def _read_fills(self, intents: list[OrderIntent]) -> bool:
        """The fills the bar's orders made, into the result; True when there were any."""
        reasons = {(i.symbol, i.side.value): i.reason for i in intents}
        with self.ctx.db.session() as session:
            rows = session.scalars(
                select(FillRecord)
                .where(FillRecord.book == self.book, FillRecord.id > self.last_fill_id)
                .order_by(FillRecord.id)
            ).all()
            for row in rows:
                self.last_fill_id = row.id
                self.last_filled_side[row.symbol] = row.side
                self.result.fills.append(
                    BacktestFill(
                        time=row.filled_at.replace(tzinfo=UTC)
                        if row.filled_at.tzinfo is None
                        else row.filled_at,
                        symbol=row.symbol,
                        side=row.side,
                        quantity=row.quantity,
                        price=row.price,
                        fee=row.fee,
                        reason=reasons.get((row.symbol, row.side), ""),
                        realized_pnl=row.realized_pnl,
                    )
                )
                self.result.fees_paid += row.fee
                if row.realized_pnl is not None:
                    self.guard.closed_trade(row.realized_pnl)
        return bool(rows)

    def _write_snapshots(self, now: datetime) -> None:
        """Write the snapshots the guardrails read at ``now``, each with the running peak of
        every bar up to it: the newest; the last one before today's 00:00 UTC (the daily-loss
        reference); and, while no snapshot before today exists, today's first."""
        if not self.pending:
            return
        midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
        keep: dict[int, Decimal] = {}
        before = [n for n, item in enumerate(self.pending) if item[0] < midnight]
        if before:
            keep[before[-1]] = ZERO
            self.before_midnight_written = True
        elif not self.before_midnight_written and not self.today_first_written:
            keep[0] = ZERO
        self.today_first_written = self.today_first_written or not before
        keep[len(self.pending) - 1] = ZERO
        peak = self.snapshot_peak
        for n, (_at, _valuation, equity) in enumerate(self.pending):
            peak = equity if peak is None else max(peak, equity)
            if n in keep:
                keep[n] = peak
        self.snapshot_peak = peak
        with self.ctx.db.session() as session:
            for n in sorted(keep):
                taken_at, valuation, _equity = self.pending[n]
                row = take_snapshot(session, valuation, None, taken_at)
                row.peak_equity = keep[n]  # the peak of every bar, unwritten ones included
        self.pending.clear()

    def _finish(self) -> None:
        with self.ctx.db.session() as session:
            halts = session.scalar(
                select(func.count())
                .select_from(KillSwitchEventRecord)
                .where(
                    KillSwitchEventRecord.book == self.book,
                    KillSwitchEventRecord.kind == "trigger",
                )
            )
        self.result.kill_switch_halts = int(halts or 0)
