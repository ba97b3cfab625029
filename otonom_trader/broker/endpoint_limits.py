"""Per-endpoint request limits of one API key: Bybit's ``X-Bapi-Limit-*`` replies.

Besides its per-IP limit (``request_budget``), Bybit limits each private endpoint per account
(UID) and second — placing spot orders 20 per second, reading orders and balances 50 — and says
in every reply of such an endpoint how much of the current window is left
(``X-Bapi-Limit-Status``), what the limit is for this account (``X-Bapi-Limit``; VIP accounts get
more) and when the window resets (``X-Bapi-Limit-Reset-Timestamp``, ms). A request over the limit
is refused (``retCode`` 10006, "Too many visits"); for an order that is a lost second.

:class:`EndpointAllowance` keeps each endpoint within its limit before sending: no more than the
limit in any rolling second (the published table, raised or lowered to the account's own limit as
soon as a reply names it), and when a reply says nothing is left, nothing more until the reset
it names. Sixteen threads placing orders at once therefore wait their turn here instead of
being refused by the venue.

    exchange.throttle ─▶ RequestBudget.spend(weight) ─▶ EndpointAllowance.take(path)
    every reply ─ X-Bapi-Limit-Status / -Limit / -Reset-Timestamp ─▶ allowance.observe(...)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Bybit v5, per UID and second, for the private endpoints this project calls (published in
#: Bybit's "Rate Limit" page, spot / unified account). Other private endpoints: ``DEFAULT``.
BYBIT_ENDPOINT_LIMITS: dict[str, int] = {
    "v5/order/create": 20,
    "v5/order/cancel": 20,
    "v5/order/realtime": 50,
    "v5/order/history": 50,
    "v5/execution/list": 50,
    "v5/account/wallet-balance": 50,
}
DEFAULT_ENDPOINT_LIMIT = 10
WINDOW_S = 1.0

REMAINING_HEADER = "X-Bapi-Limit-Status"
LIMIT_HEADER = "X-Bapi-Limit"
RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"


def endpoint_key(path: str) -> str:
    """``/v5/order/create?x=1`` → ``v5/order/create``."""
    return path.split("?", 1)[0].strip("/")


#: A request with no reply after this long is taken as lost (ccxt's timeout is 10 s).
LOST_AFTER_S = 30.0


@dataclass
class _Endpoint:
    limit: int
    #: Send times of requests still waiting for their reply.
    in_flight: deque[float] = field(default_factory=deque)
    #: Reply times of answered requests, newest last.
    answered: deque[float] = field(default_factory=deque)
    #: The venue said nothing is left until this time (``time.time()`` seconds).
    blocked_until: float = 0.0


class EndpointAllowance:
    """Keeps each endpoint of one API key within the venue's per-second limit (thread-safe).

    The venue counts a request when it arrives, somewhere between its send and its reply, and
    its window starts at a moment only the venue knows. So a request holds its place from its
    send until one window after its *reply*: however late it arrived, and wherever the venue's
    window starts, no window of the venue ever sees more than the limit.
    """

    def __init__(
        self,
        limits: dict[str, int],
        *,
        default_limit: int = DEFAULT_ENDPOINT_LIMIT,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limits = dict(limits)
        self._default = default_limit
        self._window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._endpoints: dict[str, _Endpoint] = {}
        self._lock = threading.Lock()
        #: Seconds callers waited for their endpoint (for benchmarks and tests).
        self.waited_s = 0.0

    def _endpoint(self, key: str) -> _Endpoint:
        found = self._endpoints.get(key)
        if found is None:
            found = self._endpoints[key] = _Endpoint(self._limits.get(key, self._default))
        return found

    def _expire(self, endpoint: _Endpoint, now: float) -> None:
        while endpoint.answered and now - endpoint.answered[0] >= self._window_s:
            endpoint.answered.popleft()
        while endpoint.in_flight and now - endpoint.in_flight[0] >= LOST_AFTER_S:
            endpoint.in_flight.popleft()

    def take(self, path: str) -> None:
        """Wait until one more request to ``path`` fits its limit, and count it as sent."""
        key = endpoint_key(path)
        while True:
            with self._lock:
                endpoint = self._endpoint(key)
                now = self._clock()
                self._expire(endpoint, now)
                held = len(endpoint.in_flight) + len(endpoint.answered)
                if now < endpoint.blocked_until:
                    wait = endpoint.blocked_until - now
                elif held < endpoint.limit:
                    endpoint.in_flight.append(now)
                    return
                elif endpoint.answered:
                    wait = endpoint.answered[0] + self._window_s - now
                else:
                    wait = 0.01  # every place is a request in flight: wait for a reply
            wait = max(wait, 0.001)
            self.waited_s += wait
            self._sleep(wait)

    def answered(self, path: str) -> None:
        """A reply of ``path`` arrived: one request in flight now holds its place for a window
        from now (requests of one endpoint are alike: the oldest in flight is taken)."""
        with self._lock:
            endpoint = self._endpoint(endpoint_key(path))
            if endpoint.in_flight:
                endpoint.in_flight.popleft()
            endpoint.answered.append(self._clock())

    def tracks(self, path: str) -> bool:
        """Whether a request to ``path`` was counted here (only private requests are)."""
        with self._lock:
            return endpoint_key(path) in self._endpoints

    def limit_of(self, path: str) -> int:
        """The requests per window ``path`` may take now (the table's, or the account's own)."""
        with self._lock:
            return self._endpoint(endpoint_key(path)).limit

    def observe(self, path: str, remaining: int, limit: int | None, reset_at_s: float) -> None:
        """A reply's count: the account's own ``limit`` replaces the table's, and ``remaining``
        of 0 blocks the endpoint until ``reset_at_s``."""
        with self._lock:
            endpoint = self._endpoint(endpoint_key(path))
            if limit is not None and limit > 0:
                endpoint.limit = limit
            if remaining <= 0:
                endpoint.blocked_until = max(endpoint.blocked_until, reset_at_s)


_ALLOWANCES: dict[tuple[str, str, str], EndpointAllowance] = {}
_ALLOWANCES_LOCK = threading.Lock()


def shared_allowance(venue: str, host: str, key_fingerprint: str) -> EndpointAllowance | None:
    """The process's one allowance for an API key of ``venue`` at ``host`` (``None`` for a
    venue without per-endpoint limits): two brokers on one key share it."""
    if venue != "bybit":
        return None
    with _ALLOWANCES_LOCK:
        found = _ALLOWANCES.get((venue, host, key_fingerprint))
        if found is None:
            found = _ALLOWANCES[(venue, host, key_fingerprint)] = EndpointAllowance(
                BYBIT_ENDPOINT_LIMITS
            )
        return found


def install_endpoint_allowance(exchange: Any, allowance: EndpointAllowance) -> None:
    """Make a ccxt exchange object (with its request budget installed) also wait for
    ``allowance`` before each private request, and feed it every reply's limit headers."""
    inner_cost = exchange.calculate_rate_limiter_cost
    inner_throttle = exchange.throttle
    current = threading.local()

    def cost(api: Any, method: str, path: str, params: Any, config: Any = None) -> Any:
        # ccxt asks for the cost and then throttles, in the same thread: remember the path.
        current.private = api == "private" or (isinstance(api, list) and "private" in api)
        current.path = str(path)
        return inner_cost(api, method, path, params, config)

    def throttle(cost: Any = None) -> None:
        inner_throttle(cost)
        if getattr(current, "private", False):
            allowance.take(current.path)

    def remember_limits(response: Any, *args: Any, **kwargs: Any) -> None:
        path = response.request.path_url
        if allowance.tracks(path):
            allowance.answered(path)
        remaining = response.headers.get(REMAINING_HEADER)
        reset_ms = response.headers.get(RESET_HEADER)
        if remaining is None or reset_ms is None:
            return
        try:
            limit = response.headers.get(LIMIT_HEADER)
            allowance.observe(
                path,
                int(remaining),
                int(limit) if limit is not None else None,
                int(reset_ms) / 1000,
            )
        except (TypeError, ValueError):
            return  # a header we cannot read: the table keeps pacing

    exchange.calculate_rate_limiter_cost = cost
    exchange.throttle = throttle
    exchange.session.hooks["response"].append(remember_limits)
