"""Flow hooks under Prefect's real engine: a failing run sends exactly one alert."""

from __future__ import annotations

import pytest
from alert_servers import BOT_TOKEN, CHAT_ID
from prefect import flow

from otonom_trader.alerts.hooks import (
    alert_on_flow_crashed,
    alert_on_flow_failure,
    mask_overrides,
)
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI

pytestmark = pytest.mark.prefect


@flow(
    name="failing-daemon",
    retries=1,
    retry_delay_seconds=0,
    on_failure=[alert_on_flow_failure],
    on_crashed=[alert_on_flow_crashed],
)
def failing_daemon(overrides: list[str] = []) -> None:  # noqa: B006 - JSON parameter
    raise RuntimeError("exchange unreachable during fetch_signal")


@pytest.fixture
def telegram_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTONOM_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("OTONOM_TELEGRAM_CHAT_ID", CHAT_ID)


def test_failing_flow_run_sends_exactly_one_failure_alert(
    prefect_harness: None, telegram_env: None, telegram_api: TelegramBotAPI
) -> None:
    overrides = ["mode=shadow", "alerts=email_telegram", "alerts.email.enabled=false"]

    state = failing_daemon(overrides, return_state=True)

    assert state.is_failed()
    assert len(telegram_api.messages) == 1  # retries=1: the hook fires once, after the retry
    message = telegram_api.messages[0]
    assert message.chat_id == CHAT_ID
    assert "failed (shadow)" in message.text
    assert "exchange unreachable during fetch_signal" in message.text
    assert "Mode: shadow" in message.text
    assert BOT_TOKEN not in message.text


def test_hook_alerts_with_known_channels_when_the_run_config_is_broken(
    prefect_harness: None, telegram_env: None, telegram_api: TelegramBotAPI
) -> None:
    overrides = [
        "mode=live",
        "guardrails=no_such_profile",  # the full config cannot be rebuilt
        "alerts=email_telegram",
        "alerts.email.enabled=false",
    ]

    state = failing_daemon(overrides, return_state=True)

    assert state.is_failed()
    assert len(telegram_api.messages) == 1
    text = telegram_api.messages[0].text
    assert "Configuration could not be rebuilt" in text
    assert "guardrails" in text
    assert "Mode: live" in text


def test_mask_overrides_hides_secret_values() -> None:
    masked = mask_overrides(
        ["mode=live", f"alerts.telegram.bot_token={BOT_TOKEN}", "db.url=postgresql://u:p@h/db"]
    )

    assert masked == ["mode=live", "alerts.telegram.bot_token=****", "db.url=****"]
