"""Alert channels: one Apprise URL each, built from ``AlertsConfig``, delivered one at a time.

Each channel gets its own ``Apprise`` object, so a failed delivery is known per channel and only
that channel is retried. Apprise reports failure by a falsy result, not an exception; the reason
is only in its log, so a delivery captures Apprise's warnings and keeps them (masked) as the
error text.

Secrets (SMTP password, bot token, every URL's credentials) are registered with
:class:`SecretMasker`, whose logging filter sits on the ``apprise`` and ``urllib3`` loggers:
their DEBUG lines print request URLs, and Telegram's URL contains the bot token.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from otonom_trader.alerts.config import AlertsConfig, EmailAlertConfig, TelegramAlertConfig
from otonom_trader.config.errors import ConfigError

if TYPE_CHECKING:
    from apprise import NotifyType

# Apprise (about 0.1 s to import) is loaded when a channel is built or sends, so a cycle with
# no channel configured never imports it.

log = logging.getLogger(__name__)

MASK = "****"
# Loggers that print request URLs or payloads of the libraries that carry our secrets.
_LEAKY_LOGGERS = ("apprise", "urllib3.connectionpool", "requests")


class SecretMasker(logging.Filter):
    """Replaces every registered secret by ``****`` in text and in log records.

    One process-wide instance (:data:`MASKER`) is attached to the loggers of Apprise, urllib3
    and requests, so even their DEBUG lines never show a token or a password.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        """Register secrets (short or empty strings are ignored: masking them would garble)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= 4:
                    self._secrets.add(secret)
                    # URLs carry secrets percent-encoded as well
                    self._secrets.add(quote(secret, safe=""))

    def mask(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``****`` (longest first)."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the formatted message of ``record`` (always lets the record through)."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logger's problem, not ours
            return True
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True

    def install(self) -> None:
        """Attach to the leaky loggers (idempotent)."""
        for name in _LEAKY_LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


MASKER = SecretMasker()


@dataclass(frozen=True)
class SendResult:
    """The outcome of one delivery attempt on one channel."""

    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class AlertChannel:
    """One configured destination. ``url`` holds secrets and is never printed; ``masked_url``
    is ``url(privacy=True)`` for logs and tables."""

    name: str
    url: str = field(repr=False)
    masked_url: str

    def send(self, title: str, body: str, notify_type: NotifyType | None = None) -> SendResult:
        """Deliver one message (``notify_type`` default: info). Never raises: failure is
        ``SendResult(ok=False, error=…)``."""
        import apprise
        from apprise import NotifyFormat, NotifyType

        notify_type = notify_type or NotifyType.INFO
        notifier = apprise.Apprise()
        try:
            if not notifier.add(self.url):
                return SendResult(False, "Apprise refused the URL")
            # Apprise logs why a delivery failed (and returns only False): keep its warnings
            # and the low-level cause it logs at DEBUG ("Socket Exception: … refused").
            with apprise.LogCapture(level=logging.DEBUG, fmt="%(levelno)s|%(message)s") as cap:
                result = notifier.notify(
                    body=body, title=title, notify_type=notify_type, body_format=NotifyFormat.TEXT
                )
                captured = cap.getvalue()
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not escape into trading code
            return SendResult(False, MASKER.mask(f"{type(exc).__name__}: {exc}"))
        if result:
            return SendResult(True)
        return SendResult(False, MASKER.mask(_complaint(captured) or f"delivery failed ({result})"))


def _complaint(captured: str) -> str:
    """The warnings (and socket-level causes) of a captured Apprise log, on one line."""
    lines: list[str] = []
    for entry in captured.splitlines():
        level, _, message = entry.partition("|")
        if not level.isdigit():
            continue  # a continuation line (e.g. a response body)
        if int(level) >= logging.WARNING or message.startswith("Socket Exception"):
            lines.append(message.strip())
    return "; ".join(lines[-3:])


def _timeouts(cfg: AlertsConfig) -> str:
    return f"cto={cfg.timeout_seconds:g}&rto={cfg.timeout_seconds:g}"


def email_url(email: EmailAlertConfig, cfg: AlertsConfig) -> str:
    """The Apprise URL of the email section: ``mailtos://`` (STARTTLS) on port 587 or with
    ``use_tls``, plain ``mailto://`` otherwise; the message goes out as plain text."""
    secure = email.use_tls or email.smtp_port == 587
    scheme = "mailtos" if secure else "mailto"
    credentials = ""
    if email.username:
        credentials = quote(email.username, safe="")
        if email.password:
            credentials += ":" + quote(email.password, safe="")
        credentials += "@"
    recipients = ",".join(quote(addr, safe="@") for addr in email.to_addrs)
    query = (
        f"smtp={quote(email.smtp_host, safe='')}&from={quote(email.from_addr, safe='@')}"
        f"&to={recipients}&format=text&{_timeouts(cfg)}"
    )
    if secure:
        query += "&mode=starttls"
    return f"{scheme}://{credentials}{email.smtp_host}:{email.smtp_port}?{query}"


