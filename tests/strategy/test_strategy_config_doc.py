"""Every example in docs/strategy_config.md loads, and its baseline example is the shipped file."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from otonom_trader.strategy.model import load_strategy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "strategy_config.md"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("example", EXAMPLES)
def test_doc_example_loads(tmp_path: Path, example: str) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(example)

    assert load_strategy(path).entry


def test_doc_baseline_example_has_the_shipped_rules(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(EXAMPLES[0])
    shipped = load_strategy(ROOT / "strategies" / "baseline_v1.0.yaml")

    assert replace(load_strategy(path), path=shipped.path) == shipped


def test_doc_parameter_example_reads_its_parameters(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(next(e for e in EXAMPLES if "parameters:" in e))

    strategy = load_strategy(path, {"fast": 8})

    assert strategy.entry[0].params == {"fast": 8, "slow": 30}
    assert strategy.risk.stop_loss_pct == 5
