"""``PromotionConfig``: the limits of each gate a strategy version passes on its way to LIVE.

Composed from ``conf/promotion/`` like every other group, so ``-o promotion.paper.min_days=3``
works on every command. Durations are in days, spans in days of history, slippage in basis points
(positive = worse than the signal price), fractions as fractions (0.25 = 25 %).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otonom_trader.config.errors import require


def _non_negative(value: float, name: str) -> None:
    require(value >= 0, name, f"must not be negative, got {value}")


def _fraction(value: float, name: str) -> None:
    require(0 <= value <= 1, name, f"must be a fraction in [0, 1], got {value}")


@dataclass
class ResearchGateConfig:
    """research → paper: a backtest (its ``metrics.json``) long enough, active enough, not too
    deep in drawdown, and profitable out of sample."""

    min_span_days: float = 365.0
    min_trades: int = 30
    max_drawdown: float = 0.25  # a positive fraction of the peak (0.25 = 25 %)
    min_oos_profit_factor: float = 1.1

    def __post_init__(self) -> None:
        _non_negative(self.min_span_days, "min_span_days")
        require(self.min_trades >= 0, "min_trades", f"must not be negative, got {self.min_trades}")
        _fraction(self.max_drawdown, "max_drawdown")
        _non_negative(self.min_oos_profit_factor, "min_oos_profit_factor")


@dataclass
class PaperGateConfig:
    """paper → shadow: PAPER cycles of this version spanning ``min_days`` without a failed run."""

    min_days: float = 14.0
    min_runs: int = 1

    def __post_init__(self) -> None:
        _non_negative(self.min_days, "min_days")
        require(self.min_runs >= 1, "min_runs", f"must be at least 1, got {self.min_runs}")


@dataclass
class ShadowGateConfig:
    """shadow → live: SHADOW on a testnet account for ``min_days``, measured on the shadow
    ledger (the broker leg against the paper leg), plus the operational checks."""

    min_days: float = 30.0
    min_pairs: int = 10
    min_fill_rate: float = 0.95  # broker legs filled / broker legs
    max_mean_slippage_bps: float = 10.0
    max_worst_slippage_bps: float = 50.0
    # |broker PnL − paper PnL| over the window, as a % of the paper book's opening equity.
    max_pnl_divergence_pct: float = 1.0
    alert_test_within_days: float = 30.0  # a test alert delivered at most this long ago

    def __post_init__(self) -> None:
        _non_negative(self.min_days, "min_days")
        require(self.min_pairs >= 1, "min_pairs", f"must be at least 1, got {self.min_pairs}")
        _fraction(self.min_fill_rate, "min_fill_rate")
        _non_negative(self.max_mean_slippage_bps, "max_mean_slippage_bps")
        _non_negative(self.max_worst_slippage_bps, "max_worst_slippage_bps")
        _non_negative(self.max_pnl_divergence_pct, "max_pnl_divergence_pct")
        require(
            self.alert_test_within_days > 0,
            "alert_test_within_days",
            f"must be positive, got {self.alert_test_within_days}",
        )


@dataclass
class LiveStartConfig:
    """The first period of LIVE on a production account: every position is capped."""

    first_period_days: float = 14.0
    first_period_max_position_quote: float = 100.0  # quote currency (USDT) per position

    def __post_init__(self) -> None:
        _non_negative(self.first_period_days, "first_period_days")
        require(
            self.first_period_max_position_quote > 0,
            "first_period_max_position_quote",
            f"must be positive, got {self.first_period_max_position_quote}",
        )


@dataclass
class PromotionConfig:
    """The gates between research, paper, shadow and live, and the capped start of LIVE."""

    research: ResearchGateConfig = field(default_factory=ResearchGateConfig)
    paper: PaperGateConfig = field(default_factory=PaperGateConfig)
    shadow: ShadowGateConfig = field(default_factory=ShadowGateConfig)
    live: LiveStartConfig = field(default_factory=LiveStartConfig)
