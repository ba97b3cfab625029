"""Guardrails at two levels, on the exchange's side: two named bots share one account on the
local Binance exchange (real ``ccxt.binance`` over HTTP).

* bot ``btc`` (BTC/USDT) and bot ``eth`` (ETH/USDT), 2,000 USDT of capital each, on an account of
  10,000 USDT and 0.1 BTC that neither bot owns;
* BTC falls 10 %: ``btc`` loses 5 % of its own equity (its limit: 3 %) and halts; the account
  loses about 4 % (its limit: 6 %) and ``eth`` goes on trading — it sends its exit to the exchange;
* BTC falls to 38,000: the account loses about 9 % and its switch halts both bots; neither
  cycle's order reaches the exchange (counted in the exchange's own order list);
* the halt survives a restart: new daemons on the same database send nothing either.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from bots_fleet import BotFleet, local_exchange
from sqlalchemy import select

from otonom_trader.daemon.summary import RunSummary
from otonom_trader.fleet.books import bot_book
from otonom_trader.persistence.alert_models import AlertOutboxRecord

#: BTC closes of the candles closing at T0 + 1 h, + 2 h, + 3 h (and the exchange's price then).
BTC_AFTER = (Decimal("45000"), Decimal("38000"), Decimal("38000"))


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BotFleet]:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    with local_exchange(USDT=Decimal("10000"), BTC=Decimal("0.1")) as exchange:
        fleet = BotFleet(
            tmp_path,
            exchange,
            {"btc": "BTC", "eth": "ETH"},
            overrides=[
                "alerts.enabled=true",  # no channel: alerts are recorded, not sent
                "guardrails.max_daily_loss_pct=3",
                "guardrails.account.max_daily_loss_pct=6",
            ],
            btc_after=BTC_AFTER,
            hours=len(BTC_AFTER),
        )
        fleet.start()
        try:
            yield fleet
        finally:
            fleet.close()


def _kill_switch_alerts(fleet: BotFleet) -> list[str]:
    with fleet.daemons["btc"].context.db.session() as session:
        return list(
            session.scalars(
                select(AlertOutboxRecord.title).where(AlertOutboxRecord.event == "kill_switch")
            )
        )


def _sent(summary: RunSummary) -> int:
    return sum(1 for line in summary.orders if line.filled_qty > 0)


def test_bot_loss_halts_its_bot_only_and_account_loss_halts_every_bot_across_a_restart(
    fleet: BotFleet,
) -> None:
    exchange = fleet.exchange
    first = fleet.cycle()
    assert _sent(first["btc"]) == 1 and _sent(first["eth"]) == 1  # each bought its own coin
    account = fleet.account  # one account, shared
    assert len(exchange.orders) == 2
    # Each sized from its own 2,000 (50 %), not from the account's 15,000.
    assert all(990 <= o.cumm_quote_qty <= 1000 for o in exchange.orders)

    # BTC -10 %: bot btc loses ~5 % of its 2,000 (limit 3 %), the account ~4 % (limit 6 %).
    fleet.clock.advance()
    exchange.set_price("BTC/USDT", BTC_AFTER[0])
    second = fleet.cycle()
    assert second["btc"].guard_active and "daily loss" in (second["btc"].guard_reason or "")
    assert not second["eth"].guard_active
    assert fleet.switch(bot_book("btc")).status()[0]
    assert not fleet.switch(bot_book("eth")).status()[0]
    assert not fleet.switch(account).status()[0]
    # bot eth still trades (its exit reached the exchange); bot btc's exit did not.
    assert _sent(second["eth"]) == 1 and _sent(second["btc"]) == 0
    assert len(exchange.orders) == 3

    # BTC to 38,000: the account is down ~9 % (limit 6 %): both bots halt, nothing is sent.
    fleet.clock.advance()
    exchange.set_price("BTC/USDT", BTC_AFTER[1])
    third = fleet.cycle()
    assert fleet.switch(account).status()[0]
    assert third["eth"].guard_active
    assert (third["eth"].guard_reason or "").startswith(f"account {account}: ")
    assert not fleet.switch(bot_book("eth")).status()[0]  # its own profile is not breached
    assert all(_sent(summary) == 0 for summary in third.values())
    assert len(exchange.orders) == 3
    titles = _kill_switch_alerts(fleet)
    assert any(f"[bot btc @ {account}]" in title for title in titles)
    assert any(f"[all bots @ {account}]" in title for title in titles)

    # A restart (new daemons, contexts and connections on the same database) is still halted.
    fleet.start()
    fleet.clock.advance()
    after_restart = fleet.cycle()
    assert all(summary.guard_active for summary in after_restart.values())
    assert len(exchange.orders) == 3
