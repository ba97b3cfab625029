"""``GuardedBroker``: any Broker behind the kill-switch (the guide's section 3).

Every ``place_order`` re-evaluates the guardrails on the executing book's equity, then either
passes the order to the wrapped broker or raises ``KillSwitchError`` ("KILL-SWITCH active:
<reason>"). ``cancel_order`` always passes: cancelling never adds risk, and a halted book must be
able to pull its resting orders. With ``halt_policy: reduce_only`` an order that only shrinks an
existing position (a SELL no larger than the long it sells from) also passes, so risk can be
taken off while halted.

The guide's two-argument form works as written::

    guarded_broker = GuardedBroker(raw_broker, guard_cfg)

It opens the default database (``$OTONOM_HOME/otonom.db``), keeps the state under the book
``broker`` and values the account from the wrapped broker: the quote asset's total balance plus
every open position marked to market. The daemon passes its own ``kill_switch`` (one per
executing book) and ``equity_fn``. In SHADOW, wrap the paper book with the *same* kill switch and
equity function as the broker, so one decision applies to both books.
"""

from __future__ import annotations

import getpass
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from otonom_trader.broker.base import Broker
from otonom_trader.broker.errors import KillSwitchError, RateLimitError
from otonom_trader.broker.types import (
    Balance,
    OrderFill,
    OrderRequest,
    OrderSide,
    OrderType,
    Position,
    Trade,
)
from otonom_trader.execution.account_view import AccountView
from otonom_trader.guardrails.config import GuardrailConfig, HaltPolicy
from otonom_trader.guardrails.kill_switch import GuardDecision, KillSwitch
from otonom_trader.market.rules import MarketRules
from otonom_trader.market.symbols import to_unified

DEFAULT_BOOK = "broker"


def account_equity(broker: Broker, quote_asset: str | None = None) -> Decimal:
    """Quote-asset total balance plus every open position marked to market.

    ``quote_asset`` defaults to the broker's own ``quote_asset`` attribute, else ``USDT``.
    """
    quote = (quote_asset or getattr(broker, "quote_asset", None) or "USDT").upper()
    cash = sum((b.total for b in broker.get_balances() if b.asset.upper() == quote), Decimal(0))
    marked = sum((p.market_value for p in broker.get_open_positions()), Decimal(0))
    return cash + marked


def reduces_position(req: OrderRequest, positions: list[Position]) -> bool:
    """True when ``req`` only shrinks a held position: a SELL not larger than the long held.

    Spot positions are never short, so a BUY always adds exposure.
    """
    if req.side is not OrderSide.SELL:
        return False
    try:
        symbol = to_unified(req.symbol)
    except ValueError:
        return False
    held = sum(
        (p.quantity for p in positions if _same_symbol(p.symbol, symbol) and p.quantity > 0),
        Decimal(0),
    )
    return Decimal(0) < req.quantity <= held


def _same_symbol(a: str, unified: str) -> bool:
    try:
        return to_unified(a) == unified
    except ValueError:
        return False


def check_order_rules(
    rules: MarketRules, req: OrderRequest, last_price: Callable[[str], Decimal | None]
) -> None:
    """Raise what the venue would refuse ``req`` for under ``rules`` (lot size, notional, price
    filter), naming the rule; quantities and limit prices are judged as the broker will round
    them. ``last_price`` is asked only when the request carries no reference price. Pure: the
    gate and the backtest's in-memory order path both call it."""
    quantity = rules.round_quantity(req.quantity)
    if req.order_type is OrderType.LIMIT:
        assert req.price is not None  # OrderRequest guarantees it for LIMIT
        limit = rules.round_price(req.price, req.side)
        market_price = req.reference_price or last_price(req.symbol)
        rules.check(
            quantity,
            limit,
            market=False,
            limit_price=limit,
            side=req.side,
            market_price=market_price,
        )
        return
    reference = req.reference_price or last_price(req.symbol)
    # Without any price the order's value cannot be judged here (the venue judges it); its
    # quantity still is.
    unknown = Decimal("Infinity")
    rules.check(quantity, reference if reference is not None else unknown, market=True)


