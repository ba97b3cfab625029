"""One request budget per venue account, shared by every client of it in this process.

An exchange limits what one client may ask per window: Binance counts *request weight* per IP
(6,000 per minute; each endpoint has its published weight, a candle request 2, the account 20, an
order 1), Bybit counts requests per IP (600 per 5 s). The candle source and the broker are two
ccxt objects; if each paced itself, together they could still exceed the venue's limit. So both
spend from one :class:`RequestBudget` per venue host, and the budget corrects itself from what the
venue says it has counted (Binance's ``X-MBX-USED-WEIGHT-1M`` reply header), which also covers
other programs on the same IP.

::

    ccxt fetch2 ─ request_weight(venue, method, path, params) ─▶ budget.spend(w)  (waits if full)
                                                                       ▲
    every reply ─ X-MBX-USED-WEIGHT-1M ───────────────────────────▶ budget.observe(used)

The weights are Binance's published table (https://developers.binance.com/docs/binance-spot-api-
docs/rest-api, "Weight" of each endpoint) for the endpoints this project calls; the local
exchange charges the same table and sends the same header, so a test reads what was spent from the
venue's side.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Binance spot: weight of each endpoint (method, path after ``/api/v3/``) → function of params.
_BINANCE_WEIGHTS: dict[tuple[str, str], Callable[[Mapping[str, Any]], int]] = {
    ("GET", "ping"): lambda p: 1,
    ("GET", "time"): lambda p: 1,
    ("GET", "exchangeInfo"): lambda p: 20,
    ("GET", "klines"): lambda p: 2,
    ("GET", "ticker/24hr"): lambda p: 2 if "symbol" in p else _by_symbol_count(p, 2, 40, 80),
    ("GET", "ticker/price"): lambda p: 2 if "symbol" in p else 4,
    ("GET", "ticker/bookTicker"): lambda p: 2 if "symbol" in p else 4,
    ("GET", "account"): lambda p: 20,
    ("POST", "order"): lambda p: 1,
    ("GET", "order"): lambda p: 4,
    ("DELETE", "order"): lambda p: 1,
    ("GET", "openOrders"): lambda p: 6 if "symbol" in p else 80,
    ("GET", "myTrades"): lambda p: 5 if "orderId" in p else 20,
    ("GET", "account/apiRestrictions"): lambda p: 1,
}

#: What a request the table does not list is charged (Binance's most common weight).
UNLISTED_WEIGHT = 1


def _by_symbol_count(params: Mapping[str, Any], few: int, some: int, many: int) -> int:
    symbols = params.get("symbols")
    if not symbols:
        return many
    count = str(symbols).count(",") + 1
    return few if count <= 20 else some if count <= 100 else many


@dataclass(frozen=True)
class VenueLimit:
    """A venue's published request limit: ``limit`` units per ``window_s`` seconds, and the
    reply header (if any) that says how much of it the venue has counted."""

    limit: int
    window_s: float
    used_header: str | None


#: Published limits per ccxt exchange id. Binance: 6,000 weight per minute per IP. Bybit: 600
#: requests per 5 s per IP (its per-key, per-endpoint limits are kept by
#: ``otonom_trader.broker.endpoint_limits``).
VENUE_LIMITS: dict[str, VenueLimit] = {
    "binance": VenueLimit(6_000, 60.0, "X-MBX-USED-WEIGHT-1M"),
    "bybit": VenueLimit(600, 5.0, None),
}


def request_weight(venue: str, method: str, path: str, params: Mapping[str, Any]) -> int:
    """What one request costs on ``venue``: Binance's published weight, else 1 per request."""
    if venue != "binance":
        return 1
    key = path.split("/api/v3/", 1)[-1].split("/sapi/v1/", 1)[-1].lstrip("/")
    weigh = _BINANCE_WEIGHTS.get((method.upper(), key))
    return weigh(params) if weigh is not None else UNLISTED_WEIGHT


