"""The fleet file: every bot composed by the real Hydra composition; a mistake is one line
naming the file, the bot and the key, and the command exits 2 before contacting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from otonom_trader.cli import main
from otonom_trader.config.errors import ConfigError
from otonom_trader.fleet.file import fleet_path, load_fleet


def test_the_example_fleet_has_six_trading_bots_on_two_accounts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "k" * 64)  # the workers' key (never in the file)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "s" * 64)
    fleet = load_fleet("example")

    trading = [b for b in fleet.bots if "mode=shadow" in b.overrides]
    assert len(trading) >= 6
    assert len({b.account_id for b in trading}) == 2
    assert {o for b in fleet.bots for o in b.overrides if o.startswith("mode=")} == {
        "mode=shadow",
        "mode=paper",
    }
    for bot in fleet.bots:
        assert f"bot.name={bot.name}" in bot.overrides  # the loader names the bot
        assert "bot.shared_venue_budget=true" in bot.overrides  # the file's shared budget
        assert bot.timeframe == "1h"
    assert fleet.source == fleet_path("example")


def _fleet(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "bots:\n  - name: a1\n    overrides: [mode=shadow, guardrails.nope=1]\n",
            "bot 'a1': guardrails.nope: Key 'nope' not in 'GuardrailConfig'",
        ),
        (
            "bots:\n  - name: a1\n    overrides: [broker=nosuch]\n",
            "bot 'a1': broker: no option 'nosuch'",
        ),
        (
            "bots:\n  - name: a1\n    overrides: [paper.slippage_bps=99999]\n",
            "bot 'a1': paper.slippage_bps: must be in [0, 1000] bps",
        ),
        ("bots:\n  - name: a1\n  - name: a1\n", "bots[1].name: two bots are named 'a1'"),
        ("bots:\n  - name: Bad Name\n", "bots[0].name: must be 1-24 lower-case letters"),
        ("bots:\n  - name: a1\n    colour: red\n", "bots[0].colour: Key 'colour' not in"),
        ('bots:\n  - name: a1\n    schedule: "61 * * *"\n', "bots[0].schedule: must be a cron"),
        ("bots:\n  - name: a1\n    work_queue: host a\n", "bots[0].work_queue: must be 1-64"),
        (
            "bots:\n  - name: a1\n    overrides: [bot.name=b2]\n",
            "bot 'a1': bot.name is set by the fleet file",
        ),
        ("bots: []\n", "bots: the fleet has no bot"),
        ("bots: [\n", "not a YAML mapping"),
    ],
)
def test_a_bad_fleet_file_is_one_line_naming_where(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _fleet(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_fleet(str(path))
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_fleet_deploy_refuses_a_bad_file_with_status_2_before_any_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An address nothing listens on: the command must not get as far as trying it.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    path = _fleet(tmp_path, "bots:\n  - name: a1\n    overrides: [mode=shadw]\n")

    assert main(["fleet", "deploy", "--fleet", str(path), "--yes"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"config error: {path}: bot 'a1': mode: no option 'shadw'")


def test_fleet_commands_need_a_long_lived_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # even inside the harness
        assert main(["fleet", "status", "--fleet", "example"]) == 2
    assert "PREFECT_API_URL: not set" in capsys.readouterr().err


def test_a_missing_fleet_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "deploy", "--fleet", "nosuch"]) == 2
    assert "no such fleet file" in capsys.readouterr().err


def test_the_account_a_bot_is_tagged_with_is_the_one_its_cycle_trades(tmp_path: Path) -> None:
    from sqlalchemy import select

    from otonom_trader.daemon import TradingDaemon
    from otonom_trader.persistence.models import DaemonRun

    overrides = [
        "mode=shadow",
        "broker=sim",
        "broker.label=acct-z",
        "bot.capital=2000",
        "alerts.enabled=false",
    ]
    path = _fleet(tmp_path, f"bots:\n  - name: z1\n    overrides: [{', '.join(overrides)}]\n")
    (bot,) = load_fleet(str(path)).bots

    daemon = TradingDaemon(overrides=list(bot.overrides))
    try:
        daemon.run_once()
        with daemon.context.db.session() as session:
            ran = session.scalars(select(DaemonRun.account_id)).one()
    finally:
        daemon.close()
    assert ran == bot.account_id
    assert bot.account_id.startswith("sim-")
