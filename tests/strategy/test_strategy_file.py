"""Strategy files: the shipped baseline loads; every kind of mistake is one line naming the
file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from otonom_trader.config.errors import ConfigError
from otonom_trader.strategy import StrategyError, load_strategy

REPO = Path(__file__).resolve().parents[2]

VALID = {
    "name": "test",
    "version": "1.0",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "entry": [{"indicator": "sma_cross", "fast": 5, "slow": 20, "direction": "up"}],
    "exit": [{"indicator": "rsi", "period": 14, "above": 70}],
    "sizing": {"mode": "fixed_quote", "value": 100},
}


def _write(tmp_path: Path, data: object, name: str = "s_v1.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _error(path: Path) -> str:
    with pytest.raises(StrategyError) as info:
        load_strategy(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_baseline_when_loaded_then_has_the_documented_rules() -> None:
    strategy = load_strategy(REPO / "strategies" / "baseline_v1.0.yaml")

    assert (strategy.name, strategy.version, strategy.timeframe) == ("baseline", "1.0", "1h")
    assert strategy.symbols == ("BTC/USDT", "ETH/USDT")
    assert [c.indicator for c in strategy.entry] == ["ema_cross", "rsi"]
    assert (strategy.sizing.mode, strategy.sizing.value) == ("pct_equity", 10.0)
    assert strategy.sizing.max_position_quote == 2500.0
    assert (strategy.risk.stop_loss_pct, strategy.risk.take_profit_pct) == (4.0, 8.0)
    assert strategy.required_history == 28  # ema_cross slow 26 + 2


def test_strategy_error_is_a_config_error() -> None:
    assert issubclass(StrategyError, ConfigError)


def test_valid_file_when_exchange_spelling_then_symbols_unified(tmp_path: Path) -> None:
    strategy = load_strategy(_write(tmp_path, {**VALID, "symbols": ["ethusdt"]}))
    assert strategy.symbols == ("ETH/USDT",)
    assert strategy.risk.stop_loss_pct is None


def test_unknown_indicator_names_the_indicator_key(tmp_path: Path) -> None:
    data = {**VALID, "entry": [{"indicator": "macd", "fast": 1}]}
    message = _error(_write(tmp_path, data))
    assert "entry[0].indicator" in message and "'macd'" in message


REQUIRED = ["name", "version", "symbols", "timeframe", "entry", "exit", "sizing"]


@pytest.mark.parametrize("key", REQUIRED)
def test_missing_field_names_the_field(tmp_path: Path, key: str) -> None:
    data = {k: v for k, v in VALID.items() if k != key}
    message = _error(_write(tmp_path, data))
    assert f": {key}: is required" in message


def test_missing_indicator_parameter_names_it(tmp_path: Path) -> None:
    data = {**VALID, "entry": [{"indicator": "breakout", "lookback": 20}]}
    assert "entry[0].direction: is required" in _error(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sizing": {"mode": "pct_equity", "value": 150}}, "sizing.value"),
        ({"sizing": {"mode": "fixed_quote", "value": -5}}, "sizing.value"),
        ({"sizing": {"mode": "all_in", "value": 5}}, "sizing.mode"),
        ({"sizing": {"value": 5}}, "sizing.mode"),
        (
            {"sizing": {"mode": "fixed_quote", "value": 5, "max_position_quote": 0}},
            "sizing.max_position_quote",
        ),
        ({"sizing": {"mode": "fixed_quote", "value": "lots"}}, "sizing.value"),
        ({"risk": {"stop_loss_pct": 0}}, "risk.stop_loss_pct"),
        ({"risk": {"take_profit_pct": "ten"}}, "risk.take_profit_pct"),
        ({"timeframe": "1hour"}, "timeframe"),
        ({"symbols": ["BTC/USDT", "BTCUSDT"]}, "symbols"),
        ({"symbols": "BTC/USDT"}, "symbols"),
        ({"version": 1.1}, "version"),
        ({"entry": [{"indicator": "rsi", "period": 14, "below": 150}]}, "entry[0].below"),
        (
            {"entry": [{"indicator": "rsi", "period": 14, "below": 30, "above": 70}]},
            "entry[0].above",
        ),
        ({"entry": [{"indicator": "rsi", "period": 14}]}, "entry[0]"),
        ({"entry": [{"indicator": "rsi", "period": 2.5, "below": 30}]}, "entry[0].period"),
        (
            {"entry": [{"indicator": "ema_cross", "fast": 26, "slow": 12, "direction": "up"}]},
            "entry[0].fast",
        ),
        (
            {"entry": [{"indicator": "ema_cross", "fast": 5, "slow": 12, "direction": "sideways"}]},
            "entry[0].direction",
        ),
        (
            {"entry": [{"indicator": "breakout", "lookback": 0, "direction": "up"}]},
            "entry[0].lookback",
        ),
        ({"exit": []}, "exit"),
        ({"exit": ["rsi"]}, "exit[0]"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, change: dict[str, object], key: str) -> None:
    message = _error(_write(tmp_path, {**VALID, **change}))
    assert f": {key}: " in message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"stop_loss": 3}, "stop_loss"),
        ({"risk": {"stop_los_pct": 3}}, "risk.stop_los_pct"),
        ({"sizing": {"mode": "fixed_quote", "value": 5, "max": 9}}, "sizing.max"),
        (
            {"entry": [{"indicator": "rsi", "period": 14, "below": 30, "window": 3}]},
            "entry[0].window",
        ),
    ],
)
def test_unknown_key_names_the_key(tmp_path: Path, change: dict[str, object], key: str) -> None:
    message = _error(_write(tmp_path, {**VALID, **change}))
    assert f": {key}: " in message


def test_bad_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "name: x\nentry: [unclosed\nexit: []\n"))
    assert "not valid YAML at line" in message


def test_duplicate_key_names_the_key_and_line(tmp_path: Path) -> None:
    second_entry = "entry: [{indicator: rsi, period: 3, below: 9}]\n"
    text = yaml.safe_dump(VALID, sort_keys=False) + second_entry
    message = _error(_write(tmp_path, text))
    assert "entry: appears twice" in message and "line" in message


def test_empty_file_says_what_is_expected(tmp_path: Path) -> None:
    assert "expected a mapping" in _error(_write(tmp_path, ""))


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    _error(tmp_path / "nope.yaml")
