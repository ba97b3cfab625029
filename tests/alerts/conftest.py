"""Alert fixtures: a real SMTP server on 127.0.0.1, the Telegram Bot API stand-in, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alert_servers import (
    BOT_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    LocalSMTPServer,
    ManualClock,
    free_port,
)

from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    """A running SMTP server without authentication."""
    server = LocalSMTPServer(port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_auth_server() -> Iterator[LocalSMTPServer]:
    """A running SMTP server that requires SMTP_USER / SMTP_PASSWORD."""
    server = LocalSMTPServer(port=free_port(), user=SMTP_USER, password=SMTP_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def telegram_api() -> Iterator[TelegramBotAPI]:
    """The Bot API stand-in accepting BOT_TOKEN, with Apprise pointed at it."""
    with TelegramBotAPI(token=BOT_TOKEN) as api, api.patch_apprise():
        yield api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
