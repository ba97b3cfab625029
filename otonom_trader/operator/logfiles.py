"""Log files under ``$OTONOM_HOME/logs/``: rotated by size, secrets masked.

    install_file_logging(otonom_home(), configured_secrets(app))

writes every record of the ``otonom_trader`` loggers (INFO and up; warnings of every library)
to ``$OTONOM_HOME/logs/otonom-trader-activity.log``, rotated at ``max_bytes`` with ``backups``
old files kept (``…log.1`` … ``…log.5``). The tracebacks of internal errors keep their own file
(``otonom-trader.log``, :mod:`otonom_trader.internal_errors`).

Masking: a filter on the file handler replaces, before a line is written,

* every secret given to :func:`install_file_logging` (API key and secret, SMTP password, bot
  token, passwords of alert and database URLs — see :func:`configured_secrets`),
* every secret the alert channels registered with :data:`otonom_trader.alerts.channels.MASKER`
  (including the token-like path segments of webhook URLs),
* the password of any ``scheme://user:password@host`` URL and anything shaped like a Telegram
  bot token (``123456:AA…``), known or not.

Calling it again (``serve`` after a CLI command in one process) adds the new secrets and keeps
the one handler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from otonom_trader.alerts.channels import MASK, MASKER, SecretMasker

if TYPE_CHECKING:
    from otonom_trader.config.schema import AppConfig

LOG_FILE_NAME = "otonom-trader-activity.log"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"

# scheme://user:password@host → scheme://user:****@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^/\s:@]*:)(?P<secret>[^@\s/]+)@")
# A Telegram bot token: the bot id, a colon, 30+ URL-safe characters.
_BOT_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{30,}")


class LogFileMasker(SecretMasker):
    """The file handler's filter: its own secrets, the alert channels' and secret-shaped text."""

    def mask(self, text: str) -> str:
        """``text`` without any known or secret-shaped secret."""
        text = MASKER.mask(super().mask(text))
        text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
        return _BOT_TOKEN.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the message and any traceback text of ``record`` (always lets it through)."""
        super().filter(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True


class _ActivityFileHandler(RotatingFileHandler):
    """Marks the handler this module installed (so a second call reuses it)."""


def log_file_path(home: Path) -> Path:
    """``<home>/logs/otonom-trader-activity.log``."""
    return Path(home) / "logs" / LOG_FILE_NAME


def install_file_logging(
    home: Path,
    secrets: Iterable[str | None] = (),
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
) -> Path:
    """Attach the rotating, masking log file to the root logger; return its path.

    ``otonom_trader`` loggers are set to INFO (if not set lower) so their cycle lines reach the
    file; other libraries keep their levels (their warnings are written). Idempotent: a second
    call registers more secrets with the installed handler instead of adding another.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _ActivityFileHandler):
            for existing in handler.filters:
                if isinstance(existing, LogFileMasker):
                    existing.add(*secrets)
            return Path(handler.baseFilename)
    path = log_file_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _ActivityFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
    )
    masker = LogFileMasker()
    masker.add(*secrets)
    handler.addFilter(masker)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    ours = logging.getLogger("otonom_trader")
    if ours.level == logging.NOTSET or ours.level > logging.INFO:
        ours.setLevel(logging.INFO)
    return path


def uninstall_file_logging() -> None:
    """Detach and close the handler :func:`install_file_logging` attached (tests, shutdown)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ActivityFileHandler):
            root.removeHandler(handler)
            handler.close()


def configured_secrets(app: AppConfig) -> list[str]:
    """Every secret in the configuration: broker key and secret, SMTP password, bot token, and
    the passwords in the database and alert URLs."""
    secrets = [
        app.broker.api_key,
        app.broker.api_secret,
        app.alerts.email.password,
        app.alerts.telegram.bot_token,
    ]
    for url in [app.db.url, *app.alerts.urls]:
        if not url:
            continue
        try:
            secrets.append(urlsplit(url).password)
        except ValueError:
            continue
    return [secret for secret in secrets if secret]
