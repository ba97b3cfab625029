"""One request budget per venue host, shared by the broker and the candle source, spent by the
venue's published weights and corrected from its used-weight header."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from fake_time import FakeTime

from otonom_trader.broker.ccxt_broker import CcxtBroker
from otonom_trader.broker.request_budget import RequestBudget, request_weight, shared_budget
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.exchange_source import ExchangeMarketData


def test_budget_spends_until_full_then_waits_for_the_window_to_move() -> None:
    clock = FakeTime()
    budget = RequestBudget(100, 60.0, headroom=1.0, monotonic=clock.monotonic, sleep=clock.sleep)

    for second in (0, 10, 20, 30, 40):
        clock.now = float(second)
        budget.spend(20)
    clock.now = 45.0
    budget.spend(20)  # the window holds 100: this one waits until the first 20 leave it

    assert clock.slept == [15.0]
    assert clock.now == 60.0
    assert budget.in_window == 100  # four earlier spends and this one
    assert budget.total_spent == 120


def test_budget_keeps_headroom_below_the_venues_limit() -> None:
    clock = FakeTime()
    budget = RequestBudget(6000, 60.0, monotonic=clock.monotonic, sleep=clock.sleep)

    budget.spend(5400)
    budget.spend(1)

    assert budget.capacity == 5400
    assert clock.slept == [60.0]


def test_the_venues_count_raises_the_budget_never_lowers_it() -> None:
    clock = FakeTime()
    budget = RequestBudget(6000, 60.0, monotonic=clock.monotonic, sleep=clock.sleep)
    budget.spend(100)

    budget.observe(2500)  # another program on the same IP spent 2400
    assert budget.in_window == 2500
    budget.observe(50)  # an older reply arriving late
    assert budget.in_window == 2500


def test_binance_published_weights() -> None:
    assert request_weight("binance", "GET", "klines", {"limit": 201}) == 2
    assert request_weight("binance", "GET", "account", {}) == 20
    assert request_weight("binance", "POST", "order", {}) == 1
    assert request_weight("binance", "GET", "openOrders", {}) == 80
    assert request_weight("binance", "GET", "openOrders", {"symbol": "BTCUSDT"}) == 6
    assert request_weight("binance", "GET", "ticker/price", {}) == 4
    assert request_weight("binance", "GET", "/api/v3/exchangeInfo", {}) == 20
    assert request_weight("bybit", "GET", "/v5/market/kline", {}) == 1


def test_broker_and_candle_source_of_one_venue_share_one_budget_that_matches_the_venue(
    local_binance: LocalBinanceExchange, binance_broker: CcxtBroker
) -> None:
    url = local_binance.base_url
    broker = binance_broker
    source = ExchangeMarketData("binance", base_url=url)
    budget = shared_budget("binance", url)
    assert budget is not None
    assert broker.request_budget is budget
    assert source.request_budget is budget
    spent_before = budget.total_spent
    venue_before = local_binance.weight_total

    broker.get_balances()
    source.fetch("BTC/USDT", "1h", 50, datetime.now(UTC))
    broker.fetch_open_orders()

    spent = budget.total_spent - spent_before
    counted = local_binance.weight_total - venue_before
    assert spent == counted  # exchangeInfo 20, account 20, klines 2, openOrders 80
    assert counted == 20 + 20 + 2 + 80
    assert budget.in_window >= counted  # the header's count of this minute was taken in
    assert Decimal(broker.get_balances()[0].total) > 0


def test_weight_spent_by_another_program_on_the_same_ip_reaches_the_budget_by_header(
    local_binance: LocalBinanceExchange, binance_broker: CcxtBroker
) -> None:
    import requests

    url = local_binance.base_url
    broker = binance_broker
    broker.load_markets()
    seconds = datetime.now(UTC).second
    if seconds >= 55:  # the venue counts per clock minute: start this in a fresh one
        time.sleep(60 - seconds)
    for _ in range(10):  # someone else's tool: 10 × exchangeInfo (weight 20) outside the budget
        requests.get(f"{url}/api/v3/exchangeInfo", timeout=10).raise_for_status()
    budget = broker.request_budget
    assert budget is not None
    before = budget.in_window

    broker.get_balances()  # weight 20; the reply says what the venue counted this minute

    assert budget.in_window >= before + 20 + 10 * 20
