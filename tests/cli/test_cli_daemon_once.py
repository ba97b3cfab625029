"""The guide's CLI: ``python -m otonom_trader.cli daemon-once …`` on the library's code path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from otonom_trader.config.compose import PROJECT_ROOT

BASELINE = PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml"
ALWAYS_TRADE = PROJECT_ROOT / "tests" / "fixtures" / "always_buy_v1.0.yaml"


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OTONOM_HOME=str(cwd / "home"), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "otonom_trader.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = _cli(["--help"], tmp_path)

    assert result.returncode == 0
    for command in ("daemon-once", "shadow-report", "kill-switch", "drill", "alerts"):
        assert command in result.stdout


def test_daemon_once_paper_as_in_the_guide(tmp_path: Path) -> None:
    result = _cli(["daemon-once", "--strategy", str(BASELINE), "--mode", "paper"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "PAPER" in result.stdout and "paper" in result.stdout
    assert (tmp_path / "home" / "otonom.db").is_file()


def test_daemon_once_shadow_with_a_broker_config_file(tmp_path: Path) -> None:
    broker_yaml = tmp_path / "broker.yaml"
    broker_yaml.write_text("kind: sim\ntestnet: true\n")

    result = _cli(
        [
            "daemon-once",
            "--strategy",
            str(ALWAYS_TRADE),
            "--broker-config",
            str(broker_yaml),
            "--mode",
            "shadow",
            "-o",
            "alerts.enabled=false",
        ],
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "sim (simulated exchange)" in result.stdout
    assert "broker" in result.stdout and "filled" in result.stdout


def test_bad_strategy_file_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad_v1.yaml"
    bad.write_text(BASELINE.read_text().replace("indicator: rsi", "indicator: magic", 1))

    result = _cli(["daemon-once", "--strategy", str(bad), "--mode", "paper"], tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(bad) in lines[0] and "entry[1].indicator" in lines[0] and "magic" in lines[0]
    assert not (tmp_path / "home" / "otonom.db").exists()  # refused before anything was written


def test_missing_broker_config_is_one_line(tmp_path: Path) -> None:
    result = _cli(
        ["daemon-once", "--broker-config", "config/broker.yaml", "--mode", "shadow"], tmp_path
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "config error: broker_config: broker config file not found: config/broker.yaml"
    )
