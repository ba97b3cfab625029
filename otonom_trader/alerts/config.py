"""Alert channels and rules (the guide's section 4), as Apprise targets.

Channel names (used by ``routes`` and shown by ``otonom-trader alerts test``): ``email``,
``telegram`` and ``url1``, ``url2``, … for the entries of ``urls`` in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Dict, List, Optional  # noqa: UP035 - OmegaConf 2.3 needs typing generics

from otonom_trader.config.errors import parse_choice, require, require_booleans, require_pct


class Severity(StrEnum):
    """How urgent an alert is, lowest first (routes pick a minimum)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for INFO … 3 for CRITICAL."""
        return list(Severity).index(self)


class AlertEvent(StrEnum):
    """What an alert is about (routes may list the events a channel receives)."""

    BROKER_ERROR = "broker_error"
    KILL_SWITCH = "kill_switch"
    PORTFOLIO = "portfolio"
    DAEMON_GAP = "daemon_gap"
    FLOW_FAILURE = "flow_failure"
    FLOW_CRASHED = "flow_crashed"
    TEST = "test"
    MESSAGE = "message"  # notify(title, body) without an event


@dataclass
class EmailAlertConfig:
    """SMTP email. ``use_tls``: STARTTLS (``mailtos://``); plain SMTP otherwise.

    Port 587 always means STARTTLS (the submission port), whatever ``use_tls`` says.
    """

    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 587
    username: Optional[str] = None  # noqa: UP045
    password: Optional[str] = field(default=None, repr=False)  # noqa: UP045
    from_addr: str = "otonom-trader@localhost"
    to_addrs: List[str] = field(default_factory=list)  # noqa: UP006
    use_tls: bool = True

    def __post_init__(self) -> None:
        require_booleans(self)
        require(0 < self.smtp_port < 65536, "smtp_port", f"must be a port, got {self.smtp_port}")
        if self.enabled:
            require(bool(self.smtp_host), "smtp_host", "is required when email is enabled")
            require(bool(self.to_addrs), "to_addrs", "must list at least one recipient")


@dataclass
class TelegramAlertConfig:
    """Telegram bot: token from @BotFather and the chat to write to."""

    enabled: bool = False
    bot_token: Optional[str] = field(default=None, repr=False)  # noqa: UP045
    chat_id: Optional[str] = None  # noqa: UP045

    def __post_init__(self) -> None:
        require_booleans(self)
        if self.enabled:
            require(bool(self.bot_token), "bot_token", "is required when telegram is enabled")
            require(bool(self.chat_id), "chat_id", "is required when telegram is enabled")
            if self.chat_id is not None:
                self.chat_id = str(self.chat_id)  # YAML reads a numeric id as an int


@dataclass
class AlertRouteConfig:
    """Which alerts one channel receives: at least ``min_severity`` and, when ``events`` is not
    empty, only those events. A channel without a route receives every alert."""

    min_severity: str = Severity.INFO.value
    events: List[str] = field(default_factory=list)  # noqa: UP006

    def __post_init__(self) -> None:
        self.min_severity = parse_choice(self.min_severity, Severity, "min_severity")
        self.events = [parse_choice(e, AlertEvent, "events") for e in self.events]

    def accepts(self, event: AlertEvent, severity: Severity) -> bool:
        """True when an alert of this event and severity goes to the channel."""
        if Severity(severity).rank < Severity(self.min_severity).rank:
            return False
        return not self.events or event in self.events


@dataclass
class AlertsConfig:
    """Where alerts go and when they fire.

    ``urls``: any other Apprise URL (Slack, Discord, webhooks, …). ``max_gap_minutes``: alert
    when no daemon run completed for this long; ``null`` (the default) derives it from the
    schedule: two missed cycles of the strategy's timeframe plus half a cycle (150 minutes for
    1h candles, see ``otonom_trader.alerts.schedule``), so a healthy daemon never alerts.
    ``drawdown_alert_pct``: portfolio alert level.
    ``dedupe_cooldown_minutes``: the same alert is not re-sent within this window.
    ``routes``: per channel name (``email``, ``telegram``, ``url1`` …) the severities/events it
    receives. ``timeout_seconds``: connect/read timeout of one delivery (kept short: alerts must
    not hold up a trading cycle). ``retry_backoff_minutes``: wait after the first failed delivery,
    doubled after each further failure (capped at 60 minutes). ``max_deliveries_per_call``: the
    most outbox rows one call tries to send (bounded work per cycle).
    """

    enabled: bool = True
    email: EmailAlertConfig = field(default_factory=EmailAlertConfig)
    telegram: TelegramAlertConfig = field(default_factory=TelegramAlertConfig)
    urls: List[str] = field(default_factory=list, repr=False)  # noqa: UP006
    max_gap_minutes: Optional[float] = None  # noqa: UP045 - OmegaConf needs typing.Optional
    drawdown_alert_pct: float = 50.0
    dedupe_cooldown_minutes: float = 60.0
    rate_limit_per_channel_per_hour: int = 30
    max_attempts: int = 20
    routes: Dict[str, AlertRouteConfig] = field(default_factory=dict)  # noqa: UP006
    timeout_seconds: float = 5.0
    retry_backoff_minutes: float = 1.0
    max_deliveries_per_call: int = 20

    @property
    def gap_limit_minutes(self) -> float:
        """The gap that raises the "daemon has not run" alert: ``max_gap_minutes``, or when that
        is unset and nothing resolved it from a schedule, two missed hourly cycles."""
        from otonom_trader.alerts.schedule import FALLBACK_GAP_MINUTES

        return self.max_gap_minutes if self.max_gap_minutes is not None else FALLBACK_GAP_MINUTES

    def __post_init__(self) -> None:
        require_booleans(self)
        require(
            self.max_gap_minutes is None or self.max_gap_minutes > 0,
            "max_gap_minutes",
            f"must be positive (or null: from the schedule), got {self.max_gap_minutes}",
        )
        require_pct(self.drawdown_alert_pct, "drawdown_alert_pct")
        require(
            self.dedupe_cooldown_minutes >= 0,
            "dedupe_cooldown_minutes",
            f"must not be negative, got {self.dedupe_cooldown_minutes}",
        )
        require(
            self.rate_limit_per_channel_per_hour >= 1,
            "rate_limit_per_channel_per_hour",
            f"must be at least 1, got {self.rate_limit_per_channel_per_hour}",
        )
        require(
            self.max_attempts >= 1, "max_attempts", f"must be at least 1, got {self.max_attempts}"
        )
        require(
            0 < self.timeout_seconds <= 60,
            "timeout_seconds",
            f"must be in (0, 60] seconds, got {self.timeout_seconds}",
        )
        require(
            self.retry_backoff_minutes > 0,
            "retry_backoff_minutes",
            f"must be positive, got {self.retry_backoff_minutes}",
        )
        require(
            self.max_deliveries_per_call >= 1,
            "max_deliveries_per_call",
            f"must be at least 1, got {self.max_deliveries_per_call}",
        )
        known = {"email", "telegram", *(f"url{i + 1}" for i in range(len(self.urls)))}
        for name in self.routes:
            require(
                name in known,
                "routes",
                f"no channel named {name!r}; channels are {', '.join(sorted(known))}",
            )
