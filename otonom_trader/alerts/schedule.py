"""The daemon's schedule, as the alerts see it: when "the daemon has not run" is worth an alert.

A cycle runs once per candle of the strategy's timeframe (``otonom-trader serve`` schedules it
shortly after each close; the shipped deployments run hourly for the 1h strategy). A gap of one
cycle is normal; the alert fires once **two** cycles were missed and the second is half a cycle
overdue, so a cycle that merely runs late never pages anyone::

    timeframe 1h  → 150 minutes        timeframe 15m → 37.5 minutes
    timeframe 4h  → 600 minutes        timeframe 1d  → 3,600 minutes

An explicit ``alerts.max_gap_minutes`` always wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otonom_trader.alerts.config import AlertsConfig

#: Cycles that may be missed before the alert: one missed cycle is a blip, two are a stop.
MISSED_CYCLES = 2
#: Grace on top of the missed cycles, as a fraction of one cycle (a late run is not a stop).
GRACE_CYCLES = 0.5
#: The limit when no strategy timeframe is known (the guide's ``AlertEngine`` on its own): the
#: shipped strategy's 1h timeframe.
FALLBACK_GAP_MINUTES = (MISSED_CYCLES + GRACE_CYCLES) * 60.0


#: The largest limit the configuration accepts (``alerts.max_gap_minutes``: a week).
LARGEST_GAP_MINUTES = 7 * 24 * 60.0


def gap_minutes_for(timeframe: str) -> float:
    """The "daemon has not run" limit, in minutes, for cycles on ``timeframe`` (``"1h"``)."""
    from otonom_trader.market.candles import timeframe_seconds

    return gap_minutes_every(timeframe_seconds(timeframe))


def gap_minutes_every(cycle_seconds: float) -> float:
    """The limit, in minutes, for a cycle every ``cycle_seconds`` (at most a week)."""
    return min((MISSED_CYCLES + GRACE_CYCLES) * cycle_seconds / 60, LARGEST_GAP_MINUTES)


def apply_schedule_default(alerts: AlertsConfig, timeframe: str) -> None:
    """Set ``alerts.max_gap_minutes`` from ``timeframe`` unless the user set it."""
    if alerts.max_gap_minutes is None:
        alerts.max_gap_minutes = gap_minutes_for(timeframe)


def strategy_timeframe(strategy_path: str) -> str:
    """The timeframe of the strategy file the configuration names (``strategy.path``).

    Raises ``ConfigError`` (a ``StrategyError``) naming the file when it cannot be read."""
    from otonom_trader.config.errors import ConfigError
    from otonom_trader.config.validation import resolve_project_path
    from otonom_trader.strategy.model import load_strategy

    path = resolve_project_path(strategy_path)
    if not path.exists():
        raise ConfigError(f"strategy file not found: {path}", key="strategy.path")
    return load_strategy(path).timeframe
