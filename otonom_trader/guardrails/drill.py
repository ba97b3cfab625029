"""``otonom-trader drill kill-switch``: a fire drill on a scratch book in a throw-away database.

The drill trades a scratch book (``drill``) in a temporary SQLite database, on a simulated clock,
and walks equity through every guardrail in turn — daily loss, drawdown, consecutive losses —
showing for each the halt, a rejected order, a cancel that still passes, the alert and the
reset. In SHADOW the executing book is a simulated exchange and the paper book sits behind the
same kill switch, so both show the same decision. The real database is never opened.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from otonom_trader.broker.base import Broker
from otonom_trader.broker.config import SimExchangeConfig
from otonom_trader.broker.errors import BrokerError, KillSwitchError
from otonom_trader.broker.guarded import GuardedBroker, account_equity
from otonom_trader.broker.types import OrderFill, OrderRequest, OrderSide, OrderType
from otonom_trader.guardrails.config import GuardrailConfig, HaltPolicy
from otonom_trader.guardrails.kill_switch import GuardDecision, KillSwitch, KillSwitchTransition
from otonom_trader.mode import ExecutionMode
from otonom_trader.persistence.database import Database
from otonom_trader.testkit.clock import ManualClock

DRILL_BOOK = "drill"
DRILL_PAPER_BOOK = "drill-paper"
SYMBOL = "BTC/USDT"
START_PRICE = Decimal(50_000)
CASH = Decimal(10_000)


@dataclass
class DrillReport:
    """What the drill showed, step by step (also what its tests check)."""

    mode: ExecutionMode
    halts: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    cancels_passed: int = 0
    reduce_only_passed: int = 0
    alerts: list[str] = field(default_factory=list)
    resets: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every guardrail halted, rejected an order, let a cancel through, alerted, reset."""
        return (
            len(self.halts) == 3
            and len(self.rejected) == 3
            and self.cancels_passed == 3
            and len(self.resets) == 3
            and len(self.alerts) == 6
        )


