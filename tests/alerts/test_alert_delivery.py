"""Delivery to real servers: SMTP (aiosmtpd) and the Telegram Bot API stand-in, outages included."""

from __future__ import annotations

from datetime import timedelta

from alert_servers import BOT_TOKEN, CHAT_ID, SMTP_PASSWORD, SMTP_USER, LocalSMTPServer, ManualClock

from otonom_trader.alerts import AlertEngine, AlertsConfig, EmailAlertConfig, TelegramAlertConfig
from otonom_trader.persistence import Database
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI


def email_config(
    server: LocalSMTPServer, *, auth: bool = False, two_recipients: bool = False
) -> AlertsConfig:
    return AlertsConfig(
        email=EmailAlertConfig(
            enabled=True,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            use_tls=False,
            username=SMTP_USER if auth else None,
            password=SMTP_PASSWORD if auth else None,
            from_addr="otonom@example.com",
            to_addrs=["ops@example.com", "oncall@example.org"]
            if two_recipients
            else ["ops@example.com"],
        )
    )


def telegram_config() -> AlertsConfig:
    return AlertsConfig(
        telegram=TelegramAlertConfig(enabled=True, bot_token=BOT_TOKEN, chat_id=CHAT_ID)
    )


def test_kill_switch_alert_reaches_smtp_server_with_subject_body_and_recipients(
    smtp_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(
        email_config(smtp_server, two_recipients=True), db=sqlite_db, clock=clock, mode="shadow"
    )

    report = engine.notify_kill_switch("Max daily loss 5% exceeded")

    assert report.delivered
    # Apprise sends one message per recipient.
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == [
        "oncall@example.org",
        "ops@example.com",
    ]
    for mail in smtp_server.messages:
        assert mail.subject == "[otonom-trader] KILL-SWITCH: trading halted"
        assert "Reason: Max daily loss 5% exceeded" in mail.text
        assert "Mode: shadow" in mail.text
        assert mail.mail_from == "otonom@example.com"
        assert mail.message["To"] in ("ops@example.com", "oncall@example.org")


def test_email_logs_in_over_plain_smtp_with_username_and_password(
    smtp_auth_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(email_config(smtp_auth_server, auth=True), db=sqlite_db, clock=clock)

    report = engine.notify("Test", "Test message")

    assert report.delivered
    assert smtp_auth_server.logins == [SMTP_USER]
    assert smtp_auth_server.messages[0].subject == "[otonom-trader] Test"
    assert smtp_auth_server.messages[0].text.startswith("Test message")


def test_telegram_alert_reaches_bot_api_with_chat_id_and_text(
    telegram_api: TelegramBotAPI, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)

    report = engine.notify_broker_error("Connection timeout")

    assert report.delivered
    assert len(telegram_api.messages) == 1
    message = telegram_api.messages[0]
    assert message.chat_id == CHAT_ID
    assert "Broker error" in message.text
    assert "Connection timeout" in message.text


def test_smtp_outage_keeps_alert_in_outbox_until_server_is_back(
    smtp_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(email_config(smtp_server), db=sqlite_db, clock=clock)
    smtp_server.stop()

    first = engine.notify_kill_switch("Max drawdown 40% exceeded")
    row = engine.outbox.get(first.outbox_ids[0])
    still_down = engine.deliver_pending(clock.advance(minutes=2))
    smtp_server.start()
    too_early = engine.deliver_pending(clock.now)  # backoff doubled to 2 min after 2nd failure
    back = engine.deliver_pending(clock.advance(minutes=3))

    assert not first.delivered and first.outcomes[0].status == "pending"
    assert row is not None and row.status == "pending" and row.attempts == 1
    assert "127.0.0.1" in (row.last_error or "")
    assert still_down.retrying == first.outbox_ids
    assert too_early.attempted == 0
    assert back.sent == first.outbox_ids
    assert len(smtp_server.messages) == 1
    assert "Max drawdown 40% exceeded" in smtp_server.messages[0].text
    delivered = engine.outbox.get(first.outbox_ids[0])
    assert delivered is not None and delivered.status == "sent" and delivered.attempts == 3


def test_telegram_answering_500_is_retried_and_delivered_once_it_recovers(
    telegram_api: TelegramBotAPI, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)
    telegram_api.fail_with = 500

    first = engine.notify_portfolio_alert("Drawdown > 50%")
    telegram_api.fail_with = None
    later = engine.deliver_pending(clock.advance(minutes=1))

    assert first.outcomes[0].status == "pending"
    assert "500" in (first.outcomes[0].error or "")
    assert later.sent == first.outbox_ids
    assert [m.chat_id for m in telegram_api.messages] == [CHAT_ID]
    assert "Drawdown &gt; 50%" in telegram_api.messages[0].text  # HTML-escaped by Apprise


def test_one_channel_down_does_not_hold_back_the_other(
    smtp_server: LocalSMTPServer,
    telegram_api: TelegramBotAPI,
    sqlite_db: Database,
    clock: ManualClock,
) -> None:
    cfg = email_config(smtp_server)
    cfg.telegram = telegram_config().telegram
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock)
    smtp_server.stop()

    report = engine.notify_kill_switch("Consecutive losses 5")
    smtp_server.start()
    retry = engine.deliver_pending(clock.advance(minutes=1))

    statuses = {o.channel: o.status for o in report.outcomes}
    assert statuses == {"email": "pending", "telegram": "sent"}
    assert len(telegram_api.messages) == 1  # telegram is not re-sent by the retry
    assert len(retry.sent) == 1 and len(smtp_server.messages) == 1


def test_failed_delivery_gives_up_after_max_attempts(
    telegram_api: TelegramBotAPI, sqlite_db: Database, clock: ManualClock
) -> None:
    cfg = telegram_config()
    cfg.max_attempts = 3
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock)
    telegram_api.fail_with = 500

    report = engine.notify_broker_error("API down")
    second = engine.deliver_pending(clock.advance(minutes=1))
    third = engine.deliver_pending(clock.advance(minutes=2))
    fourth = engine.deliver_pending(clock.advance(hours=2))

    assert report.outcomes[0].status == "pending"
    assert second.retrying == report.outbox_ids
    assert third.failed == report.outbox_ids
    assert fourth.attempted == 0
    row = engine.outbox.get(report.outbox_ids[0])
    assert row is not None and row.status == "failed" and row.attempts == 3


def test_dead_channel_costs_one_attempt_per_backoff_not_one_per_alert(
    telegram_api: TelegramBotAPI, sqlite_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)
    telegram_api.fail_with = 500

    reports = [engine.notify_broker_error(f"error {i}") for i in range(5)]
    requests_while_backing_off = telegram_api.requests
    telegram_api.fail_with = None
    clock.advance(minutes=1)
    recovered = engine.deliver_pending(clock.now)

    assert requests_while_backing_off == 1
    assert [r.outcomes[0].status for r in reports] == ["pending"] * 5
    # The oldest goes first and the order is kept.
    assert list(recovered.sent) == [r.outbox_ids[0] for r in reports]
    assert [m.text.count(f"error {i}") for i, m in enumerate(telegram_api.messages)] == [1] * 5


def test_deliver_pending_does_bounded_work_per_call(
    telegram_api: TelegramBotAPI, sqlite_db: Database, clock: ManualClock
) -> None:
    cfg = telegram_config()
    cfg.max_deliveries_per_call = 3
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock)
    telegram_api.fail_with = 500
    for i in range(7):
        engine.notify_broker_error(f"error {i}")
    telegram_api.fail_with = None

    first = engine.deliver_pending(clock.advance(minutes=1))
    second = engine.deliver_pending(clock.now)
    third = engine.deliver_pending(clock.now)

    assert (len(first.sent), len(second.sent), len(third.sent)) == (3, 3, 1)
    assert len(telegram_api.messages) == 7


