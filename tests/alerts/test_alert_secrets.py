"""No secret in any log line, outbox row or alert text, even with every logger at DEBUG."""

from __future__ import annotations

import logging

import pytest
from alert_servers import (
    BOT_TOKEN,
    CHAT_ID,
    SMTP_PASSWORD,
    SMTP_USER,
    LocalSMTPServer,
    ManualClock,
)
from sqlalchemy import select

from otonom_trader.alerts import AlertEngine, AlertsConfig, EmailAlertConfig, TelegramAlertConfig
from otonom_trader.persistence import Database
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI


def test_secrets_never_reach_logs_rows_or_alert_texts(
    smtp_auth_server: LocalSMTPServer,
    telegram_api: TelegramBotAPI,
    sqlite_db: Database,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = AlertsConfig(
        email=EmailAlertConfig(
            enabled=True,
            smtp_host="127.0.0.1",
            smtp_port=smtp_auth_server.port,
            use_tls=False,
            username=SMTP_USER,
            password=SMTP_PASSWORD,
            from_addr=SMTP_USER,
            to_addrs=["ops@example.com"],
        ),
        telegram=TelegramAlertConfig(enabled=True, bot_token=BOT_TOKEN, chat_id=CHAT_ID),
    )
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock)

    # A caller that puts a secret into the alert text by mistake (e.g. an exception message).
    engine.notify_broker_error(f"auth failed for token {BOT_TOKEN} / {SMTP_PASSWORD}")
    telegram_api.fail_with = 500
    smtp_auth_server.stop()
    engine.notify_kill_switch("halt")  # failures log their (masked) errors
    with sqlite_db.session() as session:
        failed_rows = list(session.scalars(select(AlertOutboxRecord)))
    smtp_auth_server.start()
    telegram_api.fail_with = None
    engine.deliver_pending(clock.advance(minutes=1))

    with sqlite_db.session() as session:
        rows = list(session.scalars(select(AlertOutboxRecord)))
    texts = [caplog.text, repr(engine.config), *(m.text for m in telegram_api.messages)]
    texts += [m.message.as_string() for m in smtp_auth_server.messages]
    texts += [f"{r.title} {r.body} {r.last_error} {r.note}" for r in rows + failed_rows]
    assert len(telegram_api.messages) == 2 and len(smtp_auth_server.messages) == 2
    assert any("Telegram POST URL" in r.getMessage() for r in caplog.records)  # DEBUG was on
    assert any(r.last_error for r in failed_rows)  # (cleared once the row is sent)
    assert not any(r.last_error for r in rows if r.status == "sent")
    for secret in (BOT_TOKEN, BOT_TOKEN.split(":")[1], SMTP_PASSWORD):
        for text in texts:
            assert secret not in text