class _Drill:
    def __init__(
        self, db: Database, cfg: GuardrailConfig, mode: ExecutionMode, console: Console
    ) -> None:
        from otonom_trader.alerts.config import AlertsConfig
        from otonom_trader.alerts.engine import AlertEngine
        from otonom_trader.paper.broker import PaperBroker
        from otonom_trader.paper.config import PaperConfig

        self.db, self.cfg, self.mode, self.out = db, cfg, mode, console
        self.report = DrillReport(mode)
        self.clock = ManualClock(datetime.combine(datetime.now(UTC).date(), time(9), tzinfo=UTC))
        # No alert channel is configured in a drill: alerts land in the drill database's outbox.
        self.alerts = AlertEngine(AlertsConfig(), db=db, clock=self.clock)
        self.switch = KillSwitch(db, cfg, DRILL_BOOK, on_transition=self._announce)
        paper_cfg = PaperConfig(initial_cash=float(CASH), slippage_bps=0.0, taker_fee_bps=0.0)
        self.exchange: Broker
        if mode is ExecutionMode.PAPER:
            self.exchange = PaperBroker(db, DRILL_BOOK, paper_cfg, clock=self.clock)
            self.paper = None
        else:
            sim_cfg = SimExchangeConfig(
                initial_cash=float(CASH),
                latency_ms_mean=0.0,
                latency_ms_jitter=0.0,
                slippage_bps_base=0.0,
                slippage_bps_per_10k_quote=0.0,
                partial_fill_probability=0.0,
                reject_probability=0.0,
                taker_fee_bps=0.0,
                maker_fee_bps=0.0,
            )
            from otonom_trader.broker.config import BrokerConfig
            from otonom_trader.broker.factory import build_broker

            self.exchange = build_broker(BrokerConfig(kind="sim", sim=sim_cfg), clock=self.clock)
            self.paper = PaperBroker(db, DRILL_PAPER_BOOK, paper_cfg, clock=self.clock)
        equity: Callable[[], Decimal] = lambda: account_equity(self.exchange)  # noqa: E731
        self.guarded = GuardedBroker(
            self.exchange, cfg, kill_switch=self.switch, equity_fn=equity, clock=self.clock
        )
        self.guarded_paper = (
            GuardedBroker(
                self.paper, cfg, kill_switch=self.switch, equity_fn=equity, clock=self.clock
            )
            if self.paper is not None
            else None
        )
        self.price = START_PRICE
        self._orders = 0

    # -- plumbing ---------------------------------------------------------------------------

    def _announce(self, transition: KillSwitchTransition) -> None:
        report = self.alerts.notify_kill_switch(transition.message)
        self.report.alerts.append(transition.message)
        self.out.print(f"    [magenta]alert[/] {escape(transition.message)}  ({_delivery(report)})")

    def set_price(self, price: Decimal) -> None:
        self.price = price.quantize(Decimal("0.01"))
        for broker in (self.exchange, self.paper):
            if broker is not None:
                broker.set_price(SYMBOL, self.price)  # type: ignore[attr-defined]

    def equity(self) -> Decimal:
        return account_equity(self.exchange)

    def guard_check(self) -> GuardDecision:
        decision = self.switch.evaluate(self.equity(), self.clock())
        self._snapshot()
        reason = escape(decision.reason or "")
        state = f"[red]HALTED[/] {reason}" if decision.active else "[green]clear[/]"
        self.out.print(
            f"  {self.clock():%Y-%m-%d %H:%M} price {self.price}  equity "
            f"{self.equity().quantize(Decimal('0.01'))}  guard_check: {state}"
        )
        return decision

    def _snapshot(self) -> None:
        from otonom_trader.portfolio.ledger import take_snapshot, value_book

        with self.db.session() as session:
            valuation = value_book(session, DRILL_BOOK, {SYMBOL: self.price})
            take_snapshot(session, valuation, "drill", self.clock())

    def order(
        self,
        side: OrderSide,
        quantity: Decimal,
        order_type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
    ) -> OrderFill:
        """Send to every book the mode names, as the daemon does; journal the broker leg."""
        from otonom_trader.execution.journal import journal_order, record_fill
        from otonom_trader.portfolio.ledger import apply_fill, ensure_account

        self._orders += 1
        cid = f"drill-{self._orders}"
        req = OrderRequest(SYMBOL, side, quantity, order_type, price, client_order_id=cid)
        if self.guarded_paper is not None:
            self.guarded_paper.place_order(replace(req, client_order_id=f"{cid}-p"))
        fill = self.guarded.place_order(req)
        if self.paper is not None and fill.quantity > 0:
            with self.db.session() as session:
                ensure_account(session, DRILL_BOOK, CASH, "USDT")
                record = journal_order(
                    session,
                    req,
                    book=DRILL_BOOK,
                    mode=self.mode.value,
                    run_id="drill",
                    signal_price=self.price,
                    now=self.clock(),
                )
                record_fill(record, fill, self.clock())
                apply_fill(session, DRILL_BOOK, record, fill, self.clock())
        return fill

    def held(self) -> Decimal:
        return sum((p.quantity for p in self.exchange.get_open_positions()), Decimal(0))

    def next_day(self, hour: int = 0, minute: int = 1) -> None:
        day = self.clock.now.date() + timedelta(days=1)
        self.clock.now = datetime.combine(day, time(hour, minute), tzinfo=UTC)

    def later(self, minutes: int = 5) -> None:
        self.clock.now += timedelta(minutes=minutes)

    def price_for_equity(self, target: Decimal) -> Decimal:
        """The price at which the held BTC makes the account worth ``target``."""
        cash = self.equity() - self.held() * self.price
        return (target - cash) / self.held()

    # -- the halt, shown --------------------------------------------------------------------

    def show_halt(self, guard: str, resting_order_id: str | None) -> None:
        status = self.switch.detail()
        self.report.halts.append(guard)
        self.out.print(f"    status: active={status.active}  holds={', '.join(status.holds)}")
        try:
            self.order(OrderSide.BUY, Decimal("0.001"))
        except KillSwitchError as exc:
            self.report.rejected.append(str(exc))
            self.out.print(f"    [red]rejected[/] buy 0.001 BTC: {escape(str(exc))}")
        books = [self.guarded] + ([self.guarded_paper] if self.guarded_paper else [])
        for book in books:
            order_id = resting_order_id if book is self.guarded and resting_order_id else "drill-x"
            try:
                book.cancel_order(SYMBOL, order_id)
                outcome = "cancelled"
            except KillSwitchError:
                raise
            except BrokerError as exc:  # the book's own answer: the kill switch let it through
                outcome = f"passed the kill switch; {book.name} answered: {exc}"
            if book is self.guarded:
                self.report.cancels_passed += 1
            self.out.print(
                f"    [green]cancel[/] {order_id} on {escape(book.name)}: {escape(outcome)}"
            )
        if HaltPolicy(self.cfg.halt_policy) is HaltPolicy.REDUCE_ONLY and self.held() > 0:
            self.order(OrderSide.SELL, Decimal("0.001"))
            self.report.reduce_only_passed += 1
            self.out.print(
                "    [green]reduce-only[/] sell 0.001 BTC passed (it only shrinks the long)"
            )

    def resting_order(self) -> str | None:
        """A resting limit buy far under the market (the simulated exchange keeps it open)."""
        if self.paper is None:
            return None
        fill = self.guarded.place_order(
            OrderRequest(
                SYMBOL,
                OrderSide.BUY,
                Decimal("0.001"),
                OrderType.LIMIT,
                (self.price / 2).quantize(Decimal("0.01")),
                client_order_id=f"drill-rest-{self._orders}",
            )
        )
        return fill.order_id

    # -- the three guardrails ---------------------------------------------------------------

    def run(self) -> DrillReport:
        cfg = self.cfg
        self.out.rule(
            f"[bold]Kill-switch fire drill[/] — {self.mode.value.upper()}, scratch "
            f"book '{DRILL_BOOK}', temporary database"
        )
        self.out.print(
            f"limits: daily loss {cfg.max_daily_loss_pct}%  drawdown {cfg.max_drawdown_pct}%  "
            f"consecutive losses {cfg.max_consecutive_losses}  policy {cfg.halt_policy}"
        )
        self.set_price(START_PRICE)
        self.order(OrderSide.BUY, (CASH * Decimal("0.95") / START_PRICE).quantize(Decimal("0.001")))
        self.guard_check()

        self.out.rule("1. daily loss")
        resting = self.resting_order()
        start = self.equity()
        loss = Decimal(str(cfg.max_daily_loss_pct)) + Decimal("0.5")
        self.later()
        self.set_price(self.price_for_equity(start * (100 - loss) / 100))
        if self.guard_check().active:
            self.show_halt("daily_loss", resting)
        self.next_day()
        if not self.guard_check().active:
            self.report.resets.append("daily_loss")

        self.out.rule("2. drawdown (equity walks down day by day, each day under the daily limit)")
        step = Decimal(str(cfg.max_daily_loss_pct)) * Decimal("0.8")
        resting = self.resting_order()
        for _ in range(120):
            self.clock.now = self.clock.now.replace(hour=12, minute=0)
            self.set_price(self.price_for_equity(self.equity() * (100 - step) / 100))
            decision = self.guard_check()
            if decision.active:
                break
            self.next_day()
        if decision.active and "drawdown" in decision.guards:
            self.show_halt("drawdown", resting)
            self.later()
            self.set_price(START_PRICE)
            if not self.guard_check().active:
                self.report.resets.append("drawdown")

        self.out.rule("3. consecutive losses")
        self.next_day(hour=9)
        resting = self.resting_order()
        # A winning round trip first: earlier closing sells (reduce-only) must not count.
        self.order(OrderSide.BUY, Decimal("0.001"))
        self.set_price(self.price * Decimal("1.001"))
        self.order(OrderSide.SELL, Decimal("0.001"))
        self.out.print("  winning round trip (ends any earlier streak)")
        for n in range(cfg.max_consecutive_losses):
            self.later()
            self.order(OrderSide.BUY, Decimal("0.001"))
            self.set_price(self.price * Decimal("0.999"))
            self.order(OrderSide.SELL, Decimal("0.001"))
            self.out.print(f"  losing round trip {n + 1} of {cfg.max_consecutive_losses}")
        self.later()
        if self.guard_check().active:
            self.show_halt("consecutive_losses", resting)
        hours = cfg.consecutive_loss_cooldown_hours
        if hours is None:
            self.next_day()
        else:
            self.clock.now += timedelta(hours=hours)
        if not self.guard_check().active:
            self.report.resets.append("consecutive_losses")

        self.out.rule("audit trail (kill_switch_events)")
        for event in reversed(self.switch.history(20)):
            self.out.print(
                f"  {event.at:%Y-%m-%d %H:%M} {event.kind:<7} {event.actor:<10} "
                f"{escape(event.reason)}"
            )
        verdict = "[green]PASSED[/]" if self.report.complete else "[red]INCOMPLETE[/]"
        self.out.print(
            f"drill {verdict}: {len(self.report.halts)} halts, "
            f"{len(self.report.rejected)} rejected orders, "
            f"{self.report.cancels_passed} cancels passed, "
            f"{len(self.report.alerts)} alerts, {len(self.report.resets)} resets; "
            "the real database was not opened"
        )
        return self.report


def _delivery(report: object) -> str:
    outcomes = getattr(report, "outcomes", ())
    if not outcomes:
        return "no channel configured: recorded in the drill database"
    return ", ".join(f"{getattr(o, 'channel', '?')}: {getattr(o, 'status', '?')}" for o in outcomes)


def run_drill(
    cfg: GuardrailConfig,
    mode: ExecutionMode = ExecutionMode.PAPER,
    console: Console | None = None,
    workdir: Path | None = None,
) -> DrillReport:
    """Run the fire drill in a temporary database (deleted afterwards unless ``workdir``)."""
    if not cfg.enabled:
        raise ValueError("guardrails are off (enabled: false): there is nothing to drill")
    if mode is ExecutionMode.LIVE:
        raise ValueError("the drill runs in paper or shadow mode only")
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="otonom-drill-") as tmp:
        db = Database(Path(workdir or tmp) / "drill.db")
        try:
            return _Drill(db, cfg, mode, console).run()
        finally:
            db.dispose()
