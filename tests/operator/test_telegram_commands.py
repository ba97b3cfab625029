"""Two-way Telegram end to end: the bot long-polls the local Bot API stand-in, answers the
configured chat only, and its /stop and /resume act on the persisted kill-switch that the next
real cycle obeys."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from traded_books import TradedDatabase, run_shadow_cycles

from otonom_trader.alerts.config import TelegramAlertConfig
from otonom_trader.config.schema import AppConfig
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import ALL_BOOKS, KillSwitch
from otonom_trader.operator import views
from otonom_trader.operator.logfiles import install_file_logging
from otonom_trader.operator.render import money, signed
from otonom_trader.operator.telegram_commands import TelegramCommandBot, TelegramError
from otonom_trader.persistence import Database
from otonom_trader.persistence.models import FillRecord
from otonom_trader.testkit.clock import ManualClock
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI

TOKEN = "987654321:AAF-operator-bot-token-for-tests-only"
CHAT = 4242
STRANGER = 666


@pytest.fixture
def api() -> Iterator[TelegramBotAPI]:
    with TelegramBotAPI(token=TOKEN) as server:
        yield server


@pytest.fixture
def db(traded: TradedDatabase) -> Iterator[Database]:
    database = Database(traded.path)
    yield database
    database.dispose()


@pytest.fixture
def clock(traded: TradedDatabase) -> ManualClock:
    return ManualClock(traded.last_cycle_at + timedelta(minutes=5))


@pytest.fixture
def bot(api: TelegramBotAPI, db: Database, clock: ManualClock) -> TelegramCommandBot:
    app = AppConfig()
    app.alerts.enabled = False  # the kill-switch change is not announced (no channel to test)
    app.alerts.telegram = TelegramAlertConfig(enabled=True, bot_token=TOKEN, chat_id=str(CHAT))
    return TelegramCommandBot(app, db, api_base=api.base_url, clock=clock, poll_timeout_s=0.2)


def _switches(db: Database, traded: TradedDatabase) -> list[KillSwitch]:
    books = [traded.paper_book, traded.broker_book, ALL_BOOKS]
    return [KillSwitch(db, GuardrailConfig(), book) for book in books]


def _fills_after(db: Database, at: datetime) -> list[FillRecord]:
    with db.session() as session:
        return list(session.scalars(select(FillRecord).where(FillRecord.filled_at > at)))


def test_status_positions_profit_and_help_answer_the_configured_chat(
    api: TelegramBotAPI, bot: TelegramCommandBot, db: Database, traded: TradedDatabase
) -> None:
    for text in ("/status", "/positions@otonom_test_bot", "/profit", "/help"):
        api.inject(CHAT, text)

    handled = bot.poll_once()

    status, positions, profit, help_text = api.sent_to(CHAT)
    book = views.book_status(db, traded.paper_book, now=bot.clock())
    gains = views.book_profit(db, traded.paper_book, now=bot.clock())
    assert handled == 4 and len(api.messages) == 4
    assert f"equity {money(book.equity)} · cash {money(book.cash)}" in status
    assert "guard: clear" in status and traded.broker_book in status
    for position in book.positions:
        assert position.symbol in positions and str(position.quantity) in positions
    assert f"realized {signed(gains.realized_pnl)}" in profit and "win rate" in profit
    assert "/stop [reason]" in help_text
    assert all(TOKEN not in m.text for m in api.messages)
    # the next poll confirms them (its offset), so nothing is handled twice
    assert bot.poll_once() == 0 and api.pending_updates() == []


def test_a_strangers_stop_gets_no_reply_and_changes_nothing(
    api: TelegramBotAPI,
    bot: TelegramCommandBot,
    db: Database,
    traded: TradedDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.inject(STRANGER, "/stop I want your money")
    api.inject(STRANGER, "/status")

    with caplog.at_level(logging.WARNING):
        assert bot.poll_once() == 2

    assert api.messages == [] and api.sent_to(STRANGER) == []
    for switch in _switches(db, traded):
        assert switch.detail().active is False and switch.history() == []
    assert "ignored a message from chat 666" in caplog.text


def test_stop_halts_every_book_the_next_cycle_refuses_and_resume_confirm_resets(
    api: TelegramBotAPI,
    bot: TelegramCommandBot,
    db: Database,
    traded: TradedDatabase,
    clock: ManualClock,
) -> None:
    # /stop from the configured chat trips the persisted kill-switch of every book
    api.inject(CHAT, "/stop exchange incident", username="alice")
    bot.poll_once()
    (stopped,) = api.sent_to(CHAT)
    assert stopped.startswith("STOPPED") and "exchange incident" in stopped
    for switch in _switches(db, traded):
        detail = switch.detail()
        assert detail.active and detail.reason and "exchange incident" in detail.reason
    (event,) = KillSwitch(db, GuardrailConfig(), ALL_BOOKS).history()
    assert event.actor == "telegram:@alice" and event.manual

    # the next real cycle (another process would do the same: the halt is a row) sends nothing
    cycle_clock = ManualClock(traded.last_cycle_at + timedelta(hours=1))
    daemon, halted = run_shadow_cycles(traded.path, cycle_clock, 1)
    daemon.close()
    assert halted.guard_active and "exchange incident" in (halted.guard_reason or "")
    assert halted.fills == [] and _fills_after(db, traded.last_cycle_at) == []

    # /resume asks first; /resume confirm resets every switch
    api.inject(CHAT, "/resume")
    bot.poll_once()
    clock.advance(minutes=1)
    api.inject(CHAT, "/resume confirm")
    bot.poll_once()
    ask, resumed = api.sent_to(CHAT)[1:]
    assert "Reply /resume confirm within 2 min" in ask
    assert resumed.startswith("RESUMED")
    for switch in _switches(db, traded):
        assert switch.detail().active is False

    # and trading goes on
    cycle_clock.advance()
    daemon, trading = run_shadow_cycles(traded.path, cycle_clock, 1)
    daemon.close()
    assert not trading.guard_active and trading.fills
    assert _fills_after(db, traded.last_cycle_at)


def test_resume_confirm_needs_a_fresh_request_from_the_same_chat(
    api: TelegramBotAPI,
    bot: TelegramCommandBot,
    db: Database,
    traded: TradedDatabase,
    clock: ManualClock,
) -> None:
    api.inject(CHAT, "/stop")
    api.inject(CHAT, "/resume confirm")  # no /resume asked first
    bot.poll_once()
    api.inject(CHAT, "/resume")
    api.inject(STRANGER, "/resume confirm")  # a stranger cannot confirm
    bot.poll_once()
    clock.advance(minutes=3)  # past the 2-minute window
    api.inject(CHAT, "/resume confirm")
    bot.poll_once()

    replies = api.sent_to(CHAT)
    assert "No /resume is waiting" in replies[1]
    assert "Reply /resume confirm" in replies[2]
    assert "No /resume is waiting" in replies[3] and len(replies) == 4
    assert api.sent_to(STRANGER) == []
    assert all(switch.detail().active for switch in _switches(db, traded))


def test_run_long_polls_until_stopped(api: TelegramBotAPI, bot: TelegramCommandBot) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=bot.run, args=(stop,))
    worker.start()
    api.inject(CHAT, "/help")
    answered = threading.Event()
    for _ in range(500):  # up to 5 s on a loaded machine; returns as soon as the reply is there
        if api.sent_to(CHAT):
            answered.set()
            break
        stop.wait(0.01)

    stop.set()
    worker.join(timeout=5)

    assert answered.is_set() and not worker.is_alive()
    offsets = [o for o in api.update_offsets if o is not None]
    assert offsets and offsets == sorted(offsets) and api.pending_updates() == []


def test_the_token_is_never_in_an_error_or_the_log_file(
    api: TelegramBotAPI, db: Database, tmp_path: pytest.TempPathFactory
) -> None:
    log_file = install_file_logging(tmp_path)  # type: ignore[arg-type]
    app = AppConfig()
    app.alerts.enabled = False
    app.alerts.telegram = TelegramAlertConfig(enabled=True, bot_token=TOKEN, chat_id=str(CHAT))
    closed = TelegramBotAPI(token=TOKEN).start()
    unreachable = closed.base_url  # nothing listens there once it is stopped
    closed.stop()
    wrong_token = TelegramBotAPI(token="1:other")
    wrong_token.start()
    errors = []
    try:
        for base in (unreachable, wrong_token.base_url):
            bot = TelegramCommandBot(app, db, api_base=base, retry_wait_s=0)
            with pytest.raises(TelegramError) as raised:
                bot.poll_once()
            errors.append(str(raised.value))
            logging.getLogger("otonom_trader.test").warning("poll failed: %s", raised.value)
            logging.getLogger("urllib3").warning("GET %sgetUpdates", f"{base}{TOKEN}/")
    finally:
        wrong_token.stop()
    for handler in logging.getLogger().handlers:
        handler.flush()

    assert "HTTP 401" in errors[1]
    assert all(TOKEN not in error and TOKEN.split(":")[1] not in error for error in errors)
    text = log_file.read_text()
    assert "poll failed" in text and TOKEN.split(":")[1] not in text


def test_stop_is_announced_on_the_alert_channels_as_the_cli_does(
    api: TelegramBotAPI, db: Database, clock: ManualClock
) -> None:
    app = AppConfig()
    app.alerts.telegram = TelegramAlertConfig(enabled=True, bot_token=TOKEN, chat_id=str(CHAT))
    bot = TelegramCommandBot(app, db, api_base=api.base_url, clock=clock)
    api.inject(CHAT, "/stop exchange incident")

    with api.patch_apprise():  # the alert channel (Apprise's Telegram plugin) posts here too
        bot.poll_once()

    texts = api.sent_to(CHAT)
    alerts = [t for t in texts if "KILL-SWITCH TRIGGERED" in t]
    assert len(alerts) == 1 and "exchange incident" in alerts[0]
    assert [t for t in texts if t.startswith("STOPPED")]
    assert all(TOKEN not in t for t in texts)


def test_from_config_builds_the_bot_only_when_telegram_is_enabled(db: Database) -> None:
    app = AppConfig()
    assert TelegramCommandBot.from_config(app, db) is None
    app.alerts.telegram = TelegramAlertConfig(enabled=True, bot_token=TOKEN, chat_id=str(CHAT))

    bot = TelegramCommandBot.from_config(app, db)

    assert bot is not None and bot.allowed_chat_ids == {str(CHAT)}
