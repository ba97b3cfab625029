"""Market rules from the shipped Binance exchangeInfo: lot step, tick size, minimum notional."""

from __future__ import annotations

from decimal import Decimal

import pytest

from otonom_trader.broker.errors import BelowMinimumNotionalError, InvalidOrderError
from otonom_trader.broker.types import OrderSide
from otonom_trader.market.rules import MarketRules, binance_spot_exchange_info, rules_for
from otonom_trader.market.symbols import split, to_exchange_id, to_unified


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC/USDT", "btc/usdt"])
def test_rules_for_when_either_spelling_then_btcusdt_filters(symbol: str) -> None:
    rules = rules_for(symbol)
    assert (rules.symbol, rules.base, rules.quote) == ("BTC/USDT", "BTC", "USDT")
    assert rules.lot_step == Decimal("0.00001")
    assert rules.min_qty == Decimal("0.00001")
    assert rules.tick_size == Decimal("0.01")
    assert rules.min_notional == Decimal("5")
    assert rules.max_qty == Decimal("9000")


def test_rules_for_when_unknown_market_then_invalid_order_naming_it() -> None:
    with pytest.raises(InvalidOrderError, match="unknown market 'FOO/USDT'"):
        rules_for("FOO/USDT")


def test_round_quantity_when_between_steps_then_rounds_down() -> None:
    rules = rules_for("ETHUSDT")  # lot step 0.0001
    assert rules.round_quantity(Decimal("0.123456789")) == Decimal("0.1234")
    assert rules.round_quantity(Decimal("0.00009")) == Decimal("0")


def test_round_price_when_between_ticks_then_buy_down_sell_up() -> None:
    rules = rules_for("BTCUSDT")
    assert rules.round_price(Decimal("60000.123"), OrderSide.BUY) == Decimal("60000.12")
    assert rules.round_price(Decimal("60000.121"), OrderSide.SELL) == Decimal("60000.13")
    assert rules.round_price(Decimal("60000.12"), OrderSide.SELL) == Decimal("60000.12")


def test_check_when_below_min_notional_then_refused_and_at_it_then_accepted() -> None:
    rules = rules_for("BTCUSDT")
    with pytest.raises(BelowMinimumNotionalError, match="below the minimum notional 5 USDT"):
        rules.check(Decimal("0.00008"), Decimal("60000"))  # 4.8 USDT
    rules.check(Decimal("0.0001"), Decimal("50000"))  # exactly 5 USDT


def test_check_when_quantity_below_min_or_above_max_then_invalid_order() -> None:
    rules = rules_for("BTCUSDT")
    with pytest.raises(InvalidOrderError, match="below the minimum"):
        rules.check(Decimal("0"), Decimal("60000"))
    with pytest.raises(InvalidOrderError, match="above the maximum"):
        rules.check(Decimal("9001"), Decimal("1"))


def test_shipped_exchange_info_when_loaded_then_every_symbol_has_rules() -> None:
    symbols = [s["symbol"] for s in binance_spot_exchange_info()["symbols"]]
    assert {"BTCUSDT", "ETHUSDT"} <= set(symbols)
    for symbol in symbols:
        rules = rules_for(symbol)
        assert rules.lot_step > 0 and rules.tick_size > 0 and rules.min_notional > 0


def test_from_ccxt_market_when_tick_precision_then_same_rules() -> None:
    market = {
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "precision": {"amount": 1e-05, "price": 0.01},
        "limits": {
            "amount": {"min": 1e-05, "max": 9000.0},
            "cost": {"min": 5.0},
            "price": {"min": 0.01, "max": 1000000.0},
        },
    }
    rules = MarketRules.from_ccxt_market(market)
    assert (rules.lot_step, rules.tick_size, rules.min_notional) == (
        Decimal("0.00001"),
        Decimal("0.01"),
        Decimal("5"),
    )


def test_symbols_when_converted_then_both_spellings_round_trip() -> None:
    assert to_unified("ethusdt") == "ETH/USDT"
    assert to_unified("ADAFDUSD") == "ADA/FDUSD"
    assert to_exchange_id("ETH/USDT") == "ETHUSDT"
    assert split("BTCUSDT") == ("BTC", "USDT")
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        to_unified("FOOBAR")
