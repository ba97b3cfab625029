"""Broker configuration: which venue executes orders, and the simulated exchange's fill model.

The same fields as the guide's ``broker.yaml`` (``kind``, ``api_key``, ``api_secret``,
``base_url``, ``testnet``). Secrets are never written here: Hydra's ``conf/broker/*.yaml`` read
them with ``${oc.env:…}`` and the fields are excluded from ``repr`` so they cannot reach a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf 2.3 needs typing generics

from otonom_trader.config.errors import require, require_booleans


@dataclass
class SimExchangeConfig:
    """Fill model of the in-process simulated exchange (``broker=sim``). All of it is seeded."""

    seed: int = 7
    initial_cash: float = 10_000.0
    latency_ms_mean: float = 120.0
    latency_ms_jitter: float = 80.0
    # Slippage against the last price: a base cost plus market impact that grows with size.
    slippage_bps_base: float = 2.0
    slippage_bps_per_10k_quote: float = 3.0
    partial_fill_probability: float = 0.15
    partial_fill_min_ratio: float = 0.4
    reject_probability: float = 0.03
    taker_fee_bps: float = 10.0
    maker_fee_bps: float = 10.0

    def __post_init__(self) -> None:
        require(self.initial_cash > 0, "initial_cash", f"must be positive, got {self.initial_cash}")
        for name in (
            "latency_ms_mean",
            "latency_ms_jitter",
            "slippage_bps_base",
            "slippage_bps_per_10k_quote",
            "taker_fee_bps",
            "maker_fee_bps",
        ):
            value = getattr(self, name)
            require(value >= 0, name, f"must not be negative, got {value}")
        for name in ("partial_fill_probability", "reject_probability"):
            value = getattr(self, name)
            require(0 <= value <= 1, name, f"must be a probability in [0, 1], got {value}")
        require(
            0 < self.partial_fill_min_ratio <= 1,
            "partial_fill_min_ratio",
            f"must be in (0, 1], got {self.partial_fill_min_ratio}",
        )


@dataclass
class BrokerConfig:
    """Which venue executes orders.

    ``kind`` is ``sim`` (the simulated exchange) or a ccxt exchange id (``binance``, ``bybit``,
    …). ``base_url`` points a ccxt exchange at another API host (a local exchange for drills and
    tests). ``testnet`` selects the exchange's sandbox. ``allow_withdraw_permission`` must be set
    to trade with a key that can withdraw funds (refused otherwise).
    """

    kind: str = "sim"
    # Names the account among several on one venue (part of the account id, never a secret).
    label: str = "main"
    testnet: bool = True
    api_key: Optional[str] = field(default=None, repr=False)  # noqa: UP045
    api_secret: Optional[str] = field(default=None, repr=False)  # noqa: UP045
    base_url: Optional[str] = None  # noqa: UP045
    timeout_ms: int = 10_000
    quote_asset: str = "USDT"
    allow_withdraw_permission: bool = False
    options: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006 - extra ccxt options
    sim: SimExchangeConfig = field(default_factory=SimExchangeConfig)

    def __post_init__(self) -> None:
        require_booleans(self)
        require(bool(self.kind), "kind", "must name a broker (sim, binance, bybit, ...)")
        require(
            bool(self.label) and len(self.label) <= 64,
            "label",
            f"must be 1-64 characters, got {self.label!r}",
        )
        require(self.timeout_ms > 0, "timeout_ms", f"must be positive, got {self.timeout_ms}")

    @property
    def is_production(self) -> bool:
        """True for a real exchange with real money: not sim, not testnet, not a local host."""
        if self.kind == "sim" or self.testnet:
            return False
        local = ("://127.", "://localhost", "://[::1]")
        return not (self.base_url and any(marker in self.base_url for marker in local))

    @property
    def display_name(self) -> str:
        """What every run prints: ``sim (simulated exchange)``, ``binance (testnet)`` …"""
        if self.kind == "sim":
            return "sim (simulated exchange)"
        where = "testnet" if self.testnet else "PRODUCTION"
        if self.base_url:
            where += f" @ {self.base_url}"
        return f"{self.kind} ({where})"
