"""The Telegram Bot API stand-in answers like the real API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from otonom_trader.testkit.telegram_bot_api import TelegramBotAPI

TOKEN = "42:stand-in-token"


def call(
    api: TelegramBotAPI, token: str, method: str, payload: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{api.base_url}{token}/{method}",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def api() -> Any:
    with TelegramBotAPI(token=TOKEN) as server:
        yield server


def test_send_message_is_recorded_and_echoed(api: TelegramBotAPI) -> None:
    status, reply = call(api, TOKEN, "sendMessage", {"chat_id": 7, "text": "hi"})

    assert status == 200 and reply["ok"] is True
    assert reply["result"]["text"] == "hi"
    assert [(m.chat_id, m.text) for m in api.messages] == [("7", "hi")]


def test_wrong_token_is_unauthorized(api: TelegramBotAPI) -> None:
    status, reply = call(api, "1:wrong", "sendMessage", {"chat_id": 7, "text": "hi"})

    assert (status, reply["description"]) == (401, "Unauthorized")
    assert api.messages == []


def test_get_me_describes_the_bot(api: TelegramBotAPI) -> None:
    status, reply = call(api, TOKEN, "getMe")

    assert status == 200 and reply["result"]["is_bot"] is True and reply["result"]["id"] == 42


def test_outage_answers_500_and_records_nothing(api: TelegramBotAPI) -> None:
    api.fail_with = 500

    status, reply = call(api, TOKEN, "sendMessage", {"chat_id": 7, "text": "hi"})

    assert (status, reply["ok"]) == (500, False)
    assert api.messages == [] and api.requests == 1


def test_missing_chat_is_a_bad_request(api: TelegramBotAPI) -> None:
    status, reply = call(api, TOKEN, "sendMessage", {"text": "hi"})

    assert status == 400 and "chat not found" in reply["description"]


def test_get_updates_hands_out_injected_messages_until_an_offset_confirms_them(
    api: TelegramBotAPI,
) -> None:
    first = api.inject(7, "/status", username="alice")
    second = api.inject(8, "/help")

    _, unconfirmed = call(api, TOKEN, "getUpdates", {})
    _, again = call(api, TOKEN, "getUpdates", {"offset": first})
    _, after_first = call(api, TOKEN, "getUpdates", {"offset": first + 1})
    _, none_left = call(api, TOKEN, "getUpdates", {"offset": second + 1})

    assert [u["update_id"] for u in unconfirmed["result"]] == [first, second]
    message = unconfirmed["result"][0]["message"]
    assert message["chat"]["id"] == 7 and message["text"] == "/status"
    assert message["from"]["username"] == "alice"
    assert [u["update_id"] for u in again["result"]] == [first, second]
    assert [u["update_id"] for u in after_first["result"]] == [second]
    assert none_left["result"] == [] and api.pending_updates() == []
    assert api.update_offsets == [None, first, first + 1, second + 1]


def test_a_long_poll_returns_as_soon_as_a_message_arrives(api: TelegramBotAPI) -> None:
    import threading

    replies: list[dict[str, Any]] = []
    waiting = threading.Thread(
        target=lambda: replies.append(call(api, TOKEN, "getUpdates", {"timeout": 4})[1])
    )
    waiting.start()
    while not api.update_offsets:  # the poll has reached the server
        threading.Event().wait(0.01)

    api.inject(7, "/stop")
    waiting.join(timeout=5)

    assert not waiting.is_alive()
    assert [u["message"]["text"] for u in replies[0]["result"]] == ["/stop"]