def telegram_url(telegram: TelegramAlertConfig, cfg: AlertsConfig) -> str:
    """The Apprise URL of the telegram section: ``tgram://TOKEN/CHAT_ID``."""
    return f"tgram://{telegram.bot_token}/{telegram.chat_id}?{_timeouts(cfg)}"


def _with_timeouts(url: str, cfg: AlertsConfig) -> str:
    """Add our short timeouts to a user's URL unless it sets its own."""
    query = urlsplit(url).query
    if "cto=" in query or "rto=" in query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{_timeouts(cfg)}"


def _channel(name: str, url: str, where: str, source: str) -> AlertChannel:
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
        raise ConfigError(
            f"Apprise does not accept this {scheme}:// URL (check its form at "
            "https://appriseit.com/services/)",
            key=f"{source}{where}",
        )
    # The query string is Apprise's defaults spelled out: noise in logs and tables.
    masked = str(plugin.url(privacy=True)).split("?", 1)[0]
    return AlertChannel(name=name, url=url, masked_url=masked)


def build_channels(cfg: AlertsConfig, source: str = "alerts.") -> list[AlertChannel]:
    """Every enabled channel of ``cfg`` (none when ``cfg.enabled`` is false).

    Registers each channel's secrets with :data:`MASKER`. Raises ``ConfigError`` naming the key
    (``source`` prefixes it: ``alerts.`` or ``config/alerts.yaml: ``) when Apprise refuses one.
    """
    MASKER.install()
    if not cfg.enabled:
        return []
    channels: list[AlertChannel] = []
    if cfg.email.enabled:
        MASKER.add(cfg.email.password)
        channels.append(_channel("email", email_url(cfg.email, cfg), "email", source))
    if cfg.telegram.enabled:
        MASKER.add(cfg.telegram.bot_token)
        channels.append(_channel("telegram", telegram_url(cfg.telegram, cfg), "telegram", source))
    for index, url in enumerate(cfg.urls):
        _register_url_secrets(url)
        channels.append(
            _channel(f"url{index + 1}", _with_timeouts(url, cfg), f"urls[{index}]", source)
        )
    return channels


def _register_url_secrets(url: str) -> None:
    """A free-form URL's password and token-like segments may be secrets (Slack and Discord
    tokens live in the host and path); register them so none can reach a log line."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    MASKER.add(parts.password)
    for segment in [parts.netloc.rsplit("@", 1)[-1], *parts.path.split("/")]:
        # Tokens are long, dot-free and contain digits; host names and words like "webhooks"
        # are not masked (masking them would garble every line that mentions them).
        if len(segment) >= 8 and "." not in segment and any(c.isdigit() for c in segment):
            MASKER.add(segment)
