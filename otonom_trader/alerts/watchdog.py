"""The watchdog: a separate, separately scheduled check that catches a daemon that stopped.

The daemon's own ``health_check`` cannot notice that the daemon no longer runs; this can, because
it runs on its own schedule (``flows/watchdog.py``). It composes the same configuration, opens
the same database, raises the gap and drawdown alerts and retries the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from otonom_trader.alerts.engine import AlertEngine, DeliveryReport, HealthReport
from otonom_trader.persistence.database import Database


@dataclass(frozen=True)
class WatchdogReport:
    """What one watchdog pass saw and did."""

    health: HealthReport
    delivery: DeliveryReport

    def summary(self) -> dict[str, object]:
        """A JSON-friendly summary (no secrets: ids, counts, times)."""
        return {
            "checked_at": self.health.checked_at.isoformat(),
            "last_completed_at": (
                self.health.last_completed_at.isoformat() if self.health.last_completed_at else None
            ),
            "gap_minutes": (
                round(self.health.gap_minutes, 1) if self.health.gap_minutes is not None else None
            ),
            "alerts": [
                {"event": a.event, "outcomes": [f"{o.channel}:{o.status}" for o in a.outcomes]}
                for a in self.health.alerts
            ],
            "health_error": self.health.error,
            "retried_sent": list(self.delivery.sent),
            "retried_failed": list(self.delivery.retrying) + list(self.delivery.failed),
            "delivery_error": self.delivery.error,
        }


def run_watchdog(overrides: list[str], now: datetime) -> WatchdogReport:
    """Compose the config from ``overrides``, check the daemon's health, retry the outbox.

    Raises ``ConfigError`` for a bad configuration (the watchdog run should fail loudly then);
    alert problems are reported, never raised.
    """
    from otonom_trader.alerts.schedule import apply_schedule_default, strategy_timeframe
    from otonom_trader.config.compose import load_config

    _, app = load_config(overrides)
    if app.alerts.max_gap_minutes is None:
        apply_schedule_default(app.alerts, strategy_timeframe(app.strategy.path))
    db = Database(app.db.url, busy_timeout_ms=app.db.busy_timeout_ms)
    try:
        engine = AlertEngine(app.alerts, db=db, mode=str(app.mode.name))
        health = engine.check_and_notify(now)
        delivery = engine.deliver_pending(now)
        return WatchdogReport(health, delivery)
    finally:
        db.dispose()
