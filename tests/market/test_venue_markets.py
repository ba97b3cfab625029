"""The venue's market list: loaded once per process, cached on disk with an expiry, shared by
the broker and the candle source, and known to the rules and the config check."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.broker.ccxt_broker import CcxtBroker, clear_markets_cache
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.config.errors import ConfigError
from otonom_trader.daemon import TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.exchange_source import ExchangeMarketData
from otonom_trader.market.rules import rules_for
from otonom_trader.market.venue_markets import MARKETS_TTL_S, markets_cache_file


def _broker(exchange: LocalBinanceExchange) -> CcxtBroker:
    return CcxtBroker(
        BrokerConfig(
            kind="binance",
            testnet=True,
            base_url=exchange.base_url,
            api_key="test-key",
            api_secret="test-secret",
        )
    )


def _market_loads(exchange: LocalBinanceExchange) -> int:
    return exchange.request_paths().count("GET /api/v3/exchangeInfo")


@pytest.fixture(autouse=True)
def fresh_markets() -> None:
    clear_markets_cache()


def test_markets_load_once_per_process_for_broker_and_candle_source(
    local_binance: LocalBinanceExchange,
) -> None:
    broker = _broker(local_binance)
    source = ExchangeMarketData("binance", base_url=local_binance.base_url)

    broker.get_balances()  # ccxt loads markets before a balance read
    source.fetch("BTC/USDT", "1h", 20, datetime.now(UTC))
    _broker(local_binance).fetch_open_orders()

    assert _market_loads(local_binance) == 1


def test_a_new_process_reads_the_disk_cache_until_it_expires(
    local_binance: LocalBinanceExchange,
) -> None:
    _broker(local_binance).load_markets()
    clear_markets_cache(on_disk=False)  # as a new process: nothing loaded in memory

    _broker(local_binance).get_balances()
    assert _market_loads(local_binance) == 1  # served from the disk cache

    path = markets_cache_file("binance", local_binance.base_url, True)
    cached = json.loads(path.read_text())
    cached["saved_at"] = time.time() - MARKETS_TTL_S - 1
    path.write_text(json.dumps(cached))
    clear_markets_cache(on_disk=False)

    _broker(local_binance).get_balances()
    assert _market_loads(local_binance) == 2  # expired: loaded from the exchange again


def test_a_listed_market_becomes_known_to_the_rules(local_binance: LocalBinanceExchange) -> None:
    local_binance.list_markets(["S001/USDT"], like="XRP/USDT", price=Decimal("0.6"))

    _broker(local_binance).load_markets()

    rules = rules_for("S001/USDT")
    assert rules.lot_step == rules_for("XRP/USDT").lot_step


def test_the_config_check_knows_a_venue_market_only_once_its_list_is_cached(
    local_binance: LocalBinanceExchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    local_binance.list_markets(["S777/USDT"], like="XRP/USDT", price=Decimal("0.6"))
    strategy = tmp_path / "s777.yaml"
    strategy.write_text(
        "name: s777\nversion: '1'\nsymbols: [S777/USDT]\ntimeframe: 1h\n"
        "entry: [{indicator: rsi, period: 14, below: 30}]\n"
        "exit: [{indicator: rsi, period: 14, above: 70}]\n"
        "sizing: {mode: fixed_quote, value: 20, max_position_quote: 40}\n"
    )
    url = local_binance.base_url
    overrides = [
        "alerts.enabled=false",
        "broker=binance_testnet",
        f"broker.base_url={url}",
        "data=exchange",
        f"data.exchange_base_url={url}",
    ]

    with pytest.raises(ConfigError, match="S777/USDT is not a market of the venue"):
        TradingDaemon(db_path=tmp_path / "a.db", strategy_path=strategy, overrides=overrides)

    _broker(local_binance).load_markets()  # the venue's list, cached on this machine
    daemon = TradingDaemon(db_path=tmp_path / "b.db", strategy_path=strategy, overrides=overrides)
    daemon.close()
