"""``OutboxSender``: the background thread that sends the outbox off the trading path."""

from __future__ import annotations

import threading

import pytest

from otonom_trader.alerts.sender import OutboxSender


class BlockingDelivery:
    """A ``deliver`` that blocks until released (a hung mail server), counting its passes."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.passes = 0

    def __call__(self) -> int:
        self.passes += 1
        self.entered.set()
        assert self.release.wait(timeout=30)
        return self.passes


def test_kick_returns_while_the_pass_hangs_and_later_kicks_coalesce() -> None:
    delivery = BlockingDelivery()
    sender = OutboxSender(delivery)

    sender.kick()
    assert delivery.entered.wait(timeout=10)  # the pass runs, blocked on the "server"
    for _ in range(5):
        sender.kick()  # returns at once: the caller (a cycle) never waits for the server
    busy_while_hung = sender.busy
    idle_while_hung = sender.wait_idle(0.05)
    delivery.release.set()

    assert busy_while_hung and not idle_while_hung
    assert sender.wait_idle(10)
    assert delivery.passes == 2  # the five kicks during the hung pass were served by one pass
    assert sender.close(1.0)


def test_close_gives_up_after_its_timeout_when_a_pass_hangs() -> None:
    delivery = BlockingDelivery()
    sender = OutboxSender(delivery)
    sender.kick()
    assert delivery.entered.wait(timeout=10)

    finished = sender.close(0.05)

    assert not finished  # the rows of that pass stay in the outbox for the next process
    delivery.release.set()


def test_a_failing_pass_is_logged_and_the_sender_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    results = iter([RuntimeError("database is locked"), "ok"])

    def deliver() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    sender = OutboxSender(deliver)
    sender.kick()
    assert sender.wait_idle(10)
    sender.kick()
    assert sender.wait_idle(10)

    assert sender.last_result == "ok" and sender.passes == 2
    assert "background alert delivery failed" in caplog.text
    assert sender.close(1.0)
