"""One backtest from its inputs: compose the configuration, load the strategy with its
parameters, load and check the history, replay it, compute the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from otonom_trader.backtest.history import load_history
from otonom_trader.backtest.metrics import run_metrics, walk_forward_windows
from otonom_trader.backtest.simulator import Backtest, BacktestResult
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.config.validation import check_values, compose_validated
from otonom_trader.market.candles import Candle
from otonom_trader.strategy.model import Strategy, load_strategy

PARAM_PREFIX = "strategy.params."
MAX_FOLDS = 50


@dataclass(frozen=True)
class BacktestRequest:
    """What one backtest runs: the strategy, its parameters, the configuration and the data."""

    strategy_path: Path
    overrides: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    csv_path: Path | None = None
    use_store: bool = False
    since: datetime | None = None
    until: datetime | None = None
    walk_forward: int | None = None


@dataclass
class BacktestRun:
    """A finished backtest: its result, its metrics and the windows of a walk-forward split."""

    request: BacktestRequest
    result: BacktestResult
    metrics: dict[str, Any]
    in_sample: list[tuple[int, int]] | None = None
    out_of_sample: list[tuple[int, int]] | None = None


def parse_param(item: str) -> tuple[str, str]:
    """``fast=8`` or ``strategy.params.fast=8`` → ``("fast", "8")``."""
    key, sep, value = item.partition("=")
    key = key.strip().removeprefix(PARAM_PREFIX)
    if not sep or not key or not value.strip():
        raise ConfigError(f"{item!r}: expected NAME=VALUE", key="--param")
    return key, value.strip()


def prepare(request: BacktestRequest) -> tuple[AppConfig, Strategy]:
    """The composed configuration and the strategy with its parameters (validated)."""
    if request.walk_forward is not None and not 1 <= request.walk_forward <= MAX_FOLDS:
        raise ConfigError(
            f"must be in 1..{MAX_FOLDS} folds, got {request.walk_forward}", key="--walk-forward"
        )
    _raw, app = compose_validated(list(request.overrides))
    check_values(app)
    strategy = load_strategy(request.strategy_path, request.params)
    return app, strategy


def run_backtest(
    request: BacktestRequest, history: dict[str, list[Candle]] | None = None
) -> BacktestRun:
    """Run one backtest (``history`` given: reuse candles a sweep already loaded)."""
    app, strategy = prepare(request)
    if history is None:
        history = load_history(
            strategy,
            app.data,
            csv_path=request.csv_path,
            use_store=request.use_store,
            since=request.since,
            until=request.until,
        )
    result = Backtest(app, strategy, history, start=request.since, end=request.until).run()
    if not result.equity:
        raise ConfigError("no candle to trade between --from and --to", key="--from")
    in_sample = out_of_sample = None
    if request.walk_forward is not None:
        if len(result.equity) < 2 * (request.walk_forward + 1):
            raise ConfigError(
                f"{len(result.equity)} bars cannot be split into {request.walk_forward + 1} "
                "walk-forward segments",
                key="--walk-forward",
            )
        in_sample, out_of_sample = walk_forward_windows(len(result.equity), request.walk_forward)
    declared = dict(load_strategy(request.strategy_path).parameters) if request.params else None
    metrics = run_metrics(result, request.strategy_path, out_of_sample, declared)
    return BacktestRun(request, result, metrics, in_sample, out_of_sample)
