"""The ``Broker`` interface every execution venue implements.

Paper book, simulated exchange and real exchanges (through ccxt) are Brokers of their own; the
daemon never branches on which one it holds. ``GuardedBroker`` wraps any of them with the
kill-switch. Implementations raise only :mod:`otonom_trader.broker.errors` exceptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from otonom_trader.broker.types import Balance, OrderFill, OrderRequest, Position


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

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        """The order with this client order id as the venue knows it (its fill so far), or
        ``None`` when the venue does not know it. Recovery after a crash depends on it; a
        venue that cannot look orders up raises ``NotImplementedError`` and its unresolved
        orders stay blocked."""
        raise NotImplementedError(f"{self.name} cannot look orders up by client order id")

    def close(self) -> None:  # noqa: B027 - optional hook, most brokers hold nothing to close
        """Release connections. Safe to call more than once."""
