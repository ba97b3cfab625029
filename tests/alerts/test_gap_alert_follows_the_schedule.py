"""Issue 13, point 5: the "daemon has not run" alert follows the strategy's schedule.

A day of hourly cycles (real ``TradingDaemon`` cycles, PAPER, a ``ManualClock``) with the watchdog
looking every ten minutes raises no gap alert; once the cycles stop, exactly one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otonom_trader.alerts import AlertEngine
from otonom_trader.alerts.schedule import gap_minutes_for
from otonom_trader.daemon import TradingDaemon
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.database import Database
from otonom_trader.testkit.clock import ManualClock

FOUR_HOUR_STRATEGY = """\
name: four_hourly
version: "1.0"
symbols: [BTC/USDT]
timeframe: 4h
entry:
  - {indicator: rsi, period: 14, below: 30}
exit:
  - {indicator: rsi, period: 14, above: 70}
sizing: {mode: pct_equity, value: 10}
"""


def _gap_alerts(db: Database) -> int:
    with db.session() as session:
        count = session.scalar(select(func.count()).where(AlertOutboxRecord.event == "daemon_gap"))
    return int(count or 0)


def test_a_day_of_hourly_cycles_raises_no_gap_alert_and_a_stop_raises_exactly_one(
    tmp_path: Path,
) -> None:
    # Arrange: the shipped 1h strategy, a cycle one minute after each candle close, and the
    # watchdog's own engine (as flows/watchdog.py builds it) on the same database and clock.
    clock = ManualClock(datetime(2026, 6, 1, 0, 1, tzinfo=UTC))
    daemon = TradingDaemon(db_path=tmp_path / "trader.db", clock=clock)
    watchdog = AlertEngine(daemon.config.alerts, db=daemon.context.db, clock=clock)

    # Act 1: 24 hourly cycles; the watchdog checks at 10, 20, … 50 minutes past each one
    for _ in range(24):
        assert daemon.run_once().status == "succeeded"
        assert daemon.context.alerts.wait_idle(30)  # the cycle's own gap check ran
        for _ in range(5):
            clock.advance(minutes=10)
            watchdog.check_and_notify()
        clock.advance(minutes=10)
    alerts_while_running = _gap_alerts(daemon.context.db)

    # Act 2: the cycles stop; the watchdog keeps looking every ten minutes, from the hour the
    # next cycle was due until 3.5 hours after the last one (the alert fires past 150 minutes;
    # a reminder would come only after alerts.dedupe_cooldown_minutes, 60, at 220 minutes)
    for _ in range(16):
        watchdog.check_and_notify()
        clock.advance(minutes=10)
    alerts_after_stop = _gap_alerts(daemon.context.db)
    daemon.close()

    # Assert
    assert daemon.config.alerts.max_gap_minutes == 150
    assert alerts_while_running == 0
    assert alerts_after_stop == 1


def test_the_default_limit_follows_the_timeframe_and_an_explicit_one_wins(
    tmp_path: Path,
) -> None:
    strategy = tmp_path / "four_hourly.yaml"
    strategy.write_text(FOUR_HOUR_STRATEGY)

    hourly = TradingDaemon(db_path=tmp_path / "a.db")
    four_hourly = TradingDaemon(db_path=tmp_path / "b.db", strategy_path=strategy)
    explicit = TradingDaemon(db_path=tmp_path / "c.db", overrides=["alerts.max_gap_minutes=45"])

    assert hourly.config.alerts.max_gap_minutes == 150
    assert four_hourly.config.alerts.max_gap_minutes == 600
    assert explicit.config.alerts.max_gap_minutes == 45


@pytest.mark.parametrize(
    ("timeframe", "minutes"), [("15m", 37.5), ("1h", 150), ("4h", 600), ("1d", 3600)]
)
def test_gap_minutes_is_two_missed_cycles_and_half_a_cycle_of_grace(
    timeframe: str, minutes: float
) -> None:
    assert gap_minutes_for(timeframe) == minutes


def test_an_alert_engine_without_a_schedule_falls_back_to_the_hourly_limit() -> None:
    assert AlertEngine().config.gap_limit_minutes == 150


def test_a_served_interval_sets_the_limit_at_most_a_week() -> None:
    from otonom_trader.alerts.schedule import gap_minutes_every

    assert gap_minutes_every(300) == 12.5
    assert gap_minutes_every(30 * 86_400) == 7 * 24 * 60
