"""``CcxtBroker``: a :class:`~otonom_trader.broker.base.Broker` for any ccxt exchange (spot).

One class serves Binance, Bybit and every other ccxt exchange id; ``conf/broker/*.yaml`` and the
guide's ``broker.yaml`` pick the exchange, the testnet and (for drills and tests) a local
``base_url``. What it adds on top of ccxt:

* **Market precision.** Markets are loaded once per process (cached by exchange id, testnet flag
  and base URL). Quantities are rounded down to the lot step, limit prices to the tick
  (:class:`~otonom_trader.market.rules.MarketRules`, also served to the gate by
  ``market_rules``: the gate, ``GuardedBroker``, refuses what breaks the venue's limits and
  order rate before this broker is called). Market orders are sent *without* a price: ccxt
  would turn a priced market order into a quote-amount (``quoteOrderQty``) order.
* **Orders that are never duplicated** (DESIGN.md decision 5). Every order carries a client order
  id (the caller's, or a fresh ``ot-<uuid>`` one). A submit is never retried. When its outcome is
  ambiguous (timeout, 5xx, -1007, dropped connection, lost reply) the order is looked up by that
  id with exponential backoff; if found, its fill is returned, otherwise
  :class:`AmbiguousOrderError` is raised and nothing is resent.
* **Reads are retried** on temporary errors (bounded, with backoff); final errors are raised at
  once. Every ccxt exception becomes a project error through :func:`map_ccxt_errors`.
* **Secrets stay secret.** Keys come only from the config (which resolves them from the
  environment); they are not in ``repr``, exception messages, or ccxt's DEBUG request log
  (a logging filter masks them).

Fees (``OrderFill.fee``) are reported in the quote asset: fees charged in the quote asset are
summed as they are; fees charged in the base asset (Binance takes a market buy's fee in BTC) are
converted at the order's average fill price; fees in a third asset (BNB discounts) are converted
at that asset's last price against the quote when such a market is loaded. If a third-asset fee
cannot be converted and it is the only fee, it is reported in its own currency
(``fee_currency``); mixed with others it is left out and a warning is logged.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt

from otonom_trader.accounts.identity import key_fingerprint
from otonom_trader.broker.base import Broker
from otonom_trader.broker.ccxt_errors import MIN_SECRET_LENGTH, map_ccxt_errors
from otonom_trader.broker.ccxt_routing import (
    LOCAL_BINANCE_OPTIONS,
    LOCAL_BYBIT_OPTIONS,
    route_ccxt_to,
)
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.broker.endpoint_limits import install_endpoint_allowance, shared_allowance
from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    BadExchangeReplyError,
    BrokerError,
    InvalidOrderError,
    OrderNotFoundError,
    PermissionDeniedError,
    TemporaryBrokerError,
)
from otonom_trader.broker.request_budget import (
    install_request_budget,
    pooled_session,
    shared_budget,
)
from otonom_trader.broker.types import (
    Balance,
    OrderFill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Trade,
    to_decimal,
)
from otonom_trader.config.errors import ConfigError
from otonom_trader.market.rules import MarketRules
from otonom_trader.market.symbols import to_unified

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Binance's and Bybit's rule for client order ids (Bybit allows a subset of it).
CLIENT_ORDER_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

# Spot only, and no extra endpoints while loading markets (currencies and margin pairs are not
# needed to trade spot). The same options serve the real exchange and the local stand-in, so the
# tests exercise exactly what production runs.
_EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {**LOCAL_BINANCE_OPTIONS, "warnOnFetchOpenOrdersWithoutSymbol": False},
    "bybit": dict(LOCAL_BYBIT_OPTIONS),
}

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


#: Published order-rate limits per venue, ``(orders, seconds)``: Binance spot allows 100 orders
#: per 10 s and 200,000 per day per account (its exchangeInfo ``rateLimits``, type ORDERS);
#: Bybit spot 20 order creations per second.
ORDER_RATE_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "binance": ((100, 10.0), (200_000, 86_400.0)),
    "bybit": ((20, 1.0),),
}


def utc_now() -> datetime:
    """The real clock (aware UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard reads are retried and how long an ambiguous submit is looked for.

    Delays grow as ``base_delay_s × 2**attempt`` up to ``max_delay_s``. With the defaults a read
    is tried 3 times (waits 0.5 s, 1 s) and an ambiguous order is looked up 5 times over about
    15 s (0.5 + 1 + 2 + 4 + 8), long enough for an exchange's backend to settle.
    """

    read_attempts: int = 3
    lookup_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def __post_init__(self) -> None:
        if self.read_attempts < 1 or self.lookup_attempts < 1:
            raise ValueError("RetryPolicy: read_attempts and lookup_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("RetryPolicy: delays must not be negative")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * (2**attempt)))


class _SecretMask(logging.Filter):
    """Masks registered secrets in ccxt's log records (its DEBUG log prints request headers,
    which carry the API key)."""

    def __init__(self) -> None:
        super().__init__("ccxt-secret-mask")
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if not secrets:
            return True
        text = record.getMessage()
        masked = text
        for secret in secrets:
            masked = masked.replace(secret, "***")
        if masked != text:
            record.msg, record.args = masked, None
        return True


_SECRET_MASK = _SecretMask()
logging.getLogger("ccxt.base.exchange").addFilter(_SECRET_MASK)

# Markets per process: (exchange id, testnet, base_url) → (markets, currencies).
_MARKETS_CACHE: dict[tuple[str, bool, str | None], tuple[dict[str, Any], Any]] = {}
_MARKETS_LOCK = threading.Lock()


def load_shared_markets(
    exchange: Any,
    kind: str,
    base_url: str | None,
    testnet: bool,
    load: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Give ``exchange`` its venue's markets: from this process (once loaded), else from the
    disk cache while fresh, else ``load()`` from the exchange (then cached in both). Every ccxt
    object of the same venue and host — the broker, the candle source — shares them."""
    from otonom_trader.market.venue_markets import (
        read_cached_markets,
        register_venue_markets,
        write_cached_markets,
    )

    key = (kind, testnet if base_url is None else False, base_url)
    with _MARKETS_LOCK:
        cached = _MARKETS_CACHE.get(key)
    if cached is None:
        cached = read_cached_markets(kind, base_url, testnet)
        if cached is not None:
            with _MARKETS_LOCK:
                _MARKETS_CACHE.setdefault(key, cached)
            register_venue_markets(cached[0])
    if cached is not None:
        markets, currencies = cached
        exchange.set_markets(markets, currencies or None)
        restored: dict[str, Any] = exchange.markets
        return restored
    loaded = load()
    with _MARKETS_LOCK:
        _MARKETS_CACHE.setdefault(key, (loaded, exchange.currencies))
    write_cached_markets(kind, base_url, testnet, loaded, exchange.currencies)
    register_venue_markets(loaded)
    return loaded


