"""Execution fixtures: LIVE daemons on the local Binance exchange (real ``ccxt.binance``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

#: ``make_live(*overrides, clock=None)`` → a LIVE daemon (no paper book) on ``local_binance``.
LiveFactory = Callable[..., TradingDaemon]


@pytest.fixture
def make_live(
    tmp_path: Path, local_binance: LocalBinanceExchange, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveFactory]:
    """LIVE daemons trading the always-trading test strategy on the local Binance exchange
    (candles from it too), on one database in ``tmp_path``; closed after the test."""
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    made: list[TradingDaemon] = []

    def make(*overrides: str, clock: Callable[[], datetime] | None = None) -> TradingDaemon:
        url = local_binance.base_url
        daemon = TradingDaemon(
            db_path=tmp_path / "trader.db",
            strategy_path=FIXTURES / "always_buy_v1.0.yaml",
            mode=ExecutionMode.LIVE,
            overrides=[
                "alerts.enabled=false",
                "mode.paper_book_in_live=false",
                "broker=binance_testnet",
                f"broker.base_url={url}",
                "data=exchange",
                f"data.exchange_base_url={url}",
                *overrides,
            ],
            clock=clock,
        )
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.close()
