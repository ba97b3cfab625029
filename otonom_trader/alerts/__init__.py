"""Alerts through Apprise: email, Telegram and any Apprise URL, via a database outbox.

>>> from otonom_trader.alerts import AlertEngine      # doctest: +SKIP
>>> alerts = AlertEngine("config/alerts.yaml")        # doctest: +SKIP
>>> alerts.notify_kill_switch("Max daily loss 5% exceeded")  # doctest: +SKIP
"""

from otonom_trader.alerts.channels import MASKER, AlertChannel, SendResult, build_channels
from otonom_trader.alerts.config import (
    AlertEvent,
    AlertRouteConfig,
    AlertsConfig,
    EmailAlertConfig,
    Severity,
    TelegramAlertConfig,
)
from otonom_trader.alerts.engine import (
    AlertEngine,
    AlertReport,
    ChannelOutcome,
    DeliveryReport,
    HealthReport,
)
from otonom_trader.alerts.loading import load_alerts_file

__all__ = [
    "MASKER",
    "AlertChannel",
    "AlertEngine",
    "AlertEvent",
    "AlertReport",
    "AlertRouteConfig",
    "AlertsConfig",
    "ChannelOutcome",
    "DeliveryReport",
    "EmailAlertConfig",
    "HealthReport",
    "SendResult",
    "Severity",
    "TelegramAlertConfig",
    "build_channels",
    "load_alerts_file",
]