def test_channel_rate_limit_defers_extra_alerts_to_the_next_hour(
    telegram_api: TelegramBotAPI, sqlite_db: Database, clock: ManualClock
) -> None:
    cfg = telegram_config()
    cfg.rate_limit_per_channel_per_hour = 2
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock)

    reports = [engine.notify_broker_error(f"error {i}") for i in range(3)]
    same_hour = engine.deliver_pending(clock.advance(minutes=30))
    next_hour = engine.deliver_pending(clock.advance(minutes=31))

    assert [r.outcomes[0].status for r in reports] == ["sent", "sent", "pending"]
    assert same_hour.attempted == 0
    assert next_hour.sent == reports[2].outbox_ids
    assert len(telegram_api.messages) == 3


def test_unreachable_telegram_host_fails_within_the_configured_timeout(
    sqlite_db: Database, clock: ManualClock
) -> None:
    # 127.0.0.1:9 (discard) refuses at once; the point is that nothing raises or hangs.
    from apprise.plugins.telegram import NotifyTelegram

    original = NotifyTelegram.notify_url
    NotifyTelegram.notify_url = "http://127.0.0.1:9/bot"
    try:
        cfg = telegram_config()
        cfg.timeout_seconds = 1.0
        engine = AlertEngine(cfg, db=sqlite_db, clock=clock)
        report = engine.notify_broker_error("x")
    finally:
        NotifyTelegram.notify_url = original

    assert report.outcomes[0].status == "pending"
    assert report.outcomes[0].error
    assert report.error is None
    row = engine.outbox.get(report.outbox_ids[0])
    assert row is not None and row.next_attempt_at == clock.now + timedelta(minutes=1)
