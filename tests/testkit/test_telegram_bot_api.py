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
