"""A local stand-in of the Telegram Bot API, for Apprise's real Telegram plugin and for bots.

Serves ``POST/GET /bot<TOKEN>/sendMessage``, ``/bot<TOKEN>/getMe`` and ``/bot<TOKEN>/getUpdates``
on 127.0.0.1 with the Bot API's reply shapes (``{"ok": true, "result": …}``; 401 for an unknown
token, 400 for a missing chat), records every accepted message, and can be switched to answer
500 (or any status) to play an outage. Point Apprise at it with
:meth:`TelegramBotAPI.patch_apprise`::

    with TelegramBotAPI(token="123:abc") as api, api.patch_apprise():
        ...  # tgram://123:abc/42 now posts here
        assert api.messages[0].chat_id == "42"

Incoming messages (what a person types to the bot) are queued with :meth:`TelegramBotAPI.inject`
and handed out by ``getUpdates`` as the Bot API does: every update with ``update_id >= offset``;
an ``offset`` confirms (and drops) the updates before it; ``timeout`` > 0 is long polling — the
call waits until an update arrives or the timeout ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class TelegramMessage:
    """One message the stand-in accepted."""

    message_id: int
    chat_id: str
    text: str
    parse_mode: str | None
    payload: dict[str, Any]


class TelegramBotAPI:
    """The stand-in server. ``token``: the only bot token it accepts (``None``: any).

    ``fail_with``: when set (e.g. 500), every ``sendMessage`` answers that status and records
    nothing; ``requests`` counts every call, answered or failed.
    """

    def __init__(self, token: str | None = None, bot_username: str = "otonom_test_bot") -> None:
        self.token = token
        self.bot_username = bot_username
        self.messages: list[TelegramMessage] = []
        self.requests = 0
        self.fail_with: int | None = None
        #: the ``offset`` of every ``getUpdates`` call, in order (``None``: none given)
        self.update_offsets: list[int | None] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What replaces ``https://api.telegram.org/bot`` (the token follows directly)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> TelegramBotAPI:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="telegram-bot-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TelegramBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def patch_apprise(self) -> Iterator[None]:
        """Point Apprise's Telegram plugin (``NotifyTelegram.notify_url``) here, then back."""
        from apprise.plugins.telegram import NotifyTelegram

        original = NotifyTelegram.notify_url
        NotifyTelegram.notify_url = self.base_url
        try:
            yield
        finally:
            NotifyTelegram.notify_url = original

    def inject(
        self, chat_id: int | str, text: str, *, username: str | None = None, date: int = 0
    ) -> int:
        """Queue a message from chat ``chat_id`` (a private chat with that user); returns its
        ``update_id``. A waiting long poll wakes up."""
        with self._arrived:
            update_id = self._next_update_id
            self._next_update_id += 1
            sender: dict[str, Any] = {"id": int(chat_id), "is_bot": False, "first_name": "user"}
            if username:
                sender["username"] = username
            self._updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "from": sender,
                        "chat": {"id": int(chat_id), "type": "private"},
                        "date": date,
                        "text": text,
                    },
                }
            )
            self._arrived.notify_all()
        return update_id

    def pending_updates(self) -> list[dict[str, Any]]:
        """The updates not yet confirmed by an ``offset``."""
        with self._lock:
            return list(self._updates)

    def sent_to(self, chat_id: int | str) -> list[str]:
        """The texts sent to one chat, in order."""
        with self._lock:
            return [m.text for m in self.messages if m.chat_id == str(chat_id)]

    def texts(self) -> list[str]:
        """The text of every accepted message, in order."""
        with self._lock:
            return [m.text for m in self.messages]

    # -- HTTP -------------------------------------------------------------------------------

    def _handle(
        self, method: str, path: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
        parts = urlsplit(path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 2 or not segments[0].startswith("bot"):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, function = segments[0][3:], segments[1]
        if self.token is not None and token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if function == "getMe":
            return 200, {
                "ok": True,
                "result": {
                    "id": int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1,
                    "is_bot": True,
                    "first_name": "otonom",
                    "username": self.bot_username,
                },
            }
        if function == "getUpdates":
            payload = _parse_payload(method, parts.query, body, content_type)
            return 200, {"ok": True, "result": self._get_updates(payload)}
        if function != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method"}
        if self.fail_with is not None:
            return self.fail_with, {
                "ok": False,
                "error_code": self.fail_with,
                "description": "Internal Server Error" if self.fail_with >= 500 else "Error",
            }
        payload = _parse_payload(method, parts.query, body, content_type)
        chat_id = payload.get("chat_id")
        text = payload.get("text")
        if chat_id in (None, ""):
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: chat not found",
            }
        if not text:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        with self._lock:
            message = TelegramMessage(
                message_id=len(self.messages) + 1,
                chat_id=str(chat_id),
                text=str(text),
                parse_mode=payload.get("parse_mode"),
                payload=payload,
            )
            self.messages.append(message)
        return 200, {
            "ok": True,
            "result": {
                "message_id": message.message_id,
                "chat": {"id": message.chat_id, "type": "private"},
                "date": 0,
                "text": message.text,
            },
        }

    def _get_updates(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(payload["offset"]) if payload.get("offset") not in (None, "") else None
        timeout = float(payload.get("timeout") or 0)
        limit = int(payload.get("limit") or 100)
        with self._arrived:
            self.update_offsets.append(offset)
            if offset is not None:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and timeout > 0:
                self._arrived.wait_for(lambda: bool(self._updates), timeout=timeout)
            return list(self._updates[:limit])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, reply = api._handle(  # noqa: SLF001
                    method, self.path, body, self.headers.get("Content-Type") or ""
                )
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                # The request line holds the bot token: never print it.
                return

        return Handler


def _parse_payload(method: str, query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """The Bot API takes JSON, form data or query parameters alike."""
    fields: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if body:
        if "json" in content_type:
            try:
                loaded = json.loads(body)
            except ValueError:
                loaded = {}
            if isinstance(loaded, dict):
                fields.update(loaded)
        else:
            fields.update({k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()})
    return fields
