"""How a cycle claims its account and recovers what an earlier cycle left open."""

from __future__ import annotations

from dataclasses import dataclass

from otonom_trader.config.errors import require


@dataclass
class ExecutionConfig:
    """The account lease and recovery.

    ``lease_wait_seconds``: how long a cycle waits for another cycle on the same account to
    finish before it ends without trading (and says who holds the account). ``ambiguity_window_
    seconds``: an order journaled this recently and not (yet) found on the exchange may still be
    in flight (Binance accepts a request up to its ``recvWindow``, 5 s by default, after it was
    signed), so it stays *unknown* and blocks its symbol instead of being called never-sent.
    """

    lease_wait_seconds: float = 30.0
    ambiguity_window_seconds: float = 15.0
    # A fill price further than this from the signal's mark is not believed (looked up instead).
    price_band_pct: float = 10.0
    # A book that differs from its exchange: adopt (the exchange is the truth, recorded) or halt.
    reconcile_policy: str = "adopt"
    # Requests a cycle keeps in flight at once (candles, account reads, orders of different
    # symbols); 1 runs everything one after another. All of them spend one request budget.
    io_workers: int = 16

    def __post_init__(self) -> None:
        require(
            type(self.io_workers) is int and 1 <= self.io_workers <= 64,
            "io_workers",
            f"must be an integer in [1, 64], got {self.io_workers!r}",
        )
        require(
            0 <= self.lease_wait_seconds <= 3600,
            "lease_wait_seconds",
            f"must be in [0, 3600], got {self.lease_wait_seconds}",
        )
        require(
            self.reconcile_policy in ("adopt", "halt"),
            "reconcile_policy",
            f"must be adopt or halt, got {self.reconcile_policy!r}",
        )
        require(
            0 < self.price_band_pct <= 100,
            "price_band_pct",
            f"must be a percentage in (0, 100], got {self.price_band_pct}",
        )
        require(
            0 <= self.ambiguity_window_seconds <= 3600,
            "ambiguity_window_seconds",
            f"must be in [0, 3600], got {self.ambiguity_window_seconds}",
        )
