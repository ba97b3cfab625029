"""Composition of conf/: every profile combination composes, every bad value is one clear line."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from otonom_trader.config.compose import CONFIG_DIR, PROJECT_ROOT, config_hash, load_config
from otonom_trader.config.errors import ConfigError
from otonom_trader.mode import ExecutionMode

MODES = ["paper", "shadow", "live"]
GUARDRAILS = ["conservative", "default", "aggressive", "off"]
BROKERS = sorted(p.stem for p in (CONFIG_DIR / "broker").glob("*.yaml"))


def test_default_config_is_paper_sim_synthetic_sqlite() -> None:
    _, app = load_config([])

    assert app.mode.execution_mode is ExecutionMode.PAPER
    assert app.broker.kind == "sim"
    assert app.data.source == "synthetic"
    assert app.db.url is None
    assert app.guardrails.max_daily_loss_pct == 5.0


@pytest.mark.parametrize(
    ("mode", "guardrails", "broker"), list(itertools.product(MODES, GUARDRAILS, BROKERS))
)
def test_every_mode_guardrail_broker_combination_composes(
    mode: str, guardrails: str, broker: str
) -> None:
    _, app = load_config([f"mode={mode}", f"guardrails={guardrails}", f"broker={broker}"])

    assert app.mode.name == mode
    assert app.broker.kind in {"sim", "binance", "bybit"}
    assert app.guardrails.enabled is (guardrails != "off")


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("guardrails.max_drawdown_pct=150", "guardrails.max_drawdown_pct", "percentage"),
        ("guardrails.max_daily_loss_pct=-1", "guardrails.max_daily_loss_pct", "percentage"),
        ("guardrails.max_consecutive_losses=0", "guardrails.max_consecutive_losses", "at least 1"),
        ("guardrails.max_drawdown_pct=abc", "guardrails.max_drawdown_pct", "Float"),
        ("guardrails.bogus=1", "guardrails.bogus", "not in"),
        ("+guardrails.bogus=1", "guardrails.bogus", "unknown key"),
        ("mode=turbo", "mode", "available: live, paper, shadow"),
        ("mode.name=turbo", "mode.name", "must be one of"),
        ("broker.sim.reject_probability=1.5", "broker.sim.reject_probability", "probability"),
        ("broker.timeout_ms=0", "broker.timeout_ms", "positive"),
        ("paper.slippage_bps=-3", "paper.slippage_bps", "bps"),
        ("alerts.drawdown_alert_pct=101", "alerts.drawdown_alert_pct", "percentage"),
        ("data.history_bars=1", "data.history_bars", "at least 2"),
        ("data=csv", "data.csv_path", "required"),
        ("db.busy_timeout_ms=-5", "db.busy_timeout_ms", "negative"),
    ],
)
def test_bad_value_fails_at_composition_with_one_line_naming_the_key(
    override: str, key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config([override])

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{key}:")
    assert fragment in message


def test_config_hash_is_stable_and_changes_with_overrides() -> None:
    a, _ = load_config([])
    b, _ = load_config([])
    c, _ = load_config(["guardrails=conservative"])

    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(c)


def test_every_yaml_in_conf_is_commented() -> None:
    for path in CONFIG_DIR.rglob("*.yaml"):
        assert any(line.lstrip().startswith("#") for line in path.read_text().splitlines()), path


def test_cfg_job_prints_composed_config_without_resolving_secrets(tmp_path: Path) -> None:
    env = {
        "BINANCE_TESTNET_API_KEY": "sEcReT-KEY-1234567890",
        "PATH": "/usr/bin:/bin",
        "OTONOM_HOME": str(tmp_path),
    }

    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "flows" / "daemon.py"),
            "--cfg",
            "job",
            "mode=shadow",
            "broker=binance_testnet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "name: shadow" in result.stdout
    assert "${oc.env:BINANCE_TESTNET_API_KEY,null}" in result.stdout
    assert "sEcReT" not in result.stdout + result.stderr
    assert not (tmp_path / "outputs").exists()


def test_cli_bad_override_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "flows" / "daemon.py"),
            "guardrails.max_drawdown_pct=250",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OTONOM_HOME": str(tmp_path)},
        timeout=120,
        cwd=tmp_path,
    )

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "guardrails.max_drawdown_pct" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "otonom.db").exists()


CONFIG_MODULES = (
    "otonom_trader.alerts.config",
    "otonom_trader.broker.config",
    "otonom_trader.execution.config",
    "otonom_trader.guardrails.config",
    "otonom_trader.market.config",
    "otonom_trader.paper.config",
    "otonom_trader.config.schema",
)


def _boolean_fields() -> list[tuple[type, str]]:
    """Every ``bool`` field of every config dataclass (found, not listed: a new one is covered)."""
    import dataclasses
    import importlib

    found = []
    for name in CONFIG_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if dataclasses.is_dataclass(value) and value.__module__ == name:
                assert isinstance(value, type)
                found += [(value, f.name) for f in dataclasses.fields(value) if f.type == "bool"]
    return found


def test_the_config_schemas_have_the_boolean_fields_the_guide_uses() -> None:
    names = {f"{cls.__name__}.{field}" for cls, field in _boolean_fields()}

    assert {"GuardrailConfig.enabled", "AlertsConfig.enabled", "BrokerConfig.testnet"} <= names
    assert len(names) >= 9


@pytest.mark.parametrize("value", ["false", "no", 1, None])
def test_every_boolean_field_built_in_python_refuses_anything_but_a_bool(value: object) -> None:
    for config_class, key in _boolean_fields():
        with pytest.raises(ConfigError) as refused:
            config_class(**{key: value})

        assert str(refused.value).startswith(f"{key}: must be true or false (a bool), got ")
        assert "\n" not in str(refused.value)


def test_the_guides_guardrail_config_with_a_string_is_refused() -> None:
    from otonom_trader.guardrails.config import GuardrailConfig

    with pytest.raises(ConfigError, match=r"^enabled: must be true or false \(a bool\), got str"):
        GuardrailConfig(enabled="false")  # type: ignore[arg-type]


def test_yaml_and_override_spellings_of_a_boolean_still_work() -> None:
    _, app = load_config(["guardrails.enabled=false", "alerts.enabled=no"])

    assert app.guardrails.enabled is False
    assert app.alerts.enabled is False
