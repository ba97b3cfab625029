"""The watchdog: a stopped daemon is reported by the separately scheduled flow."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from alert_servers import BOT_TOKEN, CHAT_ID

from otonom_trader.alerts.watchdog import run_watchdog
from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.persistence import DaemonRun, Database, utc_now
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI

OVERRIDES = ["alerts=email_telegram", "alerts.email.enabled=false"]


@pytest.fixture
def stale_daemon(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> Database:
    """The default database ($OTONOM_HOME) with one run that finished 3 hours ago (the 1h
    strategy's schedule allows 150 minutes)."""
    monkeypatch.setenv("OTONOM_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("OTONOM_TELEGRAM_CHAT_ID", CHAT_ID)
    db = Database(None)
    finished = utc_now() - timedelta(hours=3)
    with db.session() as session:
        session.add(
            DaemonRun(
                run_id="last",
                started_at=finished - timedelta(seconds=30),
                finished_at=finished,
                status="succeeded",
                mode="paper",
                broker="sim",
                data_source="synthetic",
                config_hash="0" * 16,
                strategy_name="baseline",
                strategy_version="1.0",
            )
        )
    return db


def load_flow_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "watchdog_flow", PROJECT_ROOT / "flows" / "watchdog.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_watchdog_reports_a_stopped_daemon(
    stale_daemon: Database, telegram_api: TelegramBotAPI
) -> None:
    report = run_watchdog(OVERRIDES, utc_now())

    assert [a.event for a in report.health.alerts] == ["daemon_gap"]
    assert report.health.gap_minutes is not None and report.health.gap_minutes > 179
    assert len(telegram_api.messages) == 1
    assert report.summary()["alerts"] == [{"event": "daemon_gap", "outcomes": ["telegram:sent"]}]


@pytest.mark.prefect
def test_watchdog_flow_under_prefect_sends_one_alert_per_cooldown(
    prefect_harness: None, stale_daemon: Database, telegram_api: TelegramBotAPI
) -> None:
    module = load_flow_module()

    first = module.watchdog(OVERRIDES)
    second = module.watchdog(OVERRIDES)

    assert first["alerts"] == [{"event": "daemon_gap", "outcomes": ["telegram:sent"]}]
    assert second["alerts"] == [{"event": "daemon_gap", "outcomes": ["telegram:suppressed"]}]
    assert len(telegram_api.messages) == 1
