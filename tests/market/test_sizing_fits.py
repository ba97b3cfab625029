"""Sizing that always fits: a cash-limited market buy, sized with ``affordable_quantity``, never
costs more than the cash after the fill price is rounded up to the tick, slippage and the fee —
on every spot market of the real Binance and Bybit market definitions (ccxt's test data)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otonom_trader.broker.types import OrderSide
from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.market.rules import MarketRules

CCXT_DATA = PROJECT_ROOT.parent / "shared" / "testdata" / "ccxt"


def _spot_rules() -> list[MarketRules]:
    rules = []
    for name in ("markets_binance.json", "markets_bybit.json"):
        path = CCXT_DATA / name
        if not path.is_file():
            continue
        for market in json.loads(path.read_text()).values():
            if market.get("spot") and market.get("precision", {}).get("amount"):
                rules.append(MarketRules.from_ccxt_market(market))
    return rules


RULES = _spot_rules()


def test_the_real_market_definitions_are_here() -> None:
    if not RULES:
        pytest.skip(f"ccxt's market definitions are not beside the repository ({CCXT_DATA})")
    assert {r.symbol for r in RULES} >= {"BTC/USDT", "ETH/USDT"}


@pytest.mark.skipif(not RULES, reason="ccxt's market definitions are not beside the repository")
@settings(max_examples=3000, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=max(len(RULES) - 1, 0)),
    cash=st.decimals(min_value=Decimal(5), max_value=Decimal(1_000_000), places=2),
    mark_scale=st.decimals(min_value=Decimal(1), max_value=Decimal(100_000), places=4),
    fee_bps=st.integers(min_value=0, max_value=30),
    slippage_bps=st.integers(min_value=0, max_value=100),
)
def test_a_cash_limited_buy_never_costs_more_than_the_cash(
    index: int, cash: Decimal, mark_scale: Decimal, fee_bps: int, slippage_bps: int
) -> None:
    rules = RULES[index]
    # A mark on the market's own tick grid, from a few ticks up to far above them.
    mark = rules.round_price(rules.tick_size * mark_scale, OrderSide.BUY)
    if mark <= 0:
        return
    fee, slip = Decimal(fee_bps) / 10_000, Decimal(slippage_bps) / 10_000

    quantity = rules.affordable_quantity(cash, mark, fee, slip)

    fill_price = rules.worst_buy_price(mark, slip)  # what the paper book fills at
    assert quantity >= 0 and quantity == rules.round_quantity(quantity)
    assert quantity * fill_price * (1 + fee) <= cash
    # ... and it is the most that fits: one lot more would not.
    assert (quantity + rules.lot_step) * fill_price * (1 + fee) > cash


def test_the_issues_xrp_case_fits() -> None:
    # cash 1000, mark 0.5000, fill 0.5003 after slippage and tick rounding: 1997 would cost
    # 1000.098 with the fee; the sized quantity costs at most 1000.
    from otonom_trader.market.rules import rules_for

    rules = rules_for("XRP/USDT")
    quantity = rules.affordable_quantity(
        Decimal(1000), Decimal("0.5000"), Decimal("0.001"), Decimal("0.0005")
    )
    price = rules.worst_buy_price(Decimal("0.5000"), Decimal("0.0005"))
    assert quantity * price * Decimal("1.001") <= 1000
