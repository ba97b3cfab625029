"""``otonom-trader backtest -m``: sweeps in Hydra's own override grammar (multirun)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from otonom_trader.backtest.sweep import SweepAxis, parse_multirun
from otonom_trader.cli import main

from .conftest import BASELINE, BTC_1H, strategy_on
from .test_backtest_cli import PARAMETRIZED


def _sweep_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_hydra_grammar_lists_ranges_choices_and_fixed_values() -> None:
    axes = parse_multirun(
        [
            "strategy.params.fast=5,12",
            "strategy.params.slow=range(20,41,10)",
            "paper.slippage_bps=choice(0,20)",
            "paper.taker_fee_bps=7.5",
        ]
    )

    assert axes == [
        SweepAxis("strategy.params.fast", ("5", "12")),
        SweepAxis("strategy.params.slow", ("20", "30", "40")),
        SweepAxis("paper.slippage_bps", ("0", "20")),
        SweepAxis("paper.taker_fee_bps", ("7.5",)),
    ]


def test_multirun_runs_each_combination_as_the_sweep_flag_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = tmp_path / "ema_sweep.yaml"
    strategy.write_text(PARAMETRIZED)
    common = ["backtest", "--strategy", str(strategy), "--csv", str(BTC_1H), "--walk-forward", "2"]

    status = main(
        [
            *common,
            "--out",
            str(tmp_path / "multirun"),
            "--sort",
            "total_return",
            "-m",
            "strategy.params.fast=range(5,13,7)",
            "paper.slippage_bps=choice(0,20)",
        ]
    )
    shown = capsys.readouterr().out
    swept = main(
        [
            *common,
            "--out",
            str(tmp_path / "sweep"),
            "--sort",
            "total_return",
            "--sweep",
            "strategy.params.fast=5,12",
            "--sweep",
            "paper.slippage_bps=0,20",
        ]
    )

    assert status == swept == 0
    rows = _sweep_rows(tmp_path / "multirun" / "sweep.csv")
    assert [r["values"] for r in rows].count("fast=12 slippage_bps=20") == 1
    assert len(rows) == 4
    assert rows == _sweep_rows(tmp_path / "sweep" / "sweep.csv")  # the same runs, same order
    assert "sweep: 4 runs sorted by total_return (out-of-sample)" in shown


@pytest.mark.parametrize(
    ("multirun", "message"),
    [
        (["paper.slippage_bps=interval(0,20)"], "interval() and glob() cannot be listed"),
        (["paper.slippage_bps=range(5"], "'paper.slippage_bps=range(5': "),
        (["+paper.extra=1,2"], "only KEY=VALUES overrides sweep"),
        (["paper.slippage_bps=range(5,5)"], "the sweep has no values"),
        (["paper.slippage_bps=1,2", "paper.slippage_bps=3"], "swept more than once"),
        (["paper.slippage_bps=-1,2"], "slippage_bps"),
    ],
)
def test_a_multirun_mistake_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], multirun: list[str], message: str
) -> None:
    strategy = strategy_on(BASELINE, tmp_path, "BTC/USDT")
    out = tmp_path / "out"

    status = main(
        ["backtest", "--strategy", str(strategy), "--csv", str(BTC_1H), "--out", str(out)]
        + ["-m", *multirun]
    )

    err = capsys.readouterr().err
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
