"""The guide's troubleshooting line: ``notifier.notify("Test", "Test message")`` sends."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alert_servers import BOT_TOKEN, CHAT_ID

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI

TELEGRAM_ONLY = ["alerts=email_telegram", "alerts.email.enabled=false"]


def test_the_guides_line_sends_through_the_configured_telegram_channel(
    telegram_api: TelegramBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTONOM_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("OTONOM_TELEGRAM_CHAT_ID", CHAT_ID)
    from otonom_trader.alerts import notifier

    report = notifier.notify("Test", "Test message", overrides=TELEGRAM_ONLY)

    assert [(o.channel, o.status) for o in report.outcomes] == [("telegram", "sent")]
    [message] = telegram_api.messages
    assert "Test message" in message.text


def test_with_no_channel_configured_the_report_says_so_and_nothing_raises() -> None:
    from otonom_trader.alerts import notifier

    report = notifier.notify("Test", "Test message")

    assert [(o.channel, o.status) for o in report.outcomes] == [("none", "suppressed")]
    assert not report.delivered


def test_the_notifier_module_loads_neither_the_engine_nor_apprise_until_called() -> None:
    # Loaded from its file, so the package's own __init__ (another concern) is not measured.
    path = PROJECT_ROOT / "otonom_trader" / "alerts" / "notifier.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('notifier', r'{path}')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print('apprise' in sys.modules, 'otonom_trader.alerts.engine' in sys.modules)\n"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.stdout.split() == ["False", "False"], result.stderr
