"""Values of the alert tests — the secrets they must never see leak — and the servers they use
(the SMTP servers and the clock live in ``otonom_trader.testkit``)."""

from __future__ import annotations

from otonom_trader.testkit.clock import ManualClock
from otonom_trader.testkit.smtp import LocalSMTPServer, ReceivedMail, SilentServer, free_port

__all__ = [
    "BOT_TOKEN",
    "CHAT_ID",
    "SMTP_PASSWORD",
    "SMTP_USER",
    "LocalSMTPServer",
    "ManualClock",
    "ReceivedMail",
    "SilentServer",
    "free_port",
]

SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-Pa55word-s3cret"
BOT_TOKEN = "123456789:AAF-secretBotToken-XYZ987"
CHAT_ID = "424242"