class RequestBudget:
    """A sliding-window budget of request weight (thread-safe).

    ``spend(w)`` returns at once while the window has room and otherwise waits until enough of
    the window has passed. Only ``headroom`` of the venue's limit is spent (the rest is left for
    the venue's own counting differences and for a person's tools on the same IP).
    ``observe(used)`` takes the venue's own count: when it is higher than ours (another client
    on the same IP), the difference is added as spent now.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        headroom: float = 0.9,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.capacity = max(1, int(limit * headroom))
        self._monotonic = monotonic
        self._sleep = sleep
        self._spent: deque[tuple[float, int]] = deque()
        self._in_window = 0
        self._lock = threading.Lock()
        #: Every weight unit spent through this budget since it was made (for benchmarks).
        self.total_spent = 0
        #: Seconds callers waited for room in the window.
        self.waited_s = 0.0
        #: Reserves the same weight from a budget shared with other processes (a fleet's
        #: workers, ``share_budgets``) before this one spends it; ``None``: this process alone.
        self.upstream: Callable[[int], None] | None = None

    def spend(self, weight: float | None = None) -> None:
        """Take ``weight`` (default 1) from the window, waiting while the window is full
        (and first from the shared budget, when there is one)."""
        units = max(0, int(round(weight if weight is not None else 1)))
        upstream = self.upstream
        if upstream is not None and units:
            upstream(units)
        while True:
            with self._lock:
                now = self._monotonic()
                self._expire(now)
                if self._in_window + units <= self.capacity or not self._spent:
                    self._spent.append((now, units))
                    self._in_window += units
                    self.total_spent += units
                    return
                wait = self._spent[0][0] + self.window_s - now
            wait = max(wait, 0.001)
            self.waited_s += wait
            self._sleep(wait)

    def observe(self, used: int) -> None:
        """The venue's count of this window: our estimate is raised to it, never lowered."""
        with self._lock:
            now = self._monotonic()
            self._expire(now)
            if used > self._in_window:
                self._spent.append((now, used - self._in_window))
                self._in_window = used

    @property
    def in_window(self) -> int:
        """Weight counted in the current window."""
        with self._lock:
            self._expire(self._monotonic())
            return self._in_window

    def _expire(self, now: float) -> None:
        while self._spent and now - self._spent[0][0] >= self.window_s:
            self._in_window -= self._spent.popleft()[1]


_BUDGETS: dict[tuple[str, str], RequestBudget] = {}
_BUDGETS_LOCK = threading.Lock()

#: ``(venue, host, limit) → reserve(weight)``: how every budget of this process also reserves
#: from a budget shared across processes; ``None`` (the default): each process paces itself.
UpstreamFactory = Callable[[str, str, VenueLimit], Callable[[int], None]]
_UPSTREAM: list[UpstreamFactory | None] = [None]


def share_budgets(factory: UpstreamFactory | None) -> None:
    """Make every budget of this process (made already or later) reserve its weight through
    ``factory(venue, host, limit)`` too, or stop doing so (``None``)."""
    with _BUDGETS_LOCK:
        _UPSTREAM[0] = factory
        for (venue, host), budget in _BUDGETS.items():
            budget.upstream = factory(venue, host, VENUE_LIMITS[venue]) if factory else None


def shared_budget(
    venue: str, base_url: str | None = None, *, testnet: bool = False
) -> RequestBudget | None:
    """The process's one budget for ``venue`` at its host (``None`` for a venue without a
    published limit): the candle source and the broker of one account get the same object.
    The host is ``base_url``'s, else the venue's testnet or production API."""
    limit = VENUE_LIMITS.get(venue)
    if limit is None:
        return None
    host = urlsplit(base_url).netloc if base_url else ("testnet" if testnet else "production")
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get((venue, host))
        if budget is None:
            budget = _BUDGETS[(venue, host)] = RequestBudget(limit.limit, limit.window_s)
            factory = _UPSTREAM[0]
            budget.upstream = factory(venue, host, limit) if factory else None
        return budget


def install_request_budget(exchange: Any, venue: str, budget: RequestBudget) -> None:
    """Make a ccxt exchange object spend every request from ``budget`` (by the venue's table)
    instead of pacing itself, and correct the budget from the venue's used-weight header."""
    header = VENUE_LIMITS[venue].used_header if venue in VENUE_LIMITS else None

    def cost(api: Any, method: str, path: str, params: Any, config: Any = None) -> int:
        return request_weight(venue, method, str(path), params or {})

    # ccxt's fetch2 asks calculate_rate_limiter_cost for the cost and passes it to throttle,
    # only when enableRateLimit is on: both are replaced on this instance.
    exchange.enableRateLimit = True
    exchange.calculate_rate_limiter_cost = cost
    exchange.throttle = budget.spend
    if header is not None:

        def remember_used(response: Any, *args: Any, **kwargs: Any) -> None:
            value = response.headers.get(header)
            if value is not None and str(value).isdigit():
                budget.observe(int(value))

        exchange.session.hooks["response"].append(remember_used)


#: Connections kept open per host: as many as requests a cycle has in flight at once.
POOL_CONNECTIONS = 16


def pooled_session(exchange: Any) -> None:
    """Let a ccxt exchange's HTTP session keep ``POOL_CONNECTIONS`` connections per host
    (requests keeps 10; the cycle's concurrent requests would otherwise open and drop extra
    ones)."""
    from requests.adapters import HTTPAdapter

    for prefix in ("https://", "http://"):
        exchange.session.mount(
            prefix, HTTPAdapter(pool_connections=4, pool_maxsize=POOL_CONNECTIONS)
        )
