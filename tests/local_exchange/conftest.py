"""Fixtures: started local exchanges and real ccxt clients routed to them.

``local_binance`` / ``local_bybit`` are function-scoped (a server starts in about a millisecond)
and are meant to be lifted into ``tests/conftest.py`` for the broker tests. Keys are
``test-key`` / ``test-secret``; balances 10 000 USDT; feed BTC/USDT 50 000, ETH/USDT 3 000.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from otonom_trader.broker.ccxt_routing import (
    LOCAL_BINANCE_OPTIONS,
    LOCAL_BYBIT_OPTIONS,
    route_ccxt_to,
)
from otonom_trader.local_exchange import LocalBinanceExchange, LocalBybitExchange

TEST_KEY = "test-key"
TEST_SECRET = "test-secret"
START_BALANCES = {"USDT": Decimal("10000")}
START_PRICES = {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")}


@pytest.fixture
def local_binance() -> Iterator[LocalBinanceExchange]:
    """A started :class:`LocalBinanceExchange` on a free port, stopped after the test."""
    with LocalBinanceExchange(
        api_key=TEST_KEY,
        api_secret=TEST_SECRET,
        balances=dict(START_BALANCES),
        prices=dict(START_PRICES),
    ) as exchange:
        yield exchange


@pytest.fixture
def local_bybit() -> Iterator[LocalBybitExchange]:
    """A started :class:`LocalBybitExchange` on a free port, stopped after the test."""
    with LocalBybitExchange(
        api_key=TEST_KEY,
        api_secret=TEST_SECRET,
        balances=dict(START_BALANCES),
        prices=dict(START_PRICES),
    ) as exchange:
        yield exchange


@pytest.fixture
def binance_client(local_binance: LocalBinanceExchange) -> ccxt.binance:
    """The real ``ccxt.binance`` routed to ``local_binance`` (2 s timeout)."""
    client = ccxt.binance(
        {
            "apiKey": TEST_KEY,
            "secret": TEST_SECRET,
            "timeout": 2000,
            # Local server: client-side throttling would only slow the tests down.
            "enableRateLimit": False,
            "options": dict(LOCAL_BINANCE_OPTIONS),
        }
    )
    route_ccxt_to(client, local_binance.base_url)
    return client


@pytest.fixture
def bybit_client(local_bybit: LocalBybitExchange) -> ccxt.bybit:
    """The real ``ccxt.bybit`` routed to ``local_bybit`` (2 s timeout)."""
    client = ccxt.bybit(
        {
            "apiKey": TEST_KEY,
            "secret": TEST_SECRET,
            "timeout": 2000,
            # Local server: client-side throttling would only slow the tests down.
            "enableRateLimit": False,
            "options": dict(LOCAL_BYBIT_OPTIONS),
        }
    )
    route_ccxt_to(client, local_bybit.base_url)
    return client