def share_markets(exchange: Any, kind: str, base_url: str | None, testnet: bool) -> None:
    """Route every market load of a ccxt exchange object — ours, and the ones ccxt makes by
    itself before a balance or order call — through ``load_shared_markets``, once at a time."""
    load_from_venue = exchange.load_markets
    lock = threading.Lock()

    def load_markets(reload: bool = False, params: Any = None) -> dict[str, Any]:
        if exchange.markets and not reload:
            markets: dict[str, Any] = exchange.markets
            return markets
        with lock:
            if exchange.markets and not reload:
                return dict(exchange.markets)
            if reload:
                loaded: dict[str, Any] = load_from_venue(True, params or {})
                return loaded
            return load_shared_markets(
                exchange, kind, base_url, testnet, lambda: load_from_venue(False, params or {})
            )

    exchange.load_markets = load_markets


def clear_markets_cache(*, on_disk: bool = True) -> None:
    """Forget every loaded market list, in this process and (``on_disk``) in the disk cache:
    the next broker loads them again. For tests and for a long-running process that wants
    fresh exchange rules."""
    from otonom_trader.market.venue_markets import forget_cached_markets

    with _MARKETS_LOCK:
        _MARKETS_CACHE.clear()
    if on_disk:
        forget_cached_markets()


def is_local_url(url: str | None) -> bool:
    """True when ``url`` points at this machine (a local exchange, never real money)."""
    if not url:
        return False
    return (urlsplit(url).hostname or "") in _LOCAL_HOSTS


