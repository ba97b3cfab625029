"""Fixtures: real ccxt clients routed to the local exchanges.

``local_binance`` / ``local_bybit`` (function-scoped: a server starts in about a millisecond)
and ``exchange_keys`` come from ``tests/conftest.py``: keys ``test-key`` / ``test-secret``;
balances 10 000 USDT; feed BTC/USDT 50 000, ETH/USDT 3 000.
"""

from __future__ import annotations

import ccxt
import pytest

from otonom_trader.broker.ccxt_routing import (
    LOCAL_BINANCE_OPTIONS,
    LOCAL_BYBIT_OPTIONS,
    route_ccxt_to,
)
from otonom_trader.local_exchange import LocalBinanceExchange, LocalBybitExchange


@pytest.fixture
def binance_client(
    local_binance: LocalBinanceExchange, exchange_keys: tuple[str, str]
) -> ccxt.binance:
    """The real ``ccxt.binance`` routed to ``local_binance`` (2 s timeout)."""
    api_key, api_secret = exchange_keys
    client = ccxt.binance(
        {
            "apiKey": api_key,
            "secret": api_secret,
            "timeout": 2000,
            # Local server: client-side throttling would only slow the tests down.
            "enableRateLimit": False,
            "options": dict(LOCAL_BINANCE_OPTIONS),
        }
    )
    route_ccxt_to(client, local_binance.base_url)
    return client


@pytest.fixture
def bybit_client(local_bybit: LocalBybitExchange, exchange_keys: tuple[str, str]) -> ccxt.bybit:
    """The real ``ccxt.bybit`` routed to ``local_bybit`` (2 s timeout)."""
    api_key, api_secret = exchange_keys
    client = ccxt.bybit(
        {
            "apiKey": api_key,
            "secret": api_secret,
            "timeout": 2000,
            # Local server: client-side throttling would only slow the tests down.
            "enableRateLimit": False,
            "options": dict(LOCAL_BYBIT_OPTIONS),
        }
    )
    route_ccxt_to(client, local_bybit.base_url)
    return client
