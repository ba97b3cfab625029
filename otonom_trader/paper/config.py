"""Paper book configuration: the modelled fill of the paper trader."""

from __future__ import annotations

from dataclasses import dataclass

from otonom_trader.config.errors import require


@dataclass
class PaperConfig:
    """Starting cash, slippage against the last close (bps) and fees (bps of notional)."""

    initial_cash: float = 10_000.0
    slippage_bps: float = 5.0
    taker_fee_bps: float = 10.0
    maker_fee_bps: float = 10.0

    def __post_init__(self) -> None:
        require(self.initial_cash > 0, "initial_cash", f"must be positive, got {self.initial_cash}")
        for name in ("slippage_bps", "taker_fee_bps", "maker_fee_bps"):
            value = getattr(self, name)
            require(0 <= value <= 1000, name, f"must be in [0, 1000] bps, got {value}")