class GuardedBroker(Broker):
    """A Broker that refuses new orders while its kill-switch is active.

    Args:
        raw_broker: the broker that executes (exchange, simulated exchange or paper book).
        guard_cfg: the limits (``GuardrailConfig``).
        kill_switch: the persisted switch to consult; default: book ``broker`` in the default
            database.
        equity_fn: the executing book's equity now; default: valued from ``raw_broker``.
        clock: aware UTC ``now``; default: the system clock.
        account_guard: for a named bot sharing its account, the account-level switch's decision
            evaluated on the account's total equity; ``None`` otherwise.
    """

    def __init__(
        self,
        raw_broker: Broker,
        guard_cfg: GuardrailConfig,
        *,
        kill_switch: KillSwitch | None = None,
        equity_fn: Callable[[], Decimal] | None = None,
        clock: Callable[[], datetime] | None = None,
        account_guard: Callable[[], GuardDecision] | None = None,
    ) -> None:
        self.raw_broker = raw_broker
        #: A named bot's second level: the shared account's switch, evaluated on the account's
        #: total equity (``None``: the one switch above is the account's own).
        self._account_guard = account_guard
        self.guard_cfg = guard_cfg
        if kill_switch is None:
            from otonom_trader.persistence.database import Database

            kill_switch = KillSwitch(Database(None), guard_cfg, DEFAULT_BOOK)
        self.kill_switch = kill_switch
        self._equity_fn = equity_fn or (lambda: account_equity(raw_broker))
        self._clock = clock or (lambda: datetime.now(UTC))
        self.name = raw_broker.name
        self.is_production = raw_broker.is_production
        self._order_rate = OrderRate(raw_broker.order_rate_limits)
        self.reports_orders_instantly = raw_broker.reports_orders_instantly
        self.concurrent_orders = raw_broker.concurrent_orders
        #: The account as read once this cycle (``read_account``), kept current with its fills.
        self.account_view: AccountView | None = None
        #: The latest closes handed to ``set_marks`` (the candles' prices this cycle).
        self.marks: dict[str, Decimal] = {}
        self._admission = threading.Lock()

    # ------------------------------------------------------------------ the gate

    def evaluate(self) -> GuardDecision:
        """Re-evaluate the guardrails on the equity now (what ``place_order`` does first): the
        bot's own switch, then — for a bot sharing its account — the account's; halted when
        either is."""
        decision = self.kill_switch.evaluate(self._equity_fn(), self._clock())
        if self._account_guard is None:
            return decision
        account = self._account_guard()
        return decision if decision.active or not account.active else account

    def check_order(self, req: OrderRequest) -> GuardDecision:
        """Raise if ``req`` may not be sent now: ``KillSwitchError`` while halted, then
        ``InvalidOrderError``/``BelowMinimumNotionalError`` naming the venue's rule it breaks
        (lot size, market lot size, notional, price filter), then ``RateLimitError`` when the
        venue's order rate would be exceeded. Returns the kill-switch decision."""
        decision = self.evaluate()
        if decision.active:
            policy = HaltPolicy(self.guard_cfg.halt_policy)
            if not (
                policy is HaltPolicy.REDUCE_ONLY
                and reduces_position(req, self.raw_broker.get_open_positions())
            ):
                raise KillSwitchError(decision.reason or "trading halted")
        self.check_venue_rules(req)
        self._order_rate.check(self._clock())
        return decision

    def check_venue_rules(self, req: OrderRequest) -> None:
        """Refuse what the venue would refuse, before anything is sent (the refusal names the
        rule). Quantities and limit prices are judged as the broker will round them."""
        check_order_rules(self.raw_broker.market_rules(req.symbol), req, self.raw_broker.last_price)

    def get_kill_switch_status(self) -> tuple[bool, str | None]:
        """``(active, reason)`` after re-evaluating on the equity now.

        When the equity cannot be read (the exchange is down), the persisted state is returned.
        """
        from otonom_trader.broker.errors import BrokerError

        try:
            decision = self.evaluate()
        except BrokerError:
            return self.kill_switch.status()
        return decision.active, decision.reason

    def trip(self, reason: str) -> None:
        """Halt by hand (until ``reset``); the OS user is recorded as the actor."""
        self.kill_switch.trip(reason, self._clock(), _os_user())

    def reset(self, reason: str) -> None:
        """Clear the halt by hand; the OS user is recorded as the actor."""
        self.kill_switch.reset(reason, self._clock(), _os_user())

    # ------------------------------------------------------------------ Broker

    def place_order(self, req: OrderRequest) -> OrderFill:
        """Check the kill-switch, the venue's rules and its order rate, then place through the
        wrapped broker."""
        self.admit(req)
        return self.transmit(req)

    def admit(self, req: OrderRequest) -> GuardDecision:
        """The gate's half of ``place_order``: check ``req`` (``check_order``) and take its slot
        in the venue's order rate, atomically for concurrent callers. Raises what
        ``check_order`` raises; then only ``transmit`` is left to do."""
        with self._admission:
            decision = self.check_order(req)
            self._order_rate.record(self._clock())
        return decision

    def transmit(self, req: OrderRequest) -> OrderFill:
        """Send an order ``admit`` let through (the venue's half of ``place_order``)."""
        return self.raw_broker.place_order(req)

    # ------------------------------------------------------------------ the cycle's account

    def read_account(
        self, quote_asset: str, now: datetime, pool: Executor | None = None
    ) -> AccountView:
        """Read the venue's account once for this cycle (balances and open orders, at once when
        ``pool`` is given); kept as ``account_view`` until ``forget_account``."""
        self.account_view = AccountView.read(self.raw_broker, quote_asset, now, pool)
        return self.account_view

    def note_fill(self, fill: OrderFill) -> None:
        """Apply a fill the cycle booked to the cycle's account view (if one was read)."""
        if self.account_view is not None:
            self.account_view.apply_fill(fill)

    def note_unknown_outcome(self) -> None:
        """An order left with an outcome the view cannot apply (anomalous, unknown): the next
        use of the cycle's account reads it again (``current_account``)."""
        if self.account_view is not None:
            self.account_view.stale = True

    def current_account(self, now: datetime, pool: Executor | None = None) -> AccountView | None:
        """The cycle's account view, read again first if an order made it stale (``None``
        when no account was read this cycle)."""
        view = self.account_view
        if view is not None and view.stale:
            view = self.read_account(view.quote_asset, now, pool)
        return view

    def forget_account(self) -> None:
        """End of cycle: the next one reads the account afresh."""
        self.account_view = None

    def cancel_order(self, symbol: str, order_id: str) -> None:
        """Always passes through, halted or not."""
        self.raw_broker.cancel_order(symbol, order_id)

    def get_open_positions(self) -> list[Position]:
        return self.raw_broker.get_open_positions()

    def get_balances(self) -> list[Balance]:
        return self.raw_broker.get_balances()

    def ping(self) -> bool:
        return self.raw_broker.ping()

    # Reads pass through while halted: they add no risk.
    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        return self.raw_broker.fetch_order_by_client_id(symbol, client_order_id)

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderFill]:
        return self.raw_broker.fetch_open_orders(symbol)

    def fetch_trades_since(self, symbol: str, after_trade_id: str | None) -> list[Trade]:
        return self.raw_broker.fetch_trades_since(symbol, after_trade_id)

    def market_rules(self, symbol: str) -> MarketRules:
        return self.raw_broker.market_rules(symbol)

    def last_price(self, symbol: str) -> Decimal | None:
        return self.raw_broker.last_price(symbol)

    def last_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        return self.raw_broker.last_prices(symbols)

    def set_marks(self, marks: Mapping[str, Decimal]) -> None:
        """Hand the latest closes to a venue that prices its own fills from them (the paper
        book, the simulated exchange); a real exchange has its own prices and ignores them."""
        self.marks = dict(marks)
        setter = getattr(self.raw_broker, "set_price", None)
        if setter is None:
            return
        for symbol, price in marks.items():
            setter(symbol, price)

    def close(self) -> None:
        self.raw_broker.close()


class OrderRate:
    """The venue's order-rate limits as sliding windows over the orders this gate sent."""

    def __init__(self, limits: tuple[tuple[int, float], ...]) -> None:
        self.limits = limits
        self._sent: deque[datetime] = deque()
        self._horizon = timedelta(seconds=max((s for _, s in limits), default=0.0))

    def check(self, now: datetime) -> None:
        """Raise ``RateLimitError`` when one more order now would exceed a limit."""
        while self._sent and now - self._sent[0] > self._horizon:
            self._sent.popleft()
        for count, seconds in self.limits:
            start = now - timedelta(seconds=seconds)
            if sum(1 for at in self._sent if at > start) >= count:
                raise RateLimitError(
                    f"order rate limit: at most {count} orders per {seconds:g} s on this venue; "
                    "not sent"
                )

    def record(self, now: datetime) -> None:
        if self.limits:
            self._sent.append(now)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
