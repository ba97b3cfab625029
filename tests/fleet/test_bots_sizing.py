"""A named bot sizes from its own allocation and never spends cash the account does not have:
its buy on the local Binance exchange is capped by the account's free cash, whatever its
``bot.capital`` says."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from bots_fleet import BotFleet, local_exchange


def test_a_bot_allocated_more_than_the_account_holds_buys_only_what_the_account_can_pay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    with local_exchange(USDT=Decimal("3000")) as exchange:
        fleet = BotFleet(
            tmp_path,
            exchange,
            {"big": "BTC"},
            overrides=["alerts.enabled=false", "guardrails=off", "bot.capital=50000"],
        )
        fleet.start()
        try:
            summary = fleet.daemons["big"].run_once()
        finally:
            fleet.close()
        spent = Decimal(3000) - exchange.balance("USDT")

    (order,) = exchange.orders  # one buy: 50 % of 50,000 wanted, the account has 3,000
    assert summary.orders[0].status == "filled"
    assert Decimal(2900) < order.cumm_quote_qty <= Decimal(3000)
    assert Decimal(0) < spent <= Decimal(3000)
