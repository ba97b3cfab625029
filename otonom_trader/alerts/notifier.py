"""``notifier``: the guide's troubleshooting line works as written.

    from otonom_trader.alerts import notifier
    report = notifier.notify("Test", "Test message")
    print([(o.channel, o.status) for o in report.outcomes])   # e.g. [('telegram', 'sent')]

``notify`` sends through the channels the configuration names (the ``alerts`` group of
``conf/``, adjusted with ``overrides``, or the guide's ``config/alerts.yaml`` given as
``config``), records the alert in the outbox of the configured database like every other alert,
and returns the :class:`~otonom_trader.alerts.engine.AlertReport` saying what each channel did.
With no channel configured the report says so (``none``); nothing is raised for a channel that
fails. Importing this module is cheap: the engine is loaded on the first call.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otonom_trader.alerts.config import AlertsConfig
    from otonom_trader.alerts.engine import AlertReport

log = logging.getLogger("otonom_trader.alerts")


def notify(
    title: str,
    body: str,
    *,
    overrides: list[str] | None = None,
    config: str | Path | AlertsConfig | None = None,
) -> AlertReport:
    """Send ``title``/``body`` now to every configured channel whose route takes an info
    message; return what each channel did.

    Raises ``ConfigError`` only for a bad configuration (an override, the alerts file)."""
    from otonom_trader.alerts.engine import AlertEngine
    from otonom_trader.config.compose import load_config
    from otonom_trader.persistence.database import Database

    _, app = load_config(list(overrides or []))
    db = Database(app.db.url, busy_timeout_ms=app.db.busy_timeout_ms)
    try:
        engine = AlertEngine(config if config is not None else app.alerts, db=db)
        report = engine.notify(title, body)
        outcomes = ", ".join(f"{o.channel}: {o.status}" for o in report.outcomes) or "no outcome"
        log.info("notifier: %r → %s", title, outcomes)
        return report
    finally:
        db.dispose()
