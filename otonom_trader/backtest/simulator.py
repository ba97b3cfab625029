"""The backtest: a strategy replayed over history through the daemon's own trading code.

::

    indicators, once per symbol (causal) ─┐
    for each closed bar, on a simulated clock at the candle's close:
        marks → decide → size → round → fit to cash        (strategy.signals, daemon.steps)
        kill-switch evaluation when it can matter          (guardrails.KillSwitch)
        each intent, as the execution engine sends it:
            sellable quantity → the gate (kill-switch, venue rules) → the paper fill model
            → the ledger's trade arithmetic                (paper.broker.model_fill,
                                                            portfolio.ledger.trade_arithmetic)
        the bar's equity → equity curve

The book lives in memory: cash and positions move by the ledger's own pure arithmetic
(``trade_arithmetic``, ``average_entry``) on fills priced by the paper broker's own fill model
(``model_fill``), after the gate's own venue-rule check (``broker.guarded.check_order_rules``),
the engine's sellable-quantity rule and its plausibility check (``implausible_fill``). Nothing
of an order is written to a database.

The guardrails are the daemon's: the real ``KillSwitch`` of the PAPER stack
(``daemon.context.build_context``) on an in-memory SQLite database, built at its first use and
called only when it can change an outcome — while it is active, and whenever a conservative
in-memory check says a guardrail *could* breach (equity reaching the daily-loss limit against
the day's highest equity, the drawdown limit against the highest equity seen, or a losing streak
as long as the limit), at the bar's guard_check and before each order, as the daemon evaluates
it. Before an evaluation the history the guardrails read is written: the snapshots (the newest,
the last before today's 00:00 UTC and, on the first day, the first; each with the running peak of
every equity the daemon's own evaluations would have seen) and the closing fills (the
consecutive-loss guard's input). An evaluation before an order of a bar whose guard_check was
skipped runs that guard_check first, so the switch sees what the daemon's saw. Every skipped
evaluation would have found nothing breached and changed no decision; the cursors it would have
moved (the last and first equity seen, the observed peak) are covered by those snapshots, which
take precedence over them or carry the same peak.

The parity test (``tests/backtest/test_parity.py``) replays the same candles through PAPER
``TradingDaemon.run_once()`` cycles and asserts the same fills, to the last digit.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from otonom_trader.broker.errors import BrokerError
from otonom_trader.broker.guarded import check_order_rules, reduces_position
from otonom_trader.broker.types import (
    OrderFill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    Position,
    to_decimal,
)
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.daemon.context import CycleContext, build_context
from otonom_trader.daemon.steps import _fit_to_cash, _is_dust, _mark, _round_intent
from otonom_trader.execution.engine import implausible_fill
from otonom_trader.guardrails.config import HaltPolicy
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.guardrails.protections import reaches_limit
from otonom_trader.market.candles import Candle, timeframe_seconds
from otonom_trader.market.config import DataConfig
from otonom_trader.market.rules import rules_for
from otonom_trader.paper.broker import PaperBroker, model_fill
from otonom_trader.persistence.guardrail_models import KillSwitchEventRecord
from otonom_trader.persistence.models import FillRecord, OrderRecord
from otonom_trader.portfolio.ledger import (
    BookValuation,
    average_entry,
    take_snapshot,
    trade_arithmetic,
)
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


@dataclass(frozen=True)
class _Held:
    """A position of the in-memory book (a ``BookPosition`` row's numbers); replaced, never
    changed, so the bars kept for snapshots keep the book they had."""

    quantity: Decimal
    cost_basis: Decimal
    avg_entry_price: Decimal
    realized_pnl: Decimal


class _Marks:
    """Each candle's mark (``daemon.steps._mark``: the close on the tick grid), made when a bar
    first needs it: most bars of a flat book need none."""

    def __init__(self, closes: Mapping[str, Sequence[float]]) -> None:
        self.closes = closes
        self.made: dict[str, list[Decimal | None]] = {s: [None] * len(c) for s, c in closes.items()}

    def at(self, symbol: str, index: int) -> Decimal:
        """The mark of ``symbol``'s candle ``index``."""
        made = self.made[symbol]
        mark = made[index]
        if mark is None:
            mark = made[index] = _mark(symbol, self.closes[symbol][index])
        return mark


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

    def not_breached(self) -> None:
        """The real switch found no guardrail breached: the streak it counts (closed trades
        since its last forgiveness) is below the limit, so one below bounds it from above."""
        self.losing_streak = min(self.losing_streak, self.loss_limit - 1)


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
        # A simulated halt is counted in the metrics; logged, it would read like a live one.
        switch_log = logging.getLogger(KillSwitch.__module__)
        level = switch_log.level
        switch_log.setLevel(logging.ERROR)
        replay = _Replay(self)
        # The history and everything loaded before live through the run: the collector's full
        # passes over them found nothing to free and cost a third of a year's bars.
        gc.freeze()
        try:
            return replay.run()
        finally:
            gc.unfreeze()
            switch_log.setLevel(level)
            replay.close()


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

    def __init__(self, backtest: Backtest) -> None:
        app = backtest.app
        self.bt = backtest
        self.strategy = backtest.strategy
        self._ctx: CycleContext | None = None  # the PAPER stack, built when first needed
        self.book = ""  # the paper book's name, known once the stack is built
        self.fee_rate = to_decimal(app.paper.taker_fee_bps) / BPS
        self.slippage_rate = to_decimal(app.paper.slippage_bps) / BPS
        self.guard = _GuardWatch(app)
        self.cash = to_decimal(app.paper.initial_cash)
        self.held: dict[str, _Held] = {}
        self.holdings: tuple[tuple[str, _Held], ...] = ()  # the open positions, by symbol
        self.marks = _Marks({})
        self.last_filled_side: dict[str, str] = {}
        # Each bar: its time, its book after the orders (cash, holdings, marks) and the highest
        # equity in it.
        self.pending: list[
            tuple[datetime, Decimal, tuple[tuple[str, _Held], ...], dict[str, Decimal], Decimal]
        ] = []
        self.unwritten_trades: list[
            tuple[datetime, str, OrderSide, Decimal, Decimal, Decimal, Decimal]
        ] = []
        self.snapshot_peak: Decimal | None = None
        self.before_midnight_written = False
        self.today_first_written = False
        self.active = False
        self.checked = False  # the bar's guard_check ran
        self.bar_high = ZERO
        self.pre_equity = ZERO
        self.orders_sent = 0
        self.orders_written = 0
        # The paper venue has no order-rate limit: the gate's rate check never refuses on it.
        assert not PaperBroker.order_rate_limits
        self.paper_cfg = app.paper
        self.quote_asset = app.broker.quote_asset  # the paper leg's, as build_context sets it
        self.halt_policy = HaltPolicy(app.guardrails.halt_policy)
        self.price_band = Decimal(str(app.execution.price_band_pct)) / 100  # as the engine's
        self.result = BacktestResult(
            self.strategy, self.strategy.timeframe, to_decimal(app.paper.initial_cash)
        )

    @property
    def ctx(self) -> CycleContext:
        """The PAPER cycle's stack on an in-memory SQLite database (``build_context``), built
        at the first kill-switch evaluation: a run that never needs one never opens it."""
        if self._ctx is None:
            self._ctx = build_context(self.bt.app, "backtest", clock=self.bt.clock)
            self._ctx.strategy = self.strategy
            self.book = self._ctx.executing_book
        return self._ctx

    def close(self) -> None:
        """Close the PAPER stack if it was built."""
        if self._ctx is not None:
            self._ctx.close()

    # ------------------------------------------------------------------ the loop

    def run(self) -> BacktestResult:
        symbols = [s for s in self.strategy.symbols if s in self.bt.history]
        candles = {s: self.bt.history[s] for s in symbols}
        if self.bt.end is not None:
            end = self.bt.end - self.bt.step
            candles = {s: [c for c in cs if c.open_time <= end] for s, cs in candles.items()}
        closes = {s: [c.close for c in cs] for s, cs in candles.items()}
        tables = {s: IndicatorTable.for_strategy(self.strategy, closes[s]) for s in symbols}
        self.marks = _Marks(closes)
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
            for s in symbols:
                i = pointer[s]
                series = candles[s]
                while i + 1 < len(series) and series[i + 1].open_time <= t:
                    i += 1
                pointer[s] = i
                if i >= 0 and series[i].open_time == t:
                    self.result.prices[s].append((now, closes[s][i]))
            # The marks the book needs (its positions'); a deciding symbol adds its own.
            bar_marks = {s: self.marks.at(s, pointer[s]) for s, _h in self.holdings}
            equity = self._equity(bar_marks)
            intents = self._intents(symbols, candles, tables, pointer, bar_marks, equity, required)
            self._step(now, bar_marks, equity, intents)
        self._finish()
        return self.result

    def _intents(
        self,
        symbols: list[str],
        candles: Mapping[str, Sequence[Candle]],
        tables: Mapping[str, IndicatorTable],
        pointer: Mapping[str, int],
        marks: dict[str, Decimal],
        equity: Decimal,
        required: int,
    ) -> list[OrderIntent]:
        """``daemon.steps.fetch_signal``'s decisions and sizing, on the precomputed tables."""
        intents: list[OrderIntent] = []
        cash_left = self.cash
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
            marks[symbol] = self.marks.at(symbol, i)
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
                equity=equity,
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
        self, now: datetime, marks: dict[str, Decimal], equity: Decimal, intents: list[OrderIntent]
    ) -> None:
        """guard_check and execute, each evaluation when it can matter; then the bar's point."""
        self.guard.see(equity, now)
        self.bar_high = equity
        self.checked = False
        if self.active or self.guard.could_breach(equity):
            self._evaluate(equity, now)  # the cycle's guard_check
        self.pre_equity = equity
        if intents:
            for intent in intents:  # one at a time, in order, as the engine sends them
                self._send(intent, marks, now)
            equity = self._equity(marks)
            self.guard.see(equity, now)
        self.pending.append((now, self.cash, self.holdings, marks, max(self.bar_high, equity)))
        self.guard.last_post_equity = equity
        self.result.equity.append(EquityPoint(now, equity, self.cash, equity - self.cash))

    def _evaluate(self, equity: Decimal, now: datetime) -> bool:
        """The real kill-switch on ``equity``, after writing the history it reads; whether it
        is active."""
        self._write_history(now)
        self.active = self.ctx.kill_switch.evaluate(equity, now).active
        self.checked = True
        if not self.active:
            self.guard.not_breached()
        return self.active

    def _gate_admits(self, request: OrderRequest, marks: dict[str, Decimal], now: datetime) -> bool:
        """``GuardedBroker.check_order`` on the in-memory book: the kill-switch (evaluated when
        it can matter), then the venue's rules. False when the gate refuses the order."""
        equity = self._equity(marks)
        self.guard.see(equity, now)
        self.bar_high = max(self.bar_high, equity)
        if self.active or self.guard.could_breach(equity):
            if not self.checked:
                self._evaluate(self.pre_equity, now)  # the guard_check the daemon ran first
            if self._evaluate(equity, now) and not (
                self.halt_policy is HaltPolicy.REDUCE_ONLY
                and reduces_position(request, self._positions(marks, self.holdings))
            ):
                return False  # KillSwitchError: not sent
        try:
            check_order_rules(rules_for(request.symbol), request, marks.get)
        except BrokerError:
            return False  # refused at the gate: rejected, nothing filled
        return True

    def _send(self, intent: OrderIntent, marks: dict[str, Decimal], now: datetime) -> None:
        """One intent through ``ExecutionEngine._send_one``'s steps on the in-memory book."""
        symbol, side = intent.symbol, intent.side
        position = self.held.get(symbol)
        held = position.quantity if position is not None else ZERO
        quantity = intent.quantity
        rules = rules_for(symbol)
        if side is OrderSide.SELL:
            # The engine's sellable quantity: the paper venue's free balance is the book's own.
            wanted = held if intent.target_flat else intent.quantity
            quantity = min(wanted, held)
            with contextlib.suppress(BrokerError):
                quantity = rules.round_quantity(quantity)
        request = OrderRequest(
            symbol,
            side,
            quantity if quantity > 0 else intent.quantity,
            client_order_id=f"backtest-{self.orders_sent}",
            reference_price=intent.signal_price,
        )
        self.orders_sent += 1
        if quantity <= 0 or not self._gate_admits(request, marks, now):
            return
        try:
            filled, price, fee = model_fill(
                rules,
                side,
                request.quantity,
                marks[symbol],
                held_quantity=held,
                cash=self.cash,
                cfg=self.paper_cfg,
                quote_asset=self.quote_asset,
            )
        except BrokerError:
            return  # the paper venue refused it (rules, cash): rejected, nothing filled
        self._check_plausible(request, intent, filled, price, fee, now)
        self._book(intent, filled, price, fee, now)

    def _check_plausible(
        self,
        request: OrderRequest,
        intent: OrderIntent,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        now: datetime,
    ) -> None:
        """The engine believes a paper fill unless its price is off the mark by more than the
        price band (a slippage that large); the daemon would then look the order up and block
        the symbol, which the backtest does not model: it stops, naming the setting."""
        fill = OrderFill(
            symbol=intent.symbol,
            side=intent.side,
            quantity=quantity,
            price=price,
            requested_quantity=request.quantity,
            status=OrderStatus.FILLED,
            order_id=request.client_order_id or "",
            client_order_id=request.client_order_id,
            fee=fee,
            fee_currency=self.quote_asset,
            timestamp=now,
            latency_ms=0.0,
        )
        problem = implausible_fill(fill, request.quantity, intent.signal_price, self.price_band)
        if problem is not None:
            raise ConfigError(
                f"{problem}: the paper slippage is beyond the execution price band",
                key="paper.slippage_bps",
            )

    def _book(
        self, intent: OrderIntent, quantity: Decimal, price: Decimal, fee: Decimal, now: datetime
    ) -> None:
        """The ledger's ``book_trade`` on the in-memory book (the fee is in the quote asset)."""
        symbol = intent.symbol
        position = self.held.get(symbol) or _Held(ZERO, ZERO, ZERO, ZERO)
        moved = trade_arithmetic(
            intent.side,
            held=position.quantity,
            cost_basis=position.cost_basis,
            quantity=quantity,
            price=price,
            quote_fee=fee,
        )
        held, average, basis = average_entry(moved.quantity, moved.cost_basis)
        realized = moved.realized_pnl
        self.held[symbol] = _Held(
            held,
            basis,
            average,
            position.realized_pnl if realized is None else position.realized_pnl + realized,
        )
        self.holdings = tuple((s, h) for s, h in sorted(self.held.items()) if h.quantity > 0)
        self.cash += moved.cash_change
        if realized is not None:
            self.guard.closed_trade(realized)
            self.unwritten_trades.append((now, symbol, intent.side, quantity, price, fee, realized))
        self.last_filled_side[symbol] = intent.side.value
        self.result.fees_paid += fee
        self.result.fills.append(
            BacktestFill(
                now, symbol, intent.side.value, quantity, price, fee, intent.reason, realized
            )
        )

    # ------------------------------------------------------------------ the book

    def _equity(self, marks: dict[str, Decimal]) -> Decimal:
        """``BookValuation.equity`` of the in-memory book at ``marks``, with the same sums in
        the same order, without building its positions."""
        return self.cash + sum((h.quantity * marks[s] for s, h in self.holdings), ZERO)

    @staticmethod
    def _positions(
        marks: Mapping[str, Decimal], holdings: tuple[tuple[str, _Held], ...]
    ) -> list[Position]:
        """The open positions marked to ``marks``, as the ledger's ``value_book`` lists them."""
        return [
            Position(
                symbol=symbol,
                quantity=h.quantity,
                avg_entry_price=h.avg_entry_price,
                mark_price=marks.get(symbol),
                realized_pnl=h.realized_pnl,
            )
            for symbol, h in holdings
        ]

    def _write_history(self, now: datetime) -> None:
        """What the guardrails read, written before an evaluation: the snapshots and the
        closing fills since the last one."""
        self._write_snapshots(now)
        if not self.unwritten_trades:
            return
        with self.ctx.db.session() as session:
            for at, symbol, side, quantity, price, fee, realized in self.unwritten_trades:
                self.orders_written += 1
                order = OrderRecord(
                    client_order_id=f"backtest-trade-{self.orders_written}",
                    book=self.book,
                    mode="paper",
                    symbol=symbol,
                    side=side.value,
                    order_type="market",
                    status=OrderStatus.FILLED.value,
                    requested_qty=quantity,
                    filled_qty=quantity,
                    avg_fill_price=price,
                    fee=fee,
                    fee_currency=self.quote_asset,
                    created_at=at,
                    updated_at=at,
                )
                session.add(
                    FillRecord(
                        order=order,
                        book=self.book,
                        symbol=symbol,
                        side=side.value,
                        quantity=quantity,
                        price=price,
                        fee=fee,
                        fee_currency=self.quote_asset,
                        realized_pnl=realized,
                        filled_at=at,
                    )
                )
        self.unwritten_trades.clear()

    def _write_snapshots(self, now: datetime) -> None:
        """Write the snapshots the guardrails read at ``now``, each with the running peak of
        every equity the daemon's evaluations saw up to it: the newest; the last one before
        today's 00:00 UTC (the daily-loss reference); and, while no snapshot before today
        exists, today's first."""
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
        for n, (*_bar, bar_high) in enumerate(self.pending):
            peak = bar_high if peak is None else max(peak, bar_high)
            if n in keep:
                keep[n] = peak
        self.snapshot_peak = peak
        with self.ctx.db.session() as session:
            for n in sorted(keep):
                taken_at, cash, holdings, marks, _high = self.pending[n]
                positions = tuple(self._positions(marks, holdings))
                valuation = BookValuation(self.book, cash, positions)
                row = take_snapshot(session, valuation, None, taken_at)
                row.peak_equity = keep[n]  # the peak of every bar, unwritten ones included
        self.pending.clear()

    def _finish(self) -> None:
        if self._ctx is None:
            return  # never evaluated: nothing could breach, so nothing halted
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
