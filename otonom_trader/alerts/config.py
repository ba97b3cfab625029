"""Alert channels and rules (the guide's section 4), as Apprise targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional  # noqa: UP035 - OmegaConf 2.3 needs typing generics

from otonom_trader.config.errors import require, require_pct


@dataclass
class EmailAlertConfig:
    """SMTP email. ``use_tls``: STARTTLS (``mailtos://``); plain SMTP otherwise."""

    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 587
    username: Optional[str] = None  # noqa: UP045
    password: Optional[str] = field(default=None, repr=False)  # noqa: UP045
    from_addr: str = "otonom-trader@localhost"
    to_addrs: List[str] = field(default_factory=list)  # noqa: UP006
    use_tls: bool = True

    def __post_init__(self) -> None:
        require(0 < self.smtp_port < 65536, "smtp_port", f"must be a port, got {self.smtp_port}")
        if self.enabled:
            require(bool(self.to_addrs), "to_addrs", "must list at least one recipient")


@dataclass
class TelegramAlertConfig:
    """Telegram bot: token from @BotFather and the chat to write to."""

    enabled: bool = False
    bot_token: Optional[str] = field(default=None, repr=False)  # noqa: UP045
    chat_id: Optional[str] = None  # noqa: UP045

    def __post_init__(self) -> None:
        if self.enabled:
            require(bool(self.bot_token), "bot_token", "is required when telegram is enabled")
            require(bool(self.chat_id), "chat_id", "is required when telegram is enabled")


@dataclass
class AlertsConfig:
    """Where alerts go and when they fire.

    ``urls``: any other Apprise URL (Slack, Discord, webhooks, …). ``max_gap_minutes``: alert
    when no daemon run completed for this long. ``drawdown_alert_pct``: portfolio alert level.
    ``dedupe_cooldown_minutes``: the same alert is not re-sent within this window.
    """

    enabled: bool = True
    email: EmailAlertConfig = field(default_factory=EmailAlertConfig)
    telegram: TelegramAlertConfig = field(default_factory=TelegramAlertConfig)
    urls: List[str] = field(default_factory=list, repr=False)  # noqa: UP006
    max_gap_minutes: float = 30.0
    drawdown_alert_pct: float = 50.0
    dedupe_cooldown_minutes: float = 60.0
    rate_limit_per_channel_per_hour: int = 30
    max_attempts: int = 20

    def __post_init__(self) -> None:
        require(self.max_gap_minutes > 0, "max_gap_minutes", f"must be positive, got {self.max_gap_minutes}")
        require_pct(self.drawdown_alert_pct, "drawdown_alert_pct")
        require(self.dedupe_cooldown_minutes >= 0, "dedupe_cooldown_minutes",
                f"must not be negative, got {self.dedupe_cooldown_minutes}")
        require(self.rate_limit_per_channel_per_hour >= 1, "rate_limit_per_channel_per_hour",
                f"must be at least 1, got {self.rate_limit_per_channel_per_hour}")
        require(self.max_attempts >= 1, "max_attempts", f"must be at least 1, got {self.max_attempts}")
