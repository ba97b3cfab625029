"""The served cycle's schedule follows the candles; run names say what ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from otonom_trader.serving.run_names import run_name
from otonom_trader.serving.schedule import cycle_schedule


@pytest.mark.parametrize(
    ("timeframe", "cron"),
    [
        ("1m", "* * * * *"),
        ("5m", "1-59/5 * * * *"),
        ("15m", "1-59/15 * * * *"),
        ("1h", "1 * * * *"),
        ("4h", "1 */4 * * *"),
        ("1d", "1 0 * * *"),
        ("1w", "1 0 * * 1"),
    ],
)
def test_a_cycle_runs_one_minute_after_each_candle_close(timeframe: str, cron: str) -> None:
    assert cycle_schedule(timeframe).cron == cron


def test_a_timeframe_without_a_cron_runs_on_an_interval_anchored_after_the_epoch() -> None:
    schedule = cycle_schedule("3d")

    assert schedule.cron is None
    assert schedule.interval == timedelta(days=3)
    assert schedule.anchor == datetime(1970, 1, 1, 0, 1, tzinfo=UTC)


def test_the_run_name_says_mode_broker_option_and_start_minute_in_utc() -> None:
    started = datetime(2026, 11, 29, 18, 5, 42, tzinfo=UTC)

    assert (
        run_name(["mode=shadow", "broker=binance_testnet"], started)
        == "shadow-binance_testnet-2026-11-29T18:05Z"
    )
    assert run_name([], started) == "paper-sim-2026-11-29T18:05Z"  # conf/config.yaml defaults
    assert run_name(["mode.name=LIVE", "db.url=x.db"], started).startswith("live-sim-")
