"""Alerts through Apprise: email, Telegram and any Apprise URL, via a database outbox.

>>> from otonom_trader.alerts import AlertEngine      # doctest: +SKIP
>>> alerts = AlertEngine("config/alerts.yaml")        # doctest: +SKIP
>>> alerts.notify_kill_switch("Max daily loss 5% exceeded")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The configuration models are light and the config schema needs them; everything else (the
# engine, Apprise, the outbox) is loaded on first use, so that importing the config — which
# every command does — does not import Apprise and the database layer with it.
from otonom_trader.alerts.config import (
    AlertEvent,
    AlertRouteConfig,
    AlertsConfig,
    EmailAlertConfig,
    Severity,
    TelegramAlertConfig,
)

if TYPE_CHECKING:
    from otonom_trader.alerts.channels import (
        MASKER,
        AlertChannel,
        SendResult,
        build_channels,
    )
    from otonom_trader.alerts.engine import (
        AlertEngine,
        AlertReport,
        ChannelOutcome,
        DeliveryReport,
        HealthReport,
    )
    from otonom_trader.alerts.loading import load_alerts_file

#: Where each lazily loaded name lives.
_LAZY = {
    "MASKER": "channels",
    "AlertChannel": "channels",
    "SendResult": "channels",
    "build_channels": "channels",
    "AlertEngine": "engine",
    "AlertReport": "engine",
    "ChannelOutcome": "engine",
    "DeliveryReport": "engine",
    "HealthReport": "engine",
    "load_alerts_file": "loading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
