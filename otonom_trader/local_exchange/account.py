"""The spot account shared by the local exchanges: keys, balances, orders and the test API.

:class:`SpotAccountExchange` holds what :class:`~otonom_trader.local_exchange.binance.
LocalBinanceExchange` and :class:`~otonom_trader.local_exchange.bybit.LocalBybitExchange` keep
alike: the API key and secret, ``fee_rate``, ``can_withdraw``,
``restrictions_endpoint_enabled``, the accepted :class:`LocalOrder` list and the free/locked
balances, with ``open_orders()``, ``balance()`` and ``locked()``. Each subclass adds its
markets (answering :meth:`SpotAccountExchange._has_market`, filling ``_by_unified``) and the
endpoints of its exchange.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from otonom_trader.local_exchange.faults import FaultKind
from otonom_trader.local_exchange.server import Clock, LocalExchangeServer, LocalReply


@dataclass
class LocalFill:
    """One trade of an order (``fills[]`` of a FULL order reply)."""

    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int


@dataclass
class LocalOrder:
    """An order the local exchange accepted; mutated in place as it fills or is cancelled."""

    order_id: int
    client_order_id: str
    symbol: str  # exchange id, e.g. ``BTCUSDT``
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT | LIMIT_MAKER
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    time_ms: int
    status: str = "NEW"
    executed_qty: Decimal = Decimal(0)
    cumm_quote_qty: Decimal = Decimal(0)
    update_time_ms: int = 0
    fills: list[LocalFill] = field(default_factory=list)
    orig_quote_order_qty: Decimal = Decimal(0)

    @property
    def is_open(self) -> bool:
        """Still resting on the book (NEW or PARTIALLY_FILLED)."""
        return self.status in ("NEW", "PARTIALLY_FILLED")


class SpotAccountExchange(LocalExchangeServer):
    """A local exchange with one spot account: ``balances`` are free amounts per asset.

    The subclass sets ``_by_unified`` (unified symbol ``BTC/USDT`` → exchange id) and answers
    :meth:`_has_market` before it calls :meth:`_market_id`.
    """

    _by_unified: dict[str, str]

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        balances: dict[str, Decimal] | None,
        *,
        fee_rate: Decimal,
        host: str,
        port: int,
        clock: Clock,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock)
        self._api_key = api_key
        self._api_secret = api_secret
        self.fee_rate = Decimal(fee_rate)
        #: ``enableWithdrawals`` of the key (apiRestrictions) and ``canWithdraw`` of the account.
        self.can_withdraw = False
        #: ``False`` makes the key-restrictions endpoint answer 404, as testnets do.
        self.restrictions_endpoint_enabled = True
        self.orders: list[LocalOrder] = []
        self._lock = threading.RLock()
        self._free: dict[str, Decimal] = {a: Decimal(v) for a, v in (balances or {}).items()}
        self._locked: dict[str, Decimal] = {}

    def __repr__(self) -> str:
        # Never show the key or secret.
        state = f"base_url={self.base_url!r}" if self._httpd is not None else "stopped"
        return f"{type(self).__name__}({state}, orders={len(self.orders)})"

    # ============================================================================ test/drill API
    def open_orders(self, symbol: str | None = None) -> list[LocalOrder]:
        """Resting orders (optionally of one symbol)."""
        sid = self._market_id(symbol) if symbol else None
        with self._lock:
            return [o for o in self.orders if o.is_open and (sid is None or o.symbol == sid)]

    def balance(self, asset: str) -> Decimal:
        """Free balance of ``asset`` (see :meth:`locked` for the part held by open orders)."""
        with self._lock:
            return self._free.get(asset, Decimal(0))

    def locked(self, asset: str) -> Decimal:
        """Balance of ``asset`` held by resting orders."""
        with self._lock:
            return self._locked.get(asset, Decimal(0))

    # ============================================================================ internals
    @staticmethod
    def _server_error_page(kind: FaultKind) -> LocalReply:
        """The HTML page both exchanges answer a 500/502/503 fault with."""
        status = {FaultKind.HTTP_500: 500, FaultKind.HTTP_502: 502, FaultKind.HTTP_503: 503}[kind]
        page = f"<html><body><h1>{status} Server Error</h1></body></html>"
        return LocalReply(status, page, content_type="text/html")

    @abstractmethod
    def _has_market(self, sid: str) -> bool:
        """Whether ``sid`` is the exchange id of a shipped market."""

    def _market_id(self, symbol: str) -> str:
        """``BTC/USDT`` or ``BTCUSDT`` → ``BTCUSDT``; ``ValueError`` for an unknown market."""
        sid = self._by_unified.get(symbol, symbol)
        if not self._has_market(sid):
            known = ", ".join(sorted(self._by_unified))
            raise ValueError(f"{type(self).__name__}: unknown market {symbol!r} (known: {known})")
        return sid

    def _now_ms(self) -> int:
        now: datetime = self.clock()
        return int(now.timestamp() * 1000)
