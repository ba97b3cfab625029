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

    def __post_init__(self) -> None:
        require(
            0 <= self.lease_wait_seconds <= 3600,
            "lease_wait_seconds",
            f"must be in [0, 3600], got {self.lease_wait_seconds}",
        )
        require(
            0 <= self.ambiguity_window_seconds <= 3600,
            "ambiguity_window_seconds",
            f"must be in [0, 3600], got {self.ambiguity_window_seconds}",
        )
