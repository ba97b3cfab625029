"""Parameter sweeps: every combination of the swept values is one backtest, and the results
are one table sorted by a chosen metric.

``--sweep strategy.params.fast=8,12,16`` sets a strategy parameter; any other key
(``paper.slippage_bps=5,10``) is a configuration override. ``-m``/``--multirun`` takes the same
keys in Hydra's own override grammar (``key=1,2,3``, ``key=range(5,20,5)``,
``key=choice(a,b)``), parsed by Hydra's ``OverridesParser``. With ``--walk-forward N`` the table
shows out-of-sample numbers, and the walk-forward choice — on each fold, the combination that was
best *in-sample*, measured on the fold's out-of-sample window — says what choosing by backtest
would really have earned, which the best row of the table (chosen after the fact) does not.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.table import Table

from otonom_trader.backtest.metrics import compute_metrics
from otonom_trader.backtest.runner import (
    PARAM_PREFIX,
    BacktestRequest,
    BacktestRun,
    prepare,
    run_backtest,
)
from otonom_trader.config.errors import ConfigError

SORTABLE = (
    "sharpe",
    "sortino",
    "total_return",
    "cagr",
    "max_drawdown",
    "profit_factor",
    "win_rate",
    "trades",
)
#: Metrics where smaller is better.
ASCENDING = {"max_drawdown"}
MAX_COMBINATIONS = 200


@dataclass(frozen=True)
class SweepAxis:
    """One swept key and its values."""

    key: str
    values: tuple[str, ...]


def parse_sweep(item: str) -> SweepAxis:
    """``strategy.params.fast=8,12`` → ``SweepAxis("strategy.params.fast", ("8", "12"))``."""
    key, sep, values = item.partition("=")
    options = tuple(v.strip() for v in values.split(",") if v.strip())
    if not sep or not key.strip() or not options:
        raise ConfigError(f"{item!r}: expected KEY=V1,V2,...", key="--sweep")
    return SweepAxis(key.strip(), options)


def parse_multirun(items: list[str]) -> list[SweepAxis]:
    """Hydra multirun overrides → axes, with Hydra's own parser: ``fast=8,12`` and
    ``fast=choice(8,12)`` list values, ``fast=range(4,20,4)`` expands as Hydra expands it (end
    excluded), ``fast=8`` is one value. Sweeps that cannot be enumerated (``interval``), pick
    config-group options (``glob``) or add/delete keys (``+key``, ``~key``) are refused."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType, ValueType
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    axes: list[SweepAxis] = []
    for item in items:
        try:
            (override,) = parser.parse_overrides([item])
        except HydraException as exc:
            reason = str(exc).splitlines()[0]
            raise ConfigError(f"{item!r}: {reason}", key="--multirun") from None
        if override.type is not OverrideType.CHANGE or override.package is not None:
            raise ConfigError(
                f"{item!r}: only KEY=VALUES overrides sweep (no +, ~ or @package)",
                key="--multirun",
            )
        if override.value_type in (ValueType.INTERVAL_SWEEP, ValueType.GLOB_CHOICE_SWEEP):
            raise ConfigError(
                f"{item!r}: interval() and glob() cannot be listed as runs; use range() or "
                "choice()",
                key="--multirun",
            )
        if override.is_discrete_sweep():
            values = tuple(override.sweep_string_iterator())
        else:
            values = (override.get_value_element_as_str(),)
        if not values:
            raise ConfigError(f"{item!r}: the sweep has no values", key="--multirun")
        axes.append(SweepAxis(override.key_or_group, values))
    return axes


def check_axes(axes: list[SweepAxis]) -> None:
    """Refuse a key swept twice (by ``--sweep`` and ``-m`` together, or twice in one)."""
    keys = [a.key.removeprefix(PARAM_PREFIX) for a in axes]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ConfigError(f"swept more than once: {', '.join(repeated)}", key="--multirun")


def combinations(axes: list[SweepAxis]) -> list[dict[str, str]]:
    """Every combination of the axes' values, in order."""
    combos = [
        dict(zip([a.key for a in axes], values, strict=True))
        for values in itertools.product(*(a.values for a in axes))
    ]
    if len(combos) > MAX_COMBINATIONS:
        raise ConfigError(
            f"{len(combos)} combinations; a sweep runs at most {MAX_COMBINATIONS}", key="--sweep"
        )
    return combos


