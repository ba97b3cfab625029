"""Guardrails at two levels, on the exchange's side: two named bots share one account on the
local Binance exchange (real ``ccxt.binance`` over HTTP).

* bot ``btc`` (BTC/USDT) and bot ``eth`` (ETH/USDT), 2,000 USDT of capital each, on an account of
  10,000 USDT and 0.1 BTC that neither bot owns;
* BTC falls 10 %: ``btc`` loses 5 % of its own equity (its limit: 3 %) and halts; the account
  loses about 4 % (its limit: 6 %) and ``eth`` goes on trading — it sends its exit to the exchange;
* BTC falls to 38,000: the account loses about 9 % and its switch halts both bots; neither
  cycle's order reaches the exchange (counted in the exchange's own order list);
* the halt survives a restart: new daemons on the same database send nothing either.

The bots' candles are a CSV whose closes are the exchange's prices at each hour (the daemons'
clock moves one candle per cycle; the exchange's price is set to match), so every cycle decides
on a new candle and nothing is held back as "already sent for this candle".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.daemon.summary import RunSummary
from otonom_trader.fleet.books import bot_book
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.testkit.clock import ManualClock

T0 = datetime(2026, 11, 30, 1, 0, 30, tzinfo=UTC)
HISTORY = 48  # hourly candles before T0 (RSI needs 15)
#: BTC closes of the candles closing at T0 + 1 h, + 2 h, + 3 h (and the exchange's price then).
BTC_AFTER = (Decimal("45000"), Decimal("38000"), Decimal("38000"))
STRATEGY = """name: always_trade_{base}
version: "1.0"
symbols: [{base}/USDT]
timeframe: 1h
entry:
  - {{indicator: rsi, period: 14, below: 100}}
exit:
  - {{indicator: rsi, period: 14, above: 0}}
sizing: {{mode: pct_equity, value: 50}}
"""


class Fleet:
    """Two named bots on one account of one local exchange, one database, one clock."""

    def __init__(self, tmp_path: Path, exchange: LocalBinanceExchange, clock: ManualClock):
        self.tmp_path, self.exchange, self.clock = tmp_path, exchange, clock
        self.daemons: dict[str, TradingDaemon] = {}
        self.candles = tmp_path / "candles.csv"
        self.candles.write_text(_candles_csv())

    def start(self) -> None:
        """(Re)build both bots' daemons: a restart reads everything back from the database."""
        for daemon in self.daemons.values():
            daemon.close()
        self.daemons = {bot: self._daemon(bot) for bot in ("btc", "eth")}

    def _daemon(self, bot: str) -> TradingDaemon:
        strategy = self.tmp_path / f"{bot}.yaml"
        strategy.write_text(STRATEGY.format(base=bot.upper()))
        url = self.exchange.base_url
        return TradingDaemon(
            db_path=self.tmp_path / "fleet.db",
            strategy_path=strategy,
            mode=ExecutionMode.LIVE,
            overrides=[
                "alerts.enabled=false",
                "mode.paper_book_in_live=false",
                "broker=binance_testnet",
                f"broker.base_url={url}",
                "data=csv",
                f"data.csv_path={self.candles}",
                f"bot.name={bot}",
                "bot.capital=2000",
                "guardrails.max_daily_loss_pct=3",
                "guardrails.account.max_daily_loss_pct=6",
            ],
            clock=self.clock,
        )

    def cycle(self) -> dict[str, RunSummary]:
        """One cycle of each bot, in turn (they share the account's lease)."""
        return {bot: daemon.run_once() for bot, daemon in self.daemons.items()}

    def switch(self, book: str) -> KillSwitch:
        context = self.daemons["btc"].context
        return KillSwitch(context.db, context.config.guardrails, book)

    def close(self) -> None:
        for daemon in self.daemons.values():
            daemon.close()


def _candles_csv() -> str:
    """Hourly candles of both symbols: oscillating (so RSI is between 0 and 100) up to T0, with
    BTC then falling to ``BTC_AFTER``."""
    rows = ["timestamp,open,high,low,close,volume,symbol"]
    first = T0 - timedelta(seconds=30) - timedelta(hours=HISTORY)
    for i in range(HISTORY + len(BTC_AFTER)):
        opened = int((first + timedelta(hours=i)).timestamp() * 1000)
        wobble = (HISTORY - 1 - i) % 2  # the last candle before T0 closes exactly at the start
        btc = 50000 + 100 * wobble if i < HISTORY else BTC_AFTER[i - HISTORY]
        eth = 3000 + 6 * (i % 2 if i >= HISTORY else wobble)
        for symbol, close in (("BTC/USDT", btc), ("ETH/USDT", eth)):
            rows.append(f"{opened},{close},{close},{close},{close},10,{symbol}")
    return "\n".join(rows) + "\n"


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    clock = ManualClock(T0)
    with LocalBinanceExchange(
        api_key="test-key",
        api_secret="test-secret",
        balances={"USDT": Decimal("10000"), "BTC": Decimal("0.1")},
        prices={"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
    ) as exchange:
        fleet = Fleet(tmp_path, exchange, clock)
        fleet.start()
        try:
            yield fleet
        finally:
            fleet.close()


def _sent(summary: RunSummary) -> int:
    return sum(1 for line in summary.orders if line.filled_qty > 0)


def test_bot_loss_halts_its_bot_only_and_account_loss_halts_every_bot_across_a_restart(
    fleet: Fleet,
) -> None:
    exchange = fleet.exchange
    first = fleet.cycle()
    assert _sent(first["btc"]) == 1 and _sent(first["eth"]) == 1  # each bought its own coin
    account = fleet.daemons["btc"].context.account.account_id
    assert fleet.daemons["eth"].context.account.account_id == account  # one shared account
    assert len(exchange.orders) == 2

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

    # A restart (new daemons, contexts and connections on the same database) is still halted.
    fleet.start()
    fleet.clock.advance()
    after_restart = fleet.cycle()
    assert all(summary.guard_active for summary in after_restart.values())
    assert len(exchange.orders) == 3