class CcxtBroker(Broker):
    """A spot account on any ccxt exchange (``cfg.kind`` is the ccxt id: binance, bybit, …).

    ``sleep``/``monotonic``/``now`` are injected so tests of the retry and lookup paths do not
    wait; ``retry`` sets how many attempts reads and ambiguous-order lookups get.
    """

    def __init__(
        self,
        cfg: BrokerConfig,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._cfg = cfg
        self._kind = cfg.kind
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._monotonic = monotonic
        self._now = now
        self._quote = cfg.quote_asset.upper()
        self._secrets = (cfg.api_key, cfg.api_secret)
        _SECRET_MASK.add(*self._secrets)
        self.name = cfg.display_name
        self.order_rate_limits = ORDER_RATE_LIMITS.get(cfg.kind, ())
        self.is_production = not cfg.testnet and not is_local_url(cfg.base_url)
        # ccxt's synchronous exchange objects keep no per-request state a reply depends on, and
        # requests' pooled session is shared by threads: orders may go out in parallel.
        self.concurrent_orders = True
        #: HTTP status of the last reply (recorded by a requests hook; None before any reply).
        self.last_http_status: int | None = None
        self._exchange = self._build_exchange(cfg)
        self._closed = False

    # ----------------------------------------------------------------------------- construction
    def _build_exchange(self, cfg: BrokerConfig) -> Any:
        exchange_class = getattr(ccxt, cfg.kind, None) if cfg.kind in ccxt.exchanges else None
        if exchange_class is None:
            raise ConfigError(
                f"{cfg.kind!r} is not a ccxt exchange id (use sim, or one of ccxt.exchanges "
                "such as binance, bybit, okx, kraken)",
                key="broker.kind",
            )
        options: dict[str, Any] = {}
        options.update(_EXCHANGE_OPTIONS.get(cfg.kind, {}))
        options.update(dict(cfg.options or {}))
        params: dict[str, Any] = {
            # Paced by the account's shared request budget (installed below), not by ccxt.
            "enableRateLimit": False,
            "timeout": int(cfg.timeout_ms),
            "options": options,
        }
        if cfg.api_key:
            params["apiKey"] = cfg.api_key
        if cfg.api_secret:
            params["secret"] = cfg.api_secret
        exchange = exchange_class(params)
        if cfg.testnet:
            self._enable_sandbox(exchange, cfg)
        if cfg.base_url:
            try:
                route_ccxt_to(exchange, cfg.base_url)
            except ValueError as exc:
                raise ConfigError(str(exc), key="broker.base_url") from None
        exchange.session.hooks["response"].append(self._remember_status)
        pooled_session(exchange)
        share_markets(exchange, cfg.kind, cfg.base_url, bool(cfg.testnet))
        self.request_budget = shared_budget(cfg.kind, cfg.base_url, testnet=cfg.testnet)
        if self.request_budget is not None:
            install_request_budget(exchange, cfg.kind, self.request_budget)
        allowance = shared_allowance(
            cfg.kind,
            cfg.base_url or ("testnet" if cfg.testnet else ""),
            key_fingerprint(cfg.api_key),
        )
        if allowance is not None:
            install_endpoint_allowance(exchange, allowance)
        return exchange

    @staticmethod
    def _enable_sandbox(exchange: Any, cfg: BrokerConfig) -> None:
        if not exchange.urls.get("test"):
            if cfg.base_url:
                return  # the base_url alone decides where requests go
            raise ConfigError(
                f"{cfg.kind} has no testnet in ccxt; set broker.testnet: false (real money!) "
                "or point broker.base_url at a local exchange",
                key="broker.testnet",
            )
        try:
            exchange.set_sandbox_mode(True)
        except (ccxt.BaseError, TypeError) as exc:
            raise ConfigError(
                f"{cfg.kind}: ccxt could not switch to the testnet ({type(exc).__name__})",
                key="broker.testnet",
            ) from None

    def _remember_status(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.last_http_status = int(response.status_code)

    def __repr__(self) -> str:
        return f"CcxtBroker({self.name!r})"

    @property
    def config(self) -> BrokerConfig:
        """The configuration this broker was built from (secrets are excluded from its repr)."""
        return self._cfg

    @property
    def exchange(self) -> Any:
        """The underlying ccxt exchange object (for implicit API calls such as the key audit)."""
        return self._exchange

    @property
    def has_keys(self) -> bool:
        """Whether an API key and secret are configured."""
        return bool(self._cfg.api_key and self._cfg.api_secret)

    # ----------------------------------------------------------------------------- error plumbing
    def _op(self, what: str) -> str:
        return f"{self._kind}: {what}"

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one ccxt call once, mapping its errors (no retry). For writes and audits."""
        with map_ccxt_errors(self._op(operation), redact=self._secrets):
            return fn()

    def read(self, operation: str, fn: Callable[[], T]) -> T:
        """Run a read-only ccxt call, retrying temporary errors with backoff (bounded)."""
        attempts = self._retry.read_attempts
        for attempt in range(attempts):
            try:
                return self.call(operation, fn)
            except TemporaryBrokerError as exc:
                if attempt + 1 >= attempts:
                    raise
                delay = self._retry.delay(attempt)
                log.warning(
                    "%s (attempt %d/%d, retrying in %.1f s)", exc, attempt + 1, attempts, delay
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # ----------------------------------------------------------------------------- markets
    def load_markets(self) -> dict[str, Any]:
        """The exchange's spot markets (ccxt's dict, not a copy: do not modify), loaded once
        per process and shared by every broker for the same (exchange, testnet, base_url)."""
        if self._exchange.markets:
            markets: dict[str, Any] = self._exchange.markets
            return markets
        loaded: dict[str, Any] = self.read("load markets", lambda: self._exchange.load_markets())
        return loaded

    def market_symbol(self, symbol: str) -> str:
        """Unified spot symbol (``BTC/USDT``) of ``BTCUSDT`` or ``BTC/USDT``, checked against the
        exchange's markets; an unknown market raises ``InvalidOrderError``."""
        try:
            unified = to_unified(symbol)
        except ValueError as exc:
            raise InvalidOrderError(f"{self._kind}: {exc}") from None
        markets = self.load_markets()
        market = markets.get(unified)
        if market is None or not market.get("spot", True):
            raise InvalidOrderError(
                f"{self._kind}: unknown spot market {symbol!r} ({len(markets)} markets loaded)"
            )
        return unified

    def market_rules(self, symbol: str) -> MarketRules:
        """Lot step, tick size and limits of one market, from the exchange's own definition."""
        unified = self.market_symbol(symbol)
        return MarketRules.from_ccxt_market(self._exchange.markets[unified])

    # ----------------------------------------------------------------------------- orders
    def place_order(self, req: OrderRequest) -> OrderFill:
        """Round and submit ``req``; return what was filled.

        The market's limits (lot size, market lot size, notional, price filter) and the order
        rate are checked by the gate every order passes (``GuardedBroker``), before this is
        called; here the quantity and a limit price are rounded to the market's precision.
        Never resends after an ambiguous failure (see the module docstring).
        ``OrderFill.requested_quantity`` is the quantity actually sent (after rounding to the
        lot step). ``reduce_only`` has no meaning on spot and is
        not sent (a spot sell can only reduce a holding anyway).
        """
        symbol = self.market_symbol(req.symbol)
        rules = MarketRules.from_ccxt_market(self._exchange.markets[symbol])
        quantity = rules.round_quantity(req.quantity)
        price: Decimal | None = None
        if req.order_type is OrderType.LIMIT:
            assert req.price is not None  # OrderRequest guarantees it for LIMIT
            price = rules.round_price(req.price, req.side)
        client_order_id = self._client_order_id(req)
        operation = self._op(f"submit {req.side.value} {req.order_type.value} order {symbol}")
        started = self._monotonic()
        try:
            with map_ccxt_errors(operation, client_order_id, redact=self._secrets):
                order = self._exchange.create_order(
                    symbol,
                    req.order_type.value,
                    req.side.value,
                    float(quantity),
                    float(price) if price is not None else None,
                    {"clientOrderId": client_order_id},
                )
        except AmbiguousOrderError as exc:
            log.warning("%s; looking the order up before anything else", exc)
            found = self._find_after_ambiguous(symbol, client_order_id, exc)
            return found
        latency_ms = (self._monotonic() - started) * 1000.0
        if not order.get("status"):
            # Some exchanges (Bybit) only acknowledge the id; the fill comes from a lookup.
            looked_up = self._lookup_once_or_none(symbol, client_order_id, retried=True)
            if looked_up is not None:
                order = looked_up
        return self._to_fill(order, symbol, req.side, quantity, client_order_id, latency_ms)

    def _client_order_id(self, req: OrderRequest) -> str:
        if req.client_order_id is None:
            return f"ot-{uuid.uuid4().hex}"  # 35 characters, valid on Binance and Bybit
        if not CLIENT_ORDER_ID_RE.match(req.client_order_id):
            raise InvalidOrderError(
                f"{self._kind}: client_order_id {req.client_order_id!r} must be 1-36 characters "
                "of A-Z a-z 0-9 . : / _ -"
            )
        return req.client_order_id

    def _find_after_ambiguous(
        self, symbol: str, client_order_id: str, cause: AmbiguousOrderError
    ) -> OrderFill:
        attempts = self._retry.lookup_attempts
        waited = 0.0
        for attempt in range(attempts):
            delay = self._retry.delay(attempt)
            self._sleep(delay)
            waited += delay
            try:
                order = self._lookup_once_or_none(symbol, client_order_id, retried=False)
            except TemporaryBrokerError as exc:
                log.warning(
                    "lookup %d/%d of %s failed: %s", attempt + 1, attempts, client_order_id, exc
                )
                continue
            if order is not None:
                log.info(
                    "order %s found by client order id after %d lookup(s)",
                    client_order_id,
                    attempt + 1,
                )
                return self._to_fill(order, symbol, None, None, client_order_id, None)
        raise AmbiguousOrderError(
            f"{self._kind}: order {client_order_id} on {symbol}: outcome unknown and not found "
            f"after {attempts} lookups over {waited:.1f} s; it was NOT resent (check the "
            "exchange before trading this symbol again)",
            client_order_id,
        ) from cause

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        """The order with this client order id, or None if the exchange does not know it."""
        unified = self.market_symbol(symbol)
        order = self._lookup_once_or_none(unified, client_order_id, retried=True)
        if order is None:
            return None
        return self._to_fill(order, unified, None, None, client_order_id, None)

    def _lookup_once_or_none(
        self, symbol: str, client_order_id: str, *, retried: bool
    ) -> dict[str, Any] | None:
        run = self.read if retried else self.call
        operation = f"look up order {client_order_id} on {symbol}"
        try:
            if self._kind == "binance":
                order: dict[str, Any] = run(
                    operation,
                    lambda: self._exchange.fetch_order(
                        None, symbol, {"origClientOrderId": client_order_id}
                    ),
                )
                return order
            return run(operation, lambda: self._find_in_order_lists(symbol, client_order_id))
        except OrderNotFoundError:
            return None

    def _find_in_order_lists(self, symbol: str, client_order_id: str) -> dict[str, Any] | None:
        """Open orders, then recent closed ones, filtered by client order id (exchanges whose
        ccxt ``fetch_order`` cannot take a client id: Bybit's ``orderLinkId``)."""
        params = {"orderLinkId": client_order_id} if self._kind == "bybit" else {}
        for fetch in (self._exchange.fetch_open_orders, self._exchange.fetch_closed_orders):
            for order in fetch(symbol, None, None, dict(params)):
                if order.get("clientOrderId") == client_order_id:
                    return dict(order)
        return None

    def cancel_order(self, symbol: str, order_id: str) -> None:
        """Cancel an open order by the exchange's order id (``OrderFill.order_id``).

        Not retried (a cancel is a write). ccxt's returned ``clientOrderId`` for a Binance
        cancel is the *cancel request's* id, not the order's, so nothing is read from it.
        """
        unified = self.market_symbol(symbol)
        self.call(
            f"cancel order {order_id} on {unified}",
            lambda: self._exchange.cancel_order(order_id, unified),
        )

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderFill]:
        """Open orders (all markets when ``symbol`` is None) as fills of their filled part."""
        unified = self.market_symbol(symbol) if symbol is not None else None
        if unified is None:
            self.load_markets()
        orders = self.read(
            f"fetch open orders{' on ' + unified if unified else ''}",
            lambda: self._exchange.fetch_open_orders(unified),
        )
        return [
            self._to_fill(o, o["symbol"], None, None, o.get("clientOrderId"), None) for o in orders
        ]

    def fetch_trades_since(self, symbol: str, after_trade_id: str | None) -> list[Trade]:
        """The account's trades in ``symbol`` after ``after_trade_id`` (Binance: ``fromId``;
        elsewhere the most recent ones), oldest first."""
        unified = self.market_symbol(symbol)
        params: dict[str, Any] = {}
        if after_trade_id is not None and after_trade_id.isdigit() and self._kind == "binance":
            params["fromId"] = int(after_trade_id) + 1
        listed = self.read(
            f"fetch trades on {unified}",
            lambda: self._exchange.fetch_my_trades(unified, None, 100, params),
        )
        return [_trade(item) for item in listed]

    # ----------------------------------------------------------------------------- account
    def get_balances(self) -> list[Balance]:
        """Every asset with a non-zero total (free + locked)."""
        raw = self.read("fetch balance", lambda: self._exchange.fetch_balance())
        balances = []
        free: dict[str, Any] = raw.get("free") or {}
        used: dict[str, Any] = raw.get("used") or {}
        for asset in sorted(set(free) | set(used)):
            balance = Balance(asset, _dec(free.get(asset)), _dec(used.get(asset)))
            if balance.total != 0:
                balances.append(balance)
        return balances

    def get_open_positions(self) -> list[Position]:
        """Holdings of base assets that trade against the quote asset, marked to last price.

        A spot exchange does not report what a holding cost, so ``avg_entry_price`` is the
        mark price here (unrealized PnL reads 0); the execution journal holds the real entry.
        Assets with no ``ASSET/QUOTE`` market are left out (they cannot be marked or sold).
        """
        markets = self.load_markets()
        positions = []
        for balance in self.get_balances():
            if balance.asset == self._quote:
                continue
            symbol = f"{balance.asset}/{self._quote}"
            if symbol not in markets:
                log.info(
                    "%s: holding %s %s has no %s market; not a position",
                    self._kind,
                    balance.total,
                    balance.asset,
                    symbol,
                )
                continue
            mark = self.fetch_last_price(symbol)
            positions.append(Position(symbol, balance.total, mark, mark_price=mark))
        return positions

    def last_price(self, symbol: str) -> Decimal | None:
        """The last traded price (one ticker request)."""
        return self.fetch_last_price(symbol)

    def last_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """Last prices of ``symbols`` in one request (Binance: ``ticker/price`` for all
        markets, weight 4; elsewhere ccxt's ``fetch_tickers``). Symbols the venue does not
        quote are left out."""
        markets = self.load_markets()
        unified = [u for u in (_unified_or_none(s) for s in symbols) if u in markets]
        if not unified:
            return {}
        if self._exchange.has.get("fetchLastPrices"):
            raw = self.read("fetch last prices", lambda: self._exchange.fetch_last_prices())
            values = {s: (raw.get(s) or {}).get("price") for s in unified}
        else:
            tickers = self.read("fetch tickers", lambda: self._exchange.fetch_tickers(unified))
            values = {
                s: (tickers.get(s) or {}).get("last") or (tickers.get(s) or {}).get("close")
                for s in unified
            }
        return {s: _dec(v) for s, v in values.items() if v is not None}

    def fetch_last_price(self, symbol: str) -> Decimal:
        """Last traded price of a market."""
        unified = self.market_symbol(symbol)
        ticker = self.read(f"fetch ticker {unified}", lambda: self._exchange.fetch_ticker(unified))
        value = ticker.get("last") or ticker.get("close")
        if value is None:
            raise BadExchangeReplyError(f"{self._kind}: ticker of {unified} has no last price")
        return _dec(value)

    # ----------------------------------------------------------------------------- health
    def ping(self) -> bool:
        """True when the exchange answers and the API key is accepted (a balance read)."""
        ok, detail = self._ping()
        (log.info if ok else log.warning)("%s", detail)
        return ok

    def ping_detail(self) -> str:
        """One line saying whether the broker is usable and, if not, why."""
        return self._ping()[1]

    def _ping(self) -> tuple[bool, str]:
        started = self._monotonic()
        if not self.has_keys:
            try:
                self.call("fetch server time", lambda: self._exchange.fetch_time())
            except BrokerError as exc:
                return False, f"{self.name}: not reachable: {exc}"
            prefix = self._kind.upper() + ("_TESTNET" if self._cfg.testnet else "")
            return False, (
                f"{self.name}: reachable, but no API key is configured (set {prefix}_API_KEY "
                f"and {prefix}_API_SECRET): orders are impossible"
            )
        try:
            raw = self.call("fetch balance", lambda: self._exchange.fetch_balance())
        except (AuthenticationError, PermissionDeniedError) as exc:
            return False, f"{self.name}: reachable, but the API key was refused: {exc}"
        except BrokerError as exc:
            return False, f"{self.name}: not usable: {exc}"
        elapsed_ms = (self._monotonic() - started) * 1000.0
        assets = sum(1 for v in (raw.get("total") or {}).values() if v)
        return True, (
            f"{self.name}: reachable and the API key is accepted ({assets} assets held, "
            f"{elapsed_ms:.0f} ms)"
        )

    def close(self) -> None:
        """Close the HTTP session. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        session = getattr(self._exchange, "session", None)
        if session is not None:
            session.close()

    # ----------------------------------------------------------------------------- conversion
    def _to_fill(
        self,
        order: dict[str, Any],
        symbol: str,
        side: OrderSide | None,
        requested: Decimal | None,
        client_order_id: str | None,
        latency_ms: float | None,
    ) -> OrderFill:
        try:
            filled = _dec(order.get("filled"))
            average = order.get("average")
            if average is None and filled > 0:
                cost = order.get("cost")
                average = _dec(cost) / filled if cost else order.get("price")
            avg_price = _dec(average) if average is not None and filled > 0 else None
            amount = order.get("amount")
            requested_qty = requested if requested is not None else _dec(amount)
            order_side = OrderSide(order.get("side") or (side.value if side else ""))
            fee, fee_currency = self._fee_in_quote(order, symbol, avg_price)
            trades = self._trades_of(order, symbol, filled)
            timestamp = order.get("timestamp")
            when = datetime.fromtimestamp(int(timestamp) / 1000, UTC) if timestamp else self._now()
            return OrderFill(
                symbol=symbol,
                side=order_side,
                quantity=filled,
                price=avg_price,
                requested_quantity=requested_qty,
                status=_status(order.get("status"), filled),
                order_id=str(order["id"]),
                client_order_id=order.get("clientOrderId") or client_order_id,
                fee=fee,
                fee_currency=fee_currency,
                timestamp=when,
                latency_ms=latency_ms,
                trades=trades,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadExchangeReplyError(
                f"{self._kind}: order reply for {symbol} could not be read "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    def _trades_of(self, order: dict[str, Any], symbol: str, filled: Decimal) -> tuple[Trade, ...]:
        """The order's trades with their fees in the charged asset: from the reply when it
        carries them (Binance's FULL reply), otherwise from the account's trade list."""
        raw = [t for t in (order.get("trades") or []) if t and t.get("id")]
        if not raw and filled > 0 and self._exchange.has.get("fetchMyTrades"):
            order_id = str(order["id"])
            try:
                listed = self.read(
                    f"fetch trades of order {order_id} on {symbol}",
                    lambda: self._exchange.fetch_my_trades(
                        symbol, None, None, {"orderId": order_id}
                    ),
                )
            except BrokerError as exc:
                log.warning("%s: trades of order %s not available: %s", self._kind, order_id, exc)
                listed = []
            raw = [t for t in listed if str(t.get("order") or order_id) == order_id]
        return tuple(_trade(item) for item in raw)

    def _fee_in_quote(
        self, order: dict[str, Any], symbol: str, avg_price: Decimal | None
    ) -> tuple[Decimal, str | None]:
        base, quote = symbol.split("/")
        fees = [f for f in (order.get("fees") or []) if f and f.get("cost") is not None]
        if not fees and order.get("fee") and order["fee"].get("cost") is not None:
            fees = [order["fee"]]
        if not fees:
            return Decimal(0), None
        total = Decimal(0)
        unconverted: list[tuple[Decimal, str]] = []
        for fee in fees:
            cost = _dec(fee.get("cost"))
            currency = str(fee.get("currency") or quote)
            if currency == quote:
                total += cost
            elif currency == base and avg_price is not None:
                total += cost * avg_price
            elif f"{currency}/{quote}" in (self._exchange.markets or {}):
                total += cost * self.fetch_last_price(f"{currency}/{quote}")
            else:
                unconverted.append((cost, currency))
        if unconverted and total == 0 and len({c for _, c in unconverted}) == 1:
            return sum((c for c, _ in unconverted), Decimal(0)), unconverted[0][1]
        if unconverted:
            log.warning(
                "%s: fees %s could not be converted to %s and are not counted",
                self._kind,
                unconverted,
                quote,
            )
        return total, quote


def _unified_or_none(symbol: str) -> str | None:
    try:
        return to_unified(symbol)
    except ValueError:
        return None


def _trade(item: dict[str, Any]) -> Trade:
    """A ccxt trade as the project's ``Trade`` (its fee in the asset it was charged in)."""
    fee = item.get("fee") or {}
    return Trade(
        trade_id=str(item["id"]),
        quantity=_dec(item.get("amount")),
        price=_dec(item.get("price")),
        fee=_dec(fee.get("cost")),
        fee_currency=str(fee["currency"]) if fee.get("currency") else None,
    )


def _dec(value: Any) -> Decimal:
    """ccxt numbers (floats, strings or None) as Decimal; None is 0."""
    if value is None or value == "":
        return Decimal(0)
    return to_decimal(value)


def _status(ccxt_status: str | None, filled: Decimal) -> OrderStatus:
    if ccxt_status == "closed":
        return OrderStatus.FILLED
    if ccxt_status == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
    if ccxt_status in ("canceled", "cancelled", "expired"):
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.CANCELLED
    if ccxt_status == "rejected":
        return OrderStatus.REJECTED
    return OrderStatus.SUBMITTED
