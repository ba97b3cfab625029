"""The ``Broker`` interface every execution venue implements.

Paper book, simulated exchange and real exchanges (through ccxt) are Brokers of their own; the
daemon never branches on which one it holds. ``GuardedBroker`` wraps any of them with the
kill-switch. Implementations raise only :mod:`otonom_trader.broker.errors` exceptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from otonom_trader.broker.types import Balance, OrderFill, OrderRequest, Position, Trade

if TYPE_CHECKING:
    from otonom_trader.market.rules import MarketRules


class Broker(ABC):
    """A place that executes orders and holds an account.

    ``name`` says plainly which venue this is ("sim", "binance (testnet)", "paper"); every run
    prints it. ``is_production`` is True only for a real exchange with real money.
    """

    name: str = "broker"
    is_production: bool = False
    #: True when an order this venue does not report was certainly never placed (the paper book
    #: and the in-process simulated exchange). A remote exchange may still be processing a
    #: request it has not yet reported, so a miss right after sending proves nothing there.
    reports_orders_instantly: bool = False
    #: The venue's order-rate limits, ``(orders, seconds)`` each: the gate never sends more.
    order_rate_limits: tuple[tuple[int, float], ...] = ()
    #: True when orders and reads may be sent from several threads at once (a remote exchange:
    #: the cycle then sends the orders of different symbols in parallel, each symbol's one at a
    #: time). In-process venues that keep their account in the database are used one at a time.
    concurrent_orders: bool = False

    @abstractmethod
    def place_order(self, req: OrderRequest) -> OrderFill:
        """Submit an order and return what was filled. Never submits the same client id twice."""

    @abstractmethod
    def cancel_order(self, symbol: str, order_id: str) -> None:
        """Cancel an open order. Raises ``OrderNotFoundError`` if the venue does not know it."""

    @abstractmethod
    def get_open_positions(self) -> list[Position]:
        """Non-zero holdings of base assets, marked to the latest price where one is known."""

    @abstractmethod
    def get_balances(self) -> list[Balance]:
        """Balances of every asset with a non-zero total."""

    @abstractmethod
    def ping(self) -> bool:
        """Cheap connectivity (and, where keys exist, authentication) check: True when usable."""

    def market_rules(self, symbol: str) -> MarketRules:
        """Lot step, tick and limits of ``symbol`` on this venue (default: the shipped Binance
        definitions, which the paper book and the simulated exchange use)."""
        from otonom_trader.market.rules import rules_for

        return rules_for(symbol)

    def last_price(self, symbol: str) -> Decimal | None:
        """The venue's latest price of ``symbol`` when it knows one cheaply (else ``None``)."""
        return None

    def last_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """The venue's latest prices of ``symbols`` (those it knows). An exchange answers all of
        them with one request; the default asks ``last_price`` one by one."""
        prices: dict[str, Decimal] = {}
        for symbol in symbols:
            price = self.last_price(symbol)
            if price is not None:
                prices[symbol] = price
        return prices

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderFill]:
        """Orders resting on the venue (all markets when ``symbol`` is None). Reconciliation
        compares them with the journal; a venue that cannot list them raises
        ``NotImplementedError``."""
        raise NotImplementedError(f"{self.name} cannot list its open orders")

    def fetch_trades_since(self, symbol: str, after_trade_id: str | None) -> list[Trade]:
        """The account's trades in ``symbol`` after ``after_trade_id`` (recent ones when
        ``None``), as the venue reports them. Reconciliation uses them to name the cause of a
        drift; a venue that cannot list them raises ``NotImplementedError``."""
        raise NotImplementedError(f"{self.name} cannot list its trades")

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        """The order with this client order id as the venue knows it (its fill so far), or
        ``None`` when the venue does not know it. Recovery after a crash depends on it; a
        venue that cannot look orders up raises ``NotImplementedError`` and its unresolved
        orders stay blocked."""
        raise NotImplementedError(f"{self.name} cannot look orders up by client order id")

    def close(self) -> None:  # noqa: B027 - optional hook, most brokers hold nothing to close
        """Release connections. Safe to call more than once."""
