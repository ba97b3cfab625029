"""Fixtures of the ccxt broker tests: CcxtBrokers routed to the started local exchanges.

``local_binance`` / ``local_bybit`` and ``exchange_keys`` come from ``tests/conftest.py``.

The brokers are real ``CcxtBroker`` objects driving the real ``ccxt.binance`` over HTTP; only
the retry waits are replaced (``RecordingSleep``) so lookups after an ambiguous submit do not
wait in tests that do not depend on a server's timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from otonom_trader.broker.base import Broker
from otonom_trader.broker.ccxt_broker import CcxtBroker, RetryPolicy
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.broker.guarded import GuardedBroker
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.local_exchange.bybit import LocalBybitExchange
from otonom_trader.persistence import Database

BrokerFactory = Callable[..., CcxtBroker]
#: Wraps a broker in the gate every order passes (``GuardedBroker``, guardrails off).
Gate = Callable[[Broker], GuardedBroker]


class RecordingSleep:
    """A ``sleep`` that records the requested waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def make_bybit_broker(
    local_bybit: LocalBybitExchange,
    recording_sleep: RecordingSleep,
    exchange_keys: tuple[str, str],
) -> Iterator[BrokerFactory]:
    """Build a CcxtBroker (real ``ccxt.bybit``) for ``local_bybit``; like
    ``make_binance_broker``. Bybit's testnet flag is off by default here: ``testnet: false``
    with a local ``base_url`` is what a production config aimed at a drill looks like."""
    yield from _broker_factory(
        {"kind": "bybit", "testnet": False, "base_url": local_bybit.base_url},
        exchange_keys,
        recording_sleep,
    )


@pytest.fixture
def recording_sleep() -> RecordingSleep:
    """The injected sleep of ``binance_broker``."""
    return RecordingSleep()


@pytest.fixture
def make_binance_broker(
    local_binance: LocalBinanceExchange,
    recording_sleep: RecordingSleep,
    exchange_keys: tuple[str, str],
) -> Iterator[BrokerFactory]:
    """Build a CcxtBroker for ``local_binance``; keyword arguments override config fields
    (``timeout_ms``, ``api_key`` …) and ``retry``/``sleep`` go to the broker."""
    yield from _broker_factory(
        {"kind": "binance", "testnet": True, "base_url": local_binance.base_url},
        exchange_keys,
        recording_sleep,
    )


def _broker_factory(
    venue: dict[str, object],
    exchange_keys: tuple[str, str],
    recording_sleep: RecordingSleep,
) -> Iterator[BrokerFactory]:
    """Yield ``make(**fields)`` building CcxtBrokers on ``venue`` (closed after the test);
    keyword arguments override config fields, ``retry``/``sleep`` go to the broker."""
    api_key, api_secret = exchange_keys
    brokers: list[CcxtBroker] = []

    def make(
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        **fields: object,
    ) -> CcxtBroker:
        values: dict[str, object] = {
            **venue,
            "api_key": api_key,
            "api_secret": api_secret,
            "timeout_ms": 2000,
            **fields,
        }
        broker = CcxtBroker(
            BrokerConfig(**values),  # type: ignore[arg-type]
            retry=retry or RetryPolicy(read_attempts=3, lookup_attempts=3),
            sleep=sleep or recording_sleep,
        )
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.close()


@pytest.fixture
def binance_broker(make_binance_broker: BrokerFactory) -> CcxtBroker:
    """A CcxtBroker on ``local_binance`` with the test keys and fake retry waits."""
    return make_binance_broker()


@pytest.fixture
def posted(local_binance: LocalBinanceExchange) -> Callable[[], list[dict[str, str]]]:
    """A function listing the parameters of every ``POST /api/v3/order`` that reached
    ``local_binance`` (what the exchange was asked, including refused requests)."""

    def posted() -> list[dict[str, str]]:
        return [
            r.params
            for r in local_binance.requests
            if (r.method, r.path) == ("POST", "/api/v3/order")
        ]

    return posted


@pytest.fixture
def gate_of() -> Iterator[Gate]:
    """The gate around a broker: where the venue's limits and order rate are checked."""
    db = Database("sqlite:///:memory:")
    config = GuardrailConfig(enabled=False)

    def gate(broker: Broker) -> GuardedBroker:
        switch = KillSwitch(db, config, "gate-test")
        return GuardedBroker(broker, config, kill_switch=switch, equity_fn=lambda: Decimal(1))

    yield gate
    db.dispose()
