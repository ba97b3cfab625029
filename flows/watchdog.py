"""The watchdog flow: alerts when the daemon stopped running (schedule it on its own).

    python flows/watchdog.py                      # default config
    python flows/watchdog.py alerts=email_telegram db=postgres

Each run composes the configuration from ``overrides`` (as the daemon flow does), checks the
gap since the daemon's last completed run and each book's drawdown, and retries undelivered
alerts. The logic lives in ``otonom_trader.alerts.watchdog``; this file only wraps it.
"""

from __future__ import annotations

import sys

from otonom_trader.serving.environment import apply_prefect_defaults

apply_prefect_defaults()  # analytics off, a patient temporary server: before Prefect's import

from prefect import flow, get_run_logger  # noqa: E402

from otonom_trader.alerts.watchdog import run_watchdog  # noqa: E402
from otonom_trader.persistence.models import utc_now  # noqa: E402


def _watchdog_run_name() -> str:
    """``watchdog-2026-11-29T18:10Z``: the scheduled start in UTC."""
    from datetime import UTC, datetime

    from prefect.runtime import flow_run

    when = flow_run.scheduled_start_time
    return f"watchdog-{(when if isinstance(when, datetime) else datetime.now(UTC)):%Y-%m-%dT%H:%MZ}"


@flow(name="watchdog", flow_run_name=_watchdog_run_name, log_prints=False)
def watchdog(overrides: list[str] = []) -> dict[str, object]:  # noqa: B006 - JSON parameter
    """Check the daemon's health and retry the alert outbox; returns a summary."""
    report = run_watchdog(list(overrides), utc_now())
    summary = report.summary()
    logger = get_run_logger()
    logger.info(
        "watchdog: last completed run %s (gap %s min), %d alert(s), %d retried delivery(ies)",
        summary["last_completed_at"] or "never",
        summary["gap_minutes"],
        len(report.health.alerts),
        report.delivery.attempted,
    )
    return summary


if __name__ == "__main__":
    watchdog(sys.argv[1:])
