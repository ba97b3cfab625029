"""Named strategy parameters: declared once, referenced as ``$name``, set by overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.strategy.model import StrategyError, load_strategy, parse_strategy

RULES = {
    "name": "p",
    "version": "1.0",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "parameters": {"fast": 12, "slow": 26, "stop": 4},
    "entry": [{"indicator": "ema_cross", "fast": "$fast", "slow": "$slow", "direction": "up"}],
    "exit": [{"indicator": "ema_cross", "fast": "$fast", "slow": "$slow", "direction": "down"}],
    "sizing": {"mode": "pct_equity", "value": 10},
    "risk": {"stop_loss_pct": "$stop"},
}


def test_references_take_the_declared_values() -> None:
    strategy = parse_strategy(RULES, "p.yaml")

    assert strategy.entry[0].params == {"fast": 12, "slow": 26, "direction": "up"}
    assert strategy.risk.stop_loss_pct == 4
    assert dict(strategy.parameters) == {"fast": 12, "slow": 26, "stop": 4}


def test_an_override_sets_a_parameter_and_is_validated_like_the_value_itself() -> None:
    strategy = parse_strategy(RULES, "p.yaml", {"fast": "8", "stop": 2.5})

    assert strategy.entry[0].params["fast"] == 8
    assert strategy.exit[0].params["fast"] == 8
    assert strategy.risk.stop_loss_pct == 2.5
    with pytest.raises(StrategyError, match=r"entry\[0\]\.fast: must be smaller than slow"):
        parse_strategy(RULES, "p.yaml", {"fast": 30})


@pytest.mark.parametrize(
    ("overrides", "change", "message"),
    [
        ({"period": 3}, {}, r"parameters\.period: is not a declared parameter"),
        ({"fast": "x"}, {}, r"parameters\.fast: must be a number, got 'x'"),
        ({}, {"parameters": [1]}, r"parameters: must be a mapping"),
        ({}, {"parameters": {"fast": "twelve"}}, r"parameters\.fast: must be a number"),
        (
            {},
            {"exit": [{"indicator": "rsi", "period": "$length", "above": 70}]},
            r"exit\[0\]\.period: '\$length' names no declared parameter",
        ),
    ],
)
def test_parameter_mistakes_name_the_file_and_key(
    overrides: dict[str, object], change: dict[str, object], message: str
) -> None:
    with pytest.raises(StrategyError, match=message) as caught:
        parse_strategy({**RULES, **change}, "p.yaml", overrides)
    assert str(caught.value).startswith("p.yaml: ")


def test_strategy_files_without_parameters_keep_working(tmp_path: Path) -> None:
    baseline = load_strategy(PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml")

    assert baseline.parameters == ()
    assert baseline.entry[0].params["fast"] == 12
    with pytest.raises(StrategyError, match="not a declared parameter"):
        load_strategy(PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml", {"fast": 8})


def test_a_description_may_hold_a_dollar_sign() -> None:
    strategy = parse_strategy({**RULES, "description": "$5 a trade"}, "p.yaml")

    assert strategy.description == "$5 a trade"
