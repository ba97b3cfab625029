"""Each venue's request-weight budget shared by every worker of a fleet, through Prefect.

One process paces itself with ``RequestBudget`` (``otonom_trader.broker.request_budget``); two
workers on one venue would each spend the whole budget. With ``bot.shared_venue_budget`` on (a
fleet file's ``shared_venue_budget: true``), a cycle run as a Prefect flow run first reserves
its weight from a Prefect global rate limit (a global concurrency limit with slot decay) named
after the venue and host, e.g. ``venue-binance-weight``:

* **in chunks** (``CHUNK`` weight units per call, kept as credit for ``CREDIT_TTL_S``), so a
  100-symbol cycle asks Prefect a few times, not once per request;
* **sized so no window overflows**: a rate limit is a bucket of ``limit`` slots refilled at
  ``decay`` per second, so any ``window_s`` can see ``limit + decay × window_s`` acquired, and
  credit is spent up to ``CREDIT_TTL_S`` after it was acquired. With the venue's budget ``B``
  (its published limit less the same 10 % headroom the in-process budget keeps), ``limit =
  B / 2`` and ``decay = (B / 2) / (window_s + CREDIT_TTL_S)`` make ``limit + decay × (window_s +
  CREDIT_TTL_S) = B``: all workers together never spend more than ``B`` in any window.

A limit that already exists (a person may have sized it otherwise) is used as it is.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from otonom_trader.broker.request_budget import VenueLimit, share_budgets

#: Weight reserved from Prefect per call (a 100-symbol Binance cycle spends ~230: ~5 calls).
CHUNK = 50
#: Seconds reserved credit stays spendable (then it is dropped: spending it later could land
#: in a window the shared limit no longer counts it in).
CREDIT_TTL_S = 2.0
#: The same share of a venue's published limit the in-process budget spends.
HEADROOM = 0.9
#: Seconds one reservation may wait for the shared limit before the request fails (and the
#: cycle's read is retried like any other failed read).
RESERVE_TIMEOUT_S = 300.0

_HOST_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class SharedLimitSpec:
    """A venue's Prefect rate limit: its name, bucket size and decay per second."""

    name: str
    limit: int
    decay_per_second: float


def limit_name(venue: str, host: str) -> str:
    """``venue-binance-weight`` (production), ``venue-binance-testnet-weight``,
    ``venue-binance-127-0-0-1-8765-weight`` (an exchange at a base URL)."""
    if host == "production":
        return f"venue-{venue}-weight"
    return f"venue-{venue}-{_HOST_CHARS.sub('-', host.lower()).strip('-')}-weight"


def limit_spec(venue: str, host: str, venue_limit: VenueLimit) -> SharedLimitSpec:
    """The shared limit of ``venue`` at ``host`` (see the module docstring for the sizes)."""
    budget = max(2, int(venue_limit.limit * HEADROOM))
    bucket = budget // 2
    decay = (budget - bucket) / (venue_limit.window_s + CREDIT_TTL_S)
    return SharedLimitSpec(limit_name(venue, host), bucket, decay)


class SharedWeight:
    """Reserves weight from a Prefect rate limit in chunks, spends it from local credit.

    ``acquire(units)`` blocks until the shared limit grants ``units`` (Prefect's
    ``rate_limit``); ``ensure()`` creates the limit before the first reservation, or reads the
    one that exists, and returns it (its size bounds the chunks). Both are injectable so the
    credit arithmetic is tested on its own."""

    def __init__(
        self,
        spec: SharedLimitSpec,
        *,
        chunk: int = CHUNK,
        ttl_s: float = CREDIT_TTL_S,
        acquire: Callable[[int], None] | None = None,
        ensure: Callable[[], SharedLimitSpec] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.chunk = chunk
        self.ttl_s = ttl_s
        self._acquire = acquire or self._prefect_acquire
        self._ensure = ensure or self._prefect_ensure
        self._ensured = False
        self._monotonic = monotonic
        self._credit = 0
        self._credit_since = 0.0
        self._lock = threading.Lock()
        #: Weight reserved from the shared limit, and the number of reservations (for tests
        #: and the bench: a cycle should make few).
        self.reserved = 0
        self.reservations = 0

    def __call__(self, units: int) -> None:
        """Take ``units`` of weight: from credit, else reserve a chunk first (waiting)."""
        with self._lock:  # one reservation at a time: the other threads would wait anyway
            now = self._monotonic()
            if self._credit and now - self._credit_since >= self.ttl_s:
                self._credit = 0  # too old to spend safely (see CREDIT_TTL_S)
            if self._credit < units:
                self._reserve(max(self.chunk, units - self._credit), units - self._credit)
            self._credit -= units

    def _reserve(self, units: int, least: int) -> None:
        """Reserve ``units`` (at most the bucket per call) until ``least`` is in hand."""
        if not self._ensured:
            self.spec = self._ensure()
            self._ensured = True
        need = min(units, self.spec.limit)
        self._acquire(need)
        if self._credit <= 0:
            self._credit_since = self._monotonic()  # the oldest credit's age decides
        self._credit += need
        self.reserved += need
        self.reservations += 1
        if need < least:  # one request weighs more than the whole bucket: take it in parts
            self._reserve(least - need, least - need)

    def _prefect_acquire(self, units: int) -> None:
        from prefect.concurrency.sync import rate_limit

        rate_limit(self.spec.name, occupy=units, timeout_seconds=RESERVE_TIMEOUT_S, strict=True)

    def _prefect_ensure(self) -> SharedLimitSpec:
        from prefect.client.orchestration import get_client

        from otonom_trader.accounts.concurrency import ensure_global_limit

        ensure_global_limit(self.spec.name, self.spec.limit, self.spec.decay_per_second)
        with get_client(sync_client=True) as client:
            found = client.read_global_concurrency_limit_by_name(self.spec.name)
        return SharedLimitSpec(found.name, found.limit, found.slot_decay_per_second or 0.0)


def share_venue_budgets(enabled: bool) -> None:
    """Reserve every venue budget of this process from the fleet's shared Prefect limits
    (``enabled``), or let each process pace itself (the default)."""
    share_budgets(_shared_weight if enabled else None)


def _shared_weight(venue: str, host: str, venue_limit: VenueLimit) -> SharedWeight:
    return SharedWeight(limit_spec(venue, host, venue_limit))
