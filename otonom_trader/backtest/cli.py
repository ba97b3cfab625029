"""``otonom-trader backtest``: replay a strategy over history; sweep its parameters.

    otonom-trader backtest --strategy strategies/baseline_v1.0.yaml \\
        --from 2025-01-01 --to 2025-04-01 --out backtest-out
    otonom-trader backtest --strategy S.yaml --csv candles.csv --out DIR --walk-forward 3 \\
        --sweep strategy.params.fast=8,12 --sort sharpe
    otonom-trader backtest --strategy S.yaml --out DIR \
        -m 'strategy.params.fast=range(8,20,4)' 'paper.slippage_bps=choice(5,15)'
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from otonom_trader.config.errors import ConfigError


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``backtest`` command."""
    parser = commands.add_parser(
        "backtest",
        help="replay a strategy over history (paper fills, fees, guardrails); sweep parameters",
        description="Run a strategy over historical candles through the daemon's own decision, "
        "sizing, fill, fee and guardrail code; write trades.csv, equity.csv, metrics.json and "
        "report.png into --out.",
    )
    parser.add_argument("--strategy", required=True, metavar="PATH", help="strategy YAML")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--csv", default=None, metavar="PATH", help="OHLCV CSV (timestamp,open,...,symbol)"
    )
    source.add_argument(
        "--store", action="store_true", help="read the local historical store ($OTONOM_HOME)"
    )
    parser.add_argument(
        "--from", dest="since", metavar="ISO", default=None, help="span start, ISO (UTC)"
    )
    parser.add_argument(
        "--to", dest="until", metavar="ISO", default=None, help="span end, ISO (UTC)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter the strategy declares (repeatable)",
    )
    parser.add_argument(
        "--walk-forward",
        type=int,
        default=None,
        metavar="N",
        help="N anchored folds: metrics.json gains out_of_sample numbers",
    )
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="sweep strategy.params.NAME or a config key over values (repeatable)",
    )
    parser.add_argument(
        "-m",
        "--multirun",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUES",
        help="sweep in Hydra's override grammar: KEY=1,2,3, KEY=range(a,b,step), KEY=choice(a,b)",
    )
    parser.add_argument(
        "--sort", default="sharpe", metavar="METRIC", help="metric the sweep table is sorted by"
    )
    parser.set_defaults(func=_backtest)


def _backtest(args: argparse.Namespace) -> int:
    from otonom_trader.backtest.history import parse_when
    from otonom_trader.backtest.runner import BacktestRequest, parse_param

    strategy = Path(args.strategy)
    if not strategy.is_file():
        raise ConfigError(f"strategy file not found: {strategy}", key="--strategy")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory", key="--out")
    request = BacktestRequest(
        strategy_path=strategy,
        overrides=tuple(args.overrides),
        params=dict(parse_param(p) for p in args.param),
        csv_path=Path(args.csv) if args.csv else None,
        use_store=args.store,
        since=parse_when(args.since, "--from"),
        until=parse_when(args.until, "--to"),
        walk_forward=args.walk_forward,
    )
    console = Console(width=80)
    if args.sweep or args.multirun:
        return _sweep(request, args, out, console)
    from otonom_trader.backtest.report import print_metrics, write_outputs
    from otonom_trader.backtest.runner import run_backtest

    run = run_backtest(request)
    written = write_outputs(run.result, run.metrics, out)
    print_metrics(run.metrics, written, console)
    return 0


def _sweep(request: Any, args: argparse.Namespace, out: Path, console: Console) -> int:
    from otonom_trader.backtest.report import write_outputs
    from otonom_trader.backtest.sweep import (
        check_axes,
        parse_multirun,
        parse_sweep,
        run_sweep,
        sweep_table,
        walk_forward_choice,
        write_sweep_csv,
    )

    axes = [parse_sweep(item) for item in args.sweep] + parse_multirun(args.multirun)
    check_axes(axes)
    rows = run_sweep(request, axes, args.sort)
    out.mkdir(parents=True, exist_ok=True)
    for n, row in enumerate(rows, start=1):
        write_outputs(row.run.result, row.run.metrics, out / f"run-{n:03d}")
    write_sweep_csv(rows, out / "sweep.csv")
    console.print(sweep_table(rows, args.sort))
    choice = walk_forward_choice(rows, args.sort)
    if choice is not None:
        console.print(
            f"walk-forward choice (best in-sample {args.sort} per fold): out-of-sample return "
            f"{choice['out_of_sample_return'] * 100:.1f} % · picks: {'; '.join(choice['picks'])}"
        )
    console.print(f"runs in {out}/run-NNN, table in {out / 'sweep.csv'}")
    return 0
