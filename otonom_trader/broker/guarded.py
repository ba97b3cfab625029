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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from otonom_trader.broker.base import Broker
from otonom_trader.broker.errors import KillSwitchError
from otonom_trader.broker.types import Balance, OrderFill, OrderRequest, OrderSide, Position
from otonom_trader.guardrails.config import GuardrailConfig, HaltPolicy
from otonom_trader.guardrails.kill_switch import GuardDecision, KillSwitch
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


class GuardedBroker(Broker):
    """A Broker that refuses new orders while its kill-switch is active.

    Args:
        raw_broker: the broker that executes (exchange, simulated exchange or paper book).
        guard_cfg: the limits (``GuardrailConfig``).
        kill_switch: the persisted switch to consult; default: book ``broker`` in the default
            database.
        equity_fn: the executing book's equity now; default: valued from ``raw_broker``.
        clock: aware UTC ``now``; default: the system clock.
    """

    def __init__(
        self,
        raw_broker: Broker,
        guard_cfg: GuardrailConfig,
        *,
        kill_switch: KillSwitch | None = None,
        equity_fn: Callable[[], Decimal] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.raw_broker = raw_broker
        self.guard_cfg = guard_cfg
        if kill_switch is None:
            from otonom_trader.persistence.database import Database

            kill_switch = KillSwitch(Database(None), guard_cfg, DEFAULT_BOOK)
        self.kill_switch = kill_switch
        self._equity_fn = equity_fn or (lambda: account_equity(raw_broker))
        self._clock = clock or (lambda: datetime.now(UTC))
        self.name = raw_broker.name
        self.is_production = raw_broker.is_production
        self.reports_orders_instantly = raw_broker.reports_orders_instantly

    # ------------------------------------------------------------------ the gate

    def evaluate(self) -> GuardDecision:
        """Re-evaluate the guardrails on the equity now (what ``place_order`` does first)."""
        return self.kill_switch.evaluate(self._equity_fn(), self._clock())

    def check_order(self, req: OrderRequest) -> GuardDecision:
        """Raise ``KillSwitchError`` if ``req`` may not be sent now; return the decision."""
        decision = self.evaluate()
        if not decision.active:
            return decision
        policy = HaltPolicy(self.guard_cfg.halt_policy)
        if policy is HaltPolicy.REDUCE_ONLY and reduces_position(
            req, self.raw_broker.get_open_positions()
        ):
            return decision
        raise KillSwitchError(decision.reason or "trading halted")

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
        """Check the kill-switch, then place through the wrapped broker."""
        self.check_order(req)
        return self.raw_broker.place_order(req)

    def cancel_order(self, symbol: str, order_id: str) -> None:
        """Always passes through, halted or not."""
        self.raw_broker.cancel_order(symbol, order_id)

    def get_open_positions(self) -> list[Position]:
        return self.raw_broker.get_open_positions()

    def get_balances(self) -> list[Balance]:
        return self.raw_broker.get_balances()

    def ping(self) -> bool:
        return self.raw_broker.ping()

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        """Look an order up on the venue (a read: passes while halted)."""
        return self.raw_broker.fetch_order_by_client_id(symbol, client_order_id)

    def set_marks(self, marks: Mapping[str, Decimal]) -> None:
        """Hand the latest closes to a venue that prices its own fills from them (the paper
        book, the simulated exchange); a real exchange has its own prices and ignores them."""
        setter = getattr(self.raw_broker, "set_price", None)
        if setter is None:
            return
        for symbol, price in marks.items():
            setter(symbol, price)

    def close(self) -> None:
        self.raw_broker.close()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
