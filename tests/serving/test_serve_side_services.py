"""What ``serve`` starts beside the flows: the masked activity log and the Telegram command bot,
which answers the configured chat and stops with serving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from otonom_trader.alerts.config import TelegramAlertConfig
from otonom_trader.config.schema import AppConfig
from otonom_trader.operator.logfiles import uninstall_file_logging
from otonom_trader.serving.serve import start_side_services
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI

TOKEN = "123456789:AAF-serve-side-services-token-tests"
CHAT = 5151


@pytest.fixture
def api() -> Iterator[TelegramBotAPI]:
    with TelegramBotAPI(token=TOKEN) as server:
        yield server


@pytest.fixture(autouse=True)
def no_log_handler_left() -> Iterator[None]:
    uninstall_file_logging()  # the handler is per process: another test's may still be there
    yield
    uninstall_file_logging()


def test_serve_starts_the_command_bot_and_the_log_file_and_stops_them(
    api: TelegramBotAPI, tmp_path: Path, isolated_home: Path
) -> None:
    app = AppConfig()
    app.db.url = str(tmp_path / "serve.db")
    app.alerts.telegram = TelegramAlertConfig(enabled=True, bot_token=TOKEN, chat_id=str(CHAT))
    stop = threading.Event()

    log_file = start_side_services(app, stop, telegram_api=api.base_url)
    api.inject(CHAT, "/help")
    answered = False
    for _ in range(1000):  # returns as soon as the reply is there (up to 10 s when loaded)
        if api.sent_to(CHAT):
            answered = True
            break
        stop.wait(0.01)
    stop.set()

    assert answered
    assert "/status" in api.sent_to(CHAT)[0]
    assert Path(log_file).parent == isolated_home / "logs"
    bot_threads = [t for t in threading.enumerate() if t.name == "telegram-commands"]
    for thread in bot_threads:
        thread.join(timeout=15)
    assert not any(t.is_alive() for t in bot_threads)
    assert TOKEN not in Path(log_file).read_text()


def test_serve_without_telegram_starts_no_bot(tmp_path: Path) -> None:
    app = AppConfig()
    app.db.url = str(tmp_path / "serve.db")
    before = {t.name for t in threading.enumerate()}

    start_side_services(app, threading.Event())

    assert "telegram-commands" not in {t.name for t in threading.enumerate()} - before
