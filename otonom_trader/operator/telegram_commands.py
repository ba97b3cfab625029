"""Two-way Telegram: the operator's commands, answered for the configured chats only.

    bot = TelegramCommandBot(app, db)        # token and chat id: app.alerts.telegram
    stop = threading.Event()
    threading.Thread(target=bot.run, args=(stop,), daemon=True).start()
    ...
    stop.set()                               # run() returns within one long poll

Commands (``/cmd@botname`` works too, as Telegram sends it in groups):

* ``/status`` — per book: equity, cash, today's PnL, unrealized PnL, guard, last run;
* ``/positions`` — open positions: quantity, average entry, mark, unrealized PnL;
* ``/profit`` — realized and unrealized PnL, fees, win rate;
* ``/stop [reason]`` — trip the kill-switch of every book of every account, and of books first
  used later: :func:`otonom_trader.guardrails.cli.emergency_stop`, the same function as
  ``otonom-trader kill-switch trip`` without a scope (audited, announced);
* ``/resume`` — asks for a confirmation; ``/resume confirm`` within ``confirm_window_s`` resets
  every kill-switch (:func:`~otonom_trader.guardrails.cli.emergency_reset`, as ``kill-switch
  reset``);
* ``/help``.

A message from a chat that is not configured gets **no reply** and changes nothing (it is logged
with its chat id only). The numbers are the operator views' (:mod:`otonom_trader.operator.views`:
the database, marks of the latest snapshot; no exchange is called). Updates are fetched with
``getUpdates`` long polling; each poll's ``offset`` confirms the updates handled before it, so a
command is handled once. (Updates handled just before a crash, not yet confirmed, come again
after a restart: a second ``/stop`` is harmless, and ``/resume confirm`` needs a fresh
``/resume`` of the same process.) The bot token is in request URLs only: it is registered with the
secret masker and never written to a reply or a log line.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console

from otonom_trader.alerts.channels import MASKER
from otonom_trader.config.errors import ConfigError
from otonom_trader.operator import render, views
from otonom_trader.persistence.database import Database

if TYPE_CHECKING:
    from otonom_trader.config.schema import AppConfig

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org/bot"
MAX_TEXT = 4000  # Telegram refuses messages over 4096 characters
HELP = (
    "Commands:\n"
    "/status - equity, cash, today's PnL, guard and last run per book\n"
    "/positions - open positions with entry, mark and unrealized PnL\n"
    "/profit - realized/unrealized PnL, fees, win rate\n"
    "/stop [reason] - halt trading on every account (kill-switch)\n"
    "/resume - reset the kill-switch (asks for a confirmation)\n"
    "/help - this list"
)


class TelegramError(RuntimeError):
    """The Bot API could not be reached or refused a call (the text never holds the token)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TelegramCommandBot:
    """Answers the operator's Telegram commands (see the module docstring).

    ``app``: the configuration (``alerts.telegram`` gives the bot token and the chat allowed to
    command; ``guardrails`` and ``alerts`` are used by ``/stop`` and ``/resume`` as by the
    kill-switch CLI). ``db``: the trading database. ``allowed_chat_ids``: the chats that may
    command (default: ``alerts.telegram.chat_id``). ``api_base``: the Bot API URL up to the
    token (the local stand-in's ``base_url`` in tests). ``poll_timeout_s``: how long one
    ``getUpdates`` waits for a message (``run`` notices ``stop`` within this). ``clock``: the
    time of replies and of the ``/resume`` confirmation window.

    Raises ``ConfigError`` when no bot token or no allowed chat is configured.
    """

    def __init__(
        self,
        app: AppConfig,
        db: Database,
        *,
        allowed_chat_ids: Iterable[str | int] | None = None,
        api_base: str = TELEGRAM_API,
        poll_timeout_s: float = 25.0,
        confirm_window_s: float = 120.0,
        retry_wait_s: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        token = app.alerts.telegram.bot_token
        if not token:
            raise ConfigError("is required for Telegram commands", key="alerts.telegram.bot_token")
        chats = (
            [app.alerts.telegram.chat_id] if allowed_chat_ids is None else list(allowed_chat_ids)
        )
        self.allowed_chat_ids = frozenset(str(chat).strip() for chat in chats if chat)
        if not self.allowed_chat_ids:
            raise ConfigError("is required for Telegram commands", key="alerts.telegram.chat_id")
        MASKER.add(token)
        MASKER.install()
        self.app = app
        self.db = db
        self._url = f"{api_base}{token}/"
        self.poll_timeout_s = poll_timeout_s
        self.confirm_window = timedelta(seconds=confirm_window_s)
        self.retry_wait_s = retry_wait_s
        self.clock = clock
        self.offset: int | None = None
        self._resume_asked: dict[str, datetime] = {}

    @classmethod
    def from_config(cls, app: AppConfig, db: Database, **options: Any) -> TelegramCommandBot | None:
        """The bot when ``alerts.telegram`` is enabled (token and chat id are then required by
        the config itself), else ``None``; ``options`` as for the constructor."""
        if not app.alerts.telegram.enabled:
            return None
        return cls(app, db, **options)

    # ------------------------------------------------------------------ polling

    def run(self, stop: threading.Event) -> None:
        """Long-poll and answer until ``stop`` is set. An unreachable API is logged (masked)
        and retried after ``retry_wait_s``; a bug in one command is logged and answered with
        one line, and the loop goes on."""
        log.info(
            "telegram commands: listening for chats %s", ", ".join(sorted(self.allowed_chat_ids))
        )
        while not stop.is_set():
            try:
                self.poll_once(self.poll_timeout_s)
            except TelegramError as exc:
                log.warning("telegram commands: %s; retrying in %.0fs", exc, self.retry_wait_s)
                stop.wait(self.retry_wait_s)

    def poll_once(self, timeout_s: float = 0.0) -> int:
        """Fetch the waiting updates (waiting up to ``timeout_s`` for one), answer each and
        confirm it; returns how many updates were handled."""
        payload: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": ["message"]}
        if self.offset is not None:
            payload["offset"] = self.offset
        updates = self._call("getUpdates", payload, wait_s=timeout_s)
        for update in updates:
            self.offset = int(update["update_id"]) + 1
            self._handle_update(update)
        return len(updates)

    def _handle_update(self, update: dict[str, Any]) -> None:
        message = update.get("message") or {}
        chat_id = str((message.get("chat") or {}).get("id", ""))
        text = message.get("text")
        if chat_id not in self.allowed_chat_ids:
            log.warning(
                "telegram commands: ignored a message from chat %s (not configured)", chat_id
            )
            return
        if not isinstance(text, str):
            return
        sender = (message.get("from") or {}).get("username")
        try:
            reply = self.answer(chat_id, text, sender=sender)
        except Exception as exc:  # noqa: BLE001 - one bad command must not stop the bot
            log.exception("telegram commands: %r failed", text.split()[0][:32] if text else "")
            reply = f"That failed: {type(exc).__name__}. The details are in the log file."
        if reply:
            self.send(chat_id, reply)

    # ------------------------------------------------------------------ commands

    def answer(self, chat_id: str, text: str, *, sender: str | None = None) -> str | None:
        """The reply to ``text`` from an allowed chat (``None``: nothing to say)."""
        words = text.strip().split(maxsplit=1)
        if not words or not words[0].startswith("/"):
            return "Send /help for the commands."
        command = words[0].split("@", 1)[0].lower()
        rest = words[1] if len(words) > 1 else ""
        now = self.clock()
        if command in ("/help", "/start"):
            return HELP
        if command == "/status":
            return status_text(views.all_statuses(self.db, now=now, guardrails=self.app.guardrails))
        if command == "/positions":
            return positions_text(views.all_statuses(self.db, now=now))
        if command == "/profit":
            return profit_text(views.all_profits(self.db, now=now))
        actor = f"telegram:{'@' + sender if sender else chat_id}"[:64]
        if command == "/stop":
            return self._stop(rest, actor, now)
        if command == "/resume":
            return self._resume(chat_id, rest, actor, now)
        return f"Unknown command {command[:32]}. Send /help for the commands."

    def _stop(self, reason: str, actor: str, now: datetime) -> str:
        from otonom_trader.guardrails.cli import emergency_stop

        reason = " ".join(reason.split())[:480] or "stopped from Telegram"
        outcomes = emergency_stop(
            self.app, self.db, f"telegram: {reason}", actor, now, self._quiet_console()
        )
        books = [book for book, _ in outcomes if book != "*"]
        return (
            f"STOPPED: kill-switch tripped on every book ({len(books)} now, and any book first "
            f"used later). Reason: {reason}\nNo new orders until /resume."
        )

    def _resume(self, chat_id: str, rest: str, actor: str, now: datetime) -> str:
        from otonom_trader.guardrails.cli import emergency_reset

        if rest.strip().lower() != "confirm":
            halted = [s.book for s in views.all_statuses(self.db, now=now) if s.guard.active]
            everything = _all_books_halted(self.db)
            if not halted and not everything:
                self._resume_asked.pop(chat_id, None)
                return "Nothing is halted: every kill-switch is clear."
            self._resume_asked[chat_id] = now
            minutes = self.confirm_window.total_seconds() / 60
            return (
                f"Halted: {', '.join(halted) or 'every book'}.\n"
                f"Reply /resume confirm within {minutes:g} min to reset every kill-switch "
                "and let trading go on."
            )
        asked = self._resume_asked.pop(chat_id, None)
        if asked is None or now - asked > self.confirm_window:
            return "No /resume is waiting for a confirmation (or it expired): send /resume first."
        outcomes = emergency_reset(
            self.app, self.db, "telegram: resume confirmed", actor, now, self._quiet_console()
        )
        cleared = [book for book, changed in outcomes if changed and book != "*"]
        return (
            "RESUMED: every kill-switch reset"
            + (f" ({', '.join(cleared)})" if cleared else "")
            + ". Trading goes on at the next cycle."
        )

    def _quiet_console(self) -> Console:
        """What the kill-switch functions print (alert delivery) goes to the log, not a chat."""
        return Console(file=_LogWriter(), width=200, highlight=False, color_system=None)

    # ------------------------------------------------------------------ Bot API

    def send(self, chat_id: str, text: str) -> None:
        """Send ``text`` (plain, trimmed to Telegram's limit, secrets masked) to ``chat_id``."""
        text = MASKER.mask(text)
        if len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 2] + "\n…"
        self._call("sendMessage", {"chat_id": chat_id, "text": text}, wait_s=0)

    def _call(self, method: str, payload: dict[str, Any], *, wait_s: float) -> Any:
        request = urllib.request.Request(
            self._url + method,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=wait_s + 10) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            raise TelegramError(f"{method}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise TelegramError(MASKER.mask(f"{method}: {type(exc).__name__}: {exc}")) from None
        if not isinstance(body, dict) or not body.get("ok"):
            raise TelegramError(f"{method}: the Bot API answered {str(body)[:200]}")
        return body.get("result")


class _LogWriter(io.StringIO):
    """A console file whose lines go to the log at INFO."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                log.info("telegram commands: %s", line.strip())
        return len(text)


def _all_books_halted(db: Database) -> bool:
    from otonom_trader.guardrails.config import GuardrailConfig
    from otonom_trader.guardrails.kill_switch import ALL_BOOKS, KillSwitch

    return KillSwitch(db, GuardrailConfig(), ALL_BOOKS).detail().active


# --------------------------------------------------------------------------- texts


def status_text(statuses: list[views.BookStatus]) -> str:
    """``/status``: a few lines per book."""
    if not statuses:
        return "No book yet: no cycle has run."
    blocks = []
    for s in statuses:
        blocks.append(
            f"{s.book} ({s.quote_asset})\n"
            f"equity {render.money(s.equity)} · cash {render.money(s.cash)}\n"
            f"today {render.signed(s.today_pnl)} · unrealized {render.signed(s.unrealized_pnl)}"
            f" · {len(s.positions)} open\n"
            f"guard: {render.guard_text(s)}\n"
            f"last run: {render.last_run_text(s)}"
        )
    return "\n\n".join(blocks)


def positions_text(statuses: list[views.BookStatus]) -> str:
    """``/positions``: one line per open position, grouped by book."""
    blocks = []
    for s in statuses:
        if not s.positions:
            continue
        lines = [f"{s.book} (marks {render.when(s.marked_at)} UTC)"]
        for p in s.positions:
            pnl = render.signed(p.unrealized_pnl) if p.mark_price is not None else "no mark"
            lines.append(
                f"{p.symbol} {render.price(p.quantity)} @ {render.price(p.avg_entry_price)}"
                f" → {render.price(p.mark_price)}: {pnl}"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "No open positions."


def profit_text(profits: list[views.BookProfit]) -> str:
    """``/profit``: totals per book."""
    if not profits:
        return "No book yet: no cycle has run."
    return "\n\n".join(
        f"{p.book} ({p.quote_asset})\n"
        f"realized {render.signed(p.realized_pnl)} · unrealized {render.signed(p.unrealized_pnl)}"
        f"\ntotal {render.signed(p.total_pnl)} · fees {render.money(p.fees)}\n"
        f"win rate {render.win_rate_text(p)}"
        for p in profits
    )
