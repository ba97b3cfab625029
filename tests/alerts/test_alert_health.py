"""check_and_notify: the daemon gap and the drawdown, on SQLite and PostgreSQL; a trading cycle
that goes on while the alert channel is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from alert_servers import BOT_TOKEN, CHAT_ID, LocalSMTPServer, ManualClock
from sqlalchemy import select

from otonom_trader.alerts import AlertEngine, AlertsConfig, EmailAlertConfig, TelegramAlertConfig
from otonom_trader.persistence import DaemonRun, Database, PortfolioSnapshot
from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI


def telegram_config() -> AlertsConfig:
    return AlertsConfig(
        telegram=TelegramAlertConfig(enabled=True, bot_token=BOT_TOKEN, chat_id=CHAT_ID),
        max_gap_minutes=30,  # explicit: the schedule's default (150 min for 1h) is not used
    )


def add_run(db: Database, run_id: str, started: datetime, status: str = "succeeded") -> None:
    with db.session() as session:
        session.add(
            DaemonRun(
                run_id=run_id,
                started_at=started,
                finished_at=started + timedelta(seconds=20) if status == "succeeded" else None,
                status=status,
                mode="paper",
                broker="sim",
                data_source="synthetic",
                config_hash="0" * 16,
                strategy_name="baseline",
                strategy_version="1.0",
            )
        )


def add_snapshot(db: Database, book: str, at: datetime, equity: str, peak: str) -> None:
    with db.session() as session:
        session.add(
            PortfolioSnapshot(
                book=book,
                taken_at=at,
                equity=Decimal(equity),
                cash=Decimal(equity),
                peak_equity=Decimal(peak),
            )
        )


def test_gap_longer_than_limit_raises_one_daemon_alert(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    add_run(any_db, "r1", clock.now - timedelta(minutes=50))
    engine = AlertEngine(telegram_config(), db=any_db, clock=clock)

    report = engine.check_and_notify(clock.now)
    again = engine.check_and_notify(clock.advance(minutes=5))

    assert report.gap_minutes is not None and 49 < report.gap_minutes < 50
    assert [a.event for a in report.alerts] == ["daemon_gap"]
    assert report.alerts[0].delivered
    assert again.alerts[0].suppressed  # the same stale run is reported once per cooldown
    assert len(telegram_api.messages) == 1
    assert "has not completed a run for 50 minutes" in telegram_api.messages[0].text


def test_recent_run_raises_no_alert(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    add_run(any_db, "old", clock.now - timedelta(hours=5))
    add_run(any_db, "new", clock.now - timedelta(minutes=10))
    add_run(any_db, "broken", clock.now - timedelta(minutes=2), status="failed")
    engine = AlertEngine(telegram_config(), db=any_db, clock=clock)

    report = engine.check_and_notify(clock.now)

    assert report.alerts == ()
    assert report.last_completed_at == clock.now - timedelta(minutes=10) + timedelta(seconds=20)


def test_naive_utcnow_from_the_guide_is_taken_as_utc(
    sqlite_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    add_run(sqlite_db, "r1", clock.now - timedelta(minutes=31))
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)

    report = engine.check_and_notify(clock.now.replace(tzinfo=None))

    assert report.error is None
    assert [a.event for a in report.alerts] == ["daemon_gap"]


def test_runs_that_never_complete_are_reported_after_the_gap(
    sqlite_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    add_run(sqlite_db, "r1", clock.now - timedelta(minutes=45), status="failed")
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)

    report = engine.check_and_notify(clock.now)

    assert [a.event for a in report.alerts] == ["daemon_gap"]
    assert "No daemon run has completed" in telegram_api.messages[0].text


def test_empty_database_raises_no_gap_alert(sqlite_db: Database, clock: ManualClock) -> None:
    engine = AlertEngine(telegram_config(), db=sqlite_db, clock=clock)

    report = engine.check_and_notify(clock.now)

    assert (report.alerts, report.last_completed_at, report.error) == ((), None, None)


def test_drawdown_past_level_alerts_per_book(
    any_db: Database, telegram_api: TelegramBotAPI, clock: ManualClock
) -> None:
    add_run(any_db, "r1", clock.now - timedelta(minutes=1))
    add_snapshot(any_db, "paper", clock.now - timedelta(minutes=5), "4000", "10000")
    add_snapshot(any_db, "paper", clock.now - timedelta(minutes=1), "4900", "10000")  # 51 %
    add_snapshot(any_db, "broker", clock.now - timedelta(minutes=1), "9000", "10000")  # 10 %
    engine = AlertEngine(telegram_config(), db=any_db, clock=clock)

    report = engine.check_and_notify(clock.now)

    drawdowns = {d.book: d.drawdown_pct for d in report.drawdowns}
    assert drawdowns == {"paper": Decimal(51), "broker": Decimal(10)}
    assert [a.event for a in report.alerts] == ["portfolio"]
    assert len(telegram_api.messages) == 1
    assert "paper book is 51.00% below its peak" in telegram_api.messages[0].text


def test_trading_cycle_completes_while_smtp_is_down_and_alert_arrives_later(
    smtp_server: LocalSMTPServer, sqlite_db: Database, clock: ManualClock
) -> None:
    cfg = AlertsConfig(
        email=EmailAlertConfig(
            enabled=True,
            smtp_host="127.0.0.1",
            smtp_port=smtp_server.port,
            use_tls=False,
            from_addr="otonom@example.com",
            to_addrs=["ops@example.com"],
        )
    )
    engine = AlertEngine(cfg, db=sqlite_db, clock=clock)

    def trading_cycle(run_id: str) -> None:
        """The daemon's step order: the broker fails, the book is snapshotted, health_check."""
        start = clock.now
        engine.notify_broker_error("Connection timeout")
        add_snapshot(sqlite_db, "paper", clock.now, "10000", "10000")
        add_run(sqlite_db, run_id, start)
        engine.check_and_notify(clock.now)
        engine.deliver_pending(clock.now)

    smtp_server.stop()
    trading_cycle("cycle-1")
    pending_after_outage = engine.outbox.count_by_status()
    clock.advance(minutes=1)
    smtp_server.start()
    trading_cycle("cycle-2")

    assert pending_after_outage == {"pending": 1}
    with sqlite_db.session() as session:
        assert session.query(DaemonRun).count() == 2  # both cycles completed
    assert engine.outbox.count_by_status() == {"sent": 1}  # the repeat was deduplicated
    assert len(smtp_server.messages) == 1
    assert "Connection timeout" in smtp_server.messages[0].text


def test_a_cycle_after_a_stall_raises_the_gap_alert_off_its_path_measured_before_it(
    tmp_path: Path,
) -> None:
    from otonom_trader.daemon import TradingDaemon
    from otonom_trader.persistence.alert_models import AlertOutboxRecord

    clock = ManualClock(datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC))
    daemon = TradingDaemon(db_path=tmp_path / "trader.db", clock=clock)  # alerts=default
    daemon.run_once()
    assert daemon.context.alerts.wait_idle(30)
    clock.advance(hours=3)  # the daemon was silent for three hours (the 1h schedule: 150 min)

    daemon.run_once()
    assert daemon.context.alerts.wait_idle(30)

    with daemon.context.db.session() as session:
        rows = list(
            session.scalars(
                select(AlertOutboxRecord).where(AlertOutboxRecord.event == "daemon_gap")
            )
        )
    daemon.close()
    [row] = rows  # one gap alert, raised by the second cycle only
    assert (row.channel, row.status) == ("none", "suppressed")
    assert row.title == "[otonom-trader] Daemon stalled: no completed run for 180 min"
    assert "Last completed run finished at 2026-06-01 12:00:30 UTC" in row.body
