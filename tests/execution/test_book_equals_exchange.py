"""The book equals the exchange: 100 always-trading SHADOW cycles against the local Binance
exchange, which charges Binance's commission in the received asset (0.1 % of a BUY in BTC, of a
SELL in USDT). After every cycle the account's book holds what the exchange holds, within one
lot step, and no order is ever refused for lack of balance.

Prices are real BTC/USDT hourly candles (``../shared/testdata/candles``); the daemon's clock
moves one candle per cycle and the exchange's price follows each candle's close.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.rules import rules_for
from otonom_trader.testkit.clock import ManualClock

CANDLES = PROJECT_ROOT.parent / "shared" / "testdata" / "candles" / "btcusdt_1h.csv"
CYCLES = 100
ALWAYS_TRADE_BTC = """name: always_trade_btc
version: "1.0"
symbols: [BTC/USDT]
timeframe: 1h
entry:
  - {indicator: rsi, period: 14, below: 100}
exit:
  - {indicator: rsi, period: 14, above: 0}
sizing: {mode: pct_equity, value: 30}
"""


def _closes() -> list[tuple[datetime, Decimal]]:
    with CANDLES.open() as handle:
        return [
            (datetime.fromtimestamp(int(row["timestamp"]) / 1000, UTC), Decimal(row["close"]))
            for row in csv.DictReader(handle)
        ]


@pytest.mark.slow
@pytest.mark.parametrize("fees_in", ["the received asset", "BNB"])
def test_100_always_trading_shadow_cycles_keep_the_book_equal_to_the_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fees_in: str
) -> None:
    if not CANDLES.is_file():
        pytest.skip(f"the real candles are not beside the repository ({CANDLES})")
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    strategy = tmp_path / "always_trade_btc.yaml"
    strategy.write_text(ALWAYS_TRADE_BTC)
    candles = _closes()
    start = 300
    clock = ManualClock(candles[start][0] + timedelta(hours=1, seconds=30))
    lot = rules_for("BTC/USDT").lot_step
    with LocalBinanceExchange(
        api_key="test-key",
        api_secret="test-secret",
        balances={"USDT": Decimal("10000"), "BNB": Decimal("50")},
        prices={"BTC/USDT": candles[start][1]},
        fee_rate=Decimal("0.001"),
    ) as exchange:
        if fees_in == "BNB":
            exchange.pay_fees_in_bnb, exchange.bnb_price = True, Decimal("300")
        bnb_before = exchange.balance("BNB")
        daemon = TradingDaemon(
            db_path=tmp_path / "trader.db",
            strategy_path=strategy,
            mode=ExecutionMode.SHADOW,
            overrides=[
                "alerts.enabled=false",
                "guardrails=off",
                "broker=binance_testnet",
                f"broker.base_url={exchange.base_url}",
                "data=csv",
                f"data.csv_path={CANDLES}",
            ],
            clock=clock,
        )
        gaps: list[Decimal] = []
        refusals: list[str] = []
        filled = 0
        try:
            for i in range(start, start + CYCLES):
                clock.now = candles[i][0] + timedelta(hours=1, seconds=30)
                exchange.set_price("BTC/USDT", candles[i][1])
                summary = daemon.run_once()
                book = daemon.context.account.book
                broker_lines = [o for o in summary.orders if o.book == book]
                filled += sum(1 for o in broker_lines if o.filled_qty > 0)
                refusals += [o.error or "" for o in broker_lines if o.status == "rejected"]
                with daemon.context.db.session() as session:
                    from otonom_trader.portfolio.ledger import positions_of

                    held = positions_of(session, book).get("BTC/USDT")
                book_btc = held.quantity if held is not None else Decimal(0)
                venue_btc = exchange.balance("BTC") + exchange.locked("BTC")
                gaps.append(abs(book_btc - venue_btc))
        finally:
            daemon.close()

        bnb_spent = bnb_before - exchange.balance("BNB")
    print(
        f"\n{CYCLES} cycles, fees in {fees_in}: {filled} broker fills, worst book/exchange gap "
        f"{max(gaps)} BTC, BNB spent {bnb_spent}"
    )
    assert (bnb_spent > 0) is (fees_in == "BNB")
    assert filled >= CYCLES  # it really traded every cycle (a buy or a sell each time)
    assert refusals == []
    assert max(gaps) <= lot
