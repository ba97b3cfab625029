"""The outbox on SQLite and PostgreSQL: rows before sending, dedupe, routing, no channel,
concurrent deliverers, a broken database."""

from __future__ import annotations

from alert_servers import BOT_TOKEN, CHAT_ID, ManualClock
from sqlalchemy import select

from otonom_trader.alerts import (
    AlertEngine,
    AlertRouteConfig,
    AlertsConfig,
    TelegramAlertConfig,
)
from otonom_trader.persistence import Database
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI


def telegram_config(**overrides: object) -> AlertsConfig:
    cfg = AlertsConfig(
        telegram=TelegramAlertConfig(enabled=True, bot_token=BOT_TOKEN, chat_id=CHAT_ID)
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def all_rows(db: Database) -> list[AlertOutboxRecord]:
    with db.session() as session:
        return list(session.scalars(select(AlertOutboxRecord).order_by(AlertOutboxRecord.id)))


def test_alert_is_a_row_before_the_channel_is_tried(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    seen_by_server: list[int] = []
    original = telegram_api._handle  # noqa: SLF001

    def handle(*args: object) -> tuple[int, dict[str, object]]:
        # While the channel is being called, the row must already be committed.
        seen_by_server.append(len(all_rows(any_db)))
        return original(*args)  # type: ignore[arg-type]

    telegram_api._handle = handle  # type: ignore[method-assign]  # noqa: SLF001
    engine = AlertEngine(telegram_config(), db=any_db, clock=clock)

    report = engine.notify_kill_switch("Max daily loss 5% exceeded")

    assert seen_by_server == [1]
    [row] = all_rows(any_db)
    assert (row.id, row.event, row.severity, row.channel) == (
        report.outbox_ids[0],
        "kill_switch",
        "critical",
        "telegram",
    )
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, clock.now)
    assert row.created_at == clock.now


def test_same_broker_error_is_not_resent_within_cooldown(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    engine = AlertEngine(telegram_config(dedupe_cooldown_minutes=60.0), db=any_db, clock=clock)

    first = engine.notify_broker_error("Connection timeout")
    repeats = [engine.notify_broker_error("Connection timeout") for _ in range(3)]
    clock.advance(minutes=10)
    other = engine.notify_broker_error("Invalid nonce")
    clock.advance(minutes=61)
    after_cooldown = engine.notify_broker_error("Connection timeout")

    assert first.delivered
    assert all(r.suppressed and r.outbox_ids == first.outbox_ids for r in repeats)
    assert other.delivered
    assert after_cooldown.delivered
    assert len(telegram_api.messages) == 3
    assert len(all_rows(any_db)) == 3  # duplicates add no rows


def test_kill_switch_halts_with_the_same_wording_are_each_announced(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    engine = AlertEngine(telegram_config(dedupe_cooldown_minutes=60.0), db=any_db, clock=clock)

    reports = [engine.notify_kill_switch("Max daily loss 5% exceeded") for _ in range(3)]

    assert [r.delivered for r in reports] == [True, True, True]
    assert len({r.outbox_ids for r in reports}) == 3
    assert len(telegram_api.messages) == 3


def test_routes_send_each_channel_only_its_severities_and_events(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    cfg = telegram_config(
        urls=[f"tgram://{BOT_TOKEN}/999"],
        routes={
            "telegram": AlertRouteConfig(min_severity="error"),
            "url1": AlertRouteConfig(events=["kill_switch"]),
        },
    )
    cfg.__post_init__()
    engine = AlertEngine(cfg, db=any_db, clock=clock)

    portfolio = engine.notify_portfolio_alert("Drawdown > 50%")  # warning
    broker = engine.notify_broker_error("timeout")  # error
    kill = engine.notify_kill_switch("halt")  # critical

    assert [o.channel for o in portfolio.outcomes] == ["none"]
    assert portfolio.outcomes[0].note == "no route accepts this alert"
    assert [o.channel for o in broker.outcomes] == ["telegram"]
    assert sorted(o.channel for o in kill.outcomes) == ["telegram", "url1"]
    assert [m.chat_id for m in telegram_api.messages] == [CHAT_ID, CHAT_ID, "999"]


def test_without_channels_alert_is_recorded_as_suppressed(
    any_db: Database, clock: ManualClock
) -> None:
    engine = AlertEngine(AlertsConfig(), db=any_db, clock=clock)

    report = engine.notify_broker_error("Connection timeout")
    again = engine.notify_broker_error("Connection timeout")

    [row] = all_rows(any_db)
    assert (row.channel, row.status, row.note) == ("none", "suppressed", "no channel configured")
    assert "Connection timeout" in row.body
    assert report.suppressed and again.outbox_ids == report.outbox_ids
    assert engine.deliver_pending(clock.now).attempted == 0


def test_two_engines_retrying_the_same_outbox_send_each_alert_once(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    daemon = AlertEngine(telegram_config(), db=any_db, clock=clock)
    watchdog = AlertEngine(telegram_config(), db=any_db, clock=clock)
    telegram_api.fail_with = 500
    report = daemon.notify_broker_error("timeout")
    telegram_api.fail_with = None
    clock.advance(minutes=1)
    [row] = daemon.outbox.due(clock.now, 10)

    # The watchdog claims the row first; the daemon's stale copy can no longer claim it.
    assert watchdog.outbox.claim(row, clock.now)
    assert not daemon.outbox.claim(row, clock.now)
    assert daemon.deliver_pending(clock.now).attempted == 0
    assert report.outbox_ids == (row.id,)


def test_broken_database_still_sends_the_alert_directly(
    telegram_api: TelegramBotAPI, clock: ManualClock, sqlite_db: Database
) -> None:
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)
    with sqlite_db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alert_outbox")

    report = engine.notify_kill_switch("halt")
    delivery = engine.deliver_pending(clock.now)

    assert report.error is not None and "outbox unavailable" in report.error
    assert [o.status for o in report.outcomes] == ["sent"]
    assert len(telegram_api.messages) == 1
    assert delivery.error is not None  # reported, not raised


def test_public_methods_never_raise_on_bad_input(sqlite_db: Database, clock: ManualClock) -> None:
    engine = AlertEngine(AlertsConfig(), db=sqlite_db, clock=clock)

    report = engine.notify("t", "b", severity="not-a-severity")

    assert report.error is not None and "not-a-severity" in report.error