def request_for(base: BacktestRequest, combo: dict[str, str]) -> BacktestRequest:
    """``base`` with one combination's parameters and overrides applied."""
    params = dict(base.params)
    overrides = list(base.overrides)
    for key, value in combo.items():
        if key.startswith(PARAM_PREFIX):
            params[key.removeprefix(PARAM_PREFIX)] = value
        else:
            overrides.append(f"{key}={value}")
    return replace(base, params=params, overrides=tuple(overrides))


@dataclass
class SweepRow:
    """One combination's run and the numbers the table shows."""

    combo: dict[str, str]
    run: BacktestRun
    shown: dict[str, Any]
    in_sample_by_fold: list[dict[str, Any]]
    out_of_sample_by_fold: list[dict[str, Any]]


def run_sweep(base: BacktestRequest, axes: list[SweepAxis], sort: str) -> list[SweepRow]:
    """Run every combination (each validated before any runs); rows sorted by ``sort``."""
    if sort not in SORTABLE:
        raise ConfigError(f"must be one of {', '.join(SORTABLE)}, got {sort!r}", key="--sort")
    requests = [(c, request_for(base, c)) for c in combinations(axes)]
    for _combo, request in requests:
        prepare(request)  # a bad value fails before the first run
    rows: list[SweepRow] = []
    for combo, request in requests:
        run = run_backtest(request)
        shown = run.metrics.get("out_of_sample") or run.metrics
        folds_in = [compute_metrics(run.result, [w]) for w in run.in_sample or []]
        folds_out = [compute_metrics(run.result, [w]) for w in run.out_of_sample or []]
        rows.append(SweepRow(combo, run, shown, folds_in, folds_out))
    rows.sort(key=lambda r: _sort_key(r.shown.get(sort), sort))
    return rows


def _sort_key(value: Any, metric: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf  # unknown numbers last
    return float(value) if metric in ASCENDING else -float(value)


def walk_forward_choice(rows: list[SweepRow], sort: str) -> dict[str, Any] | None:
    """Per fold, the combination best in-sample and its out-of-sample return; chained."""
    if not rows or not rows[0].out_of_sample_by_fold:
        return None
    folds = len(rows[0].out_of_sample_by_fold)
    chained = 1.0
    picks: list[str] = []
    for k in range(folds):
        best = min(rows, key=lambda r: _sort_key(r.in_sample_by_fold[k].get(sort), sort))
        chained *= 1 + (best.out_of_sample_by_fold[k].get("total_return") or 0.0)
        picks.append(describe(best.combo))
    return {"out_of_sample_return": chained - 1, "picks": picks}


def describe(combo: dict[str, str]) -> str:
    """``fast=8 slippage_bps=5``: each key's last part and its value."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in combo.items())


def sweep_table(rows: list[SweepRow], sort: str) -> Table:
    """One row per combination, sorted; out-of-sample numbers when walk-forward was used."""
    oos = bool(rows and rows[0].run.out_of_sample)
    title = f"sweep: {len(rows)} runs sorted by {sort}" + (" (out-of-sample)" if oos else "")
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("values")
    for column in ("sharpe", "return", "max DD", "trades", "PF"):
        table.add_column(column, justify="right")
    for n, row in enumerate(rows, start=1):
        m = row.shown
        table.add_row(
            str(n),
            describe(row.combo),
            _num(m.get("sharpe")),
            _pct(m.get("total_return")),
            _pct(m.get("max_drawdown")),
            str(m.get("trades") or 0),
            _num(m.get("profit_factor")),
        )
    return table


def write_sweep_csv(rows: list[SweepRow], path: Path) -> None:
    """Every row with its whole-span and out-of-sample metrics."""
    keys = ("sharpe", "total_return", "max_drawdown", "trades", "profit_factor", "win_rate")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "values", *keys, *(f"oos_{k}" for k in keys), "out_dir"])
        for n, row in enumerate(rows, start=1):
            oos = row.run.metrics.get("out_of_sample") or {}
            writer.writerow(
                [
                    n,
                    describe(row.combo),
                    *(row.run.metrics.get(k) for k in keys),
                    *(oos.get(k) for k in keys),
                    f"run-{n:03d}",
                ]
            )


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"
