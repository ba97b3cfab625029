"""Named bots sharing one account of the local Binance exchange (real ``ccxt.binance`` over HTTP),
one database and one clock: what the ``test_bots_*`` tests drive.

Each bot trades one symbol with the always-trading strategy (buy when flat, sell when holding).
Its candles are a CSV whose closes are the prices the test sets on the exchange at each hour (the
daemons' clock moves one candle per cycle), so every cycle decides on a new candle.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.daemon.summary import RunSummary
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.testkit.clock import ManualClock

T0 = datetime(2026, 11, 30, 1, 0, 30, tzinfo=UTC)
HISTORY = 48  # hourly candles before T0 (RSI needs 15)
START_PRICES = {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")}
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


def candles_csv(btc_after: Sequence[Decimal], hours: int) -> str:
    """Hourly candles of BTC and ETH: oscillating (so RSI is between 0 and 100) up to T0, the
    last one closing at ``START_PRICES``; then BTC closes at ``btc_after`` (its start price
    after those), ETH keeps oscillating, for ``hours`` candles."""
    rows = ["timestamp,open,high,low,close,volume,symbol"]
    first = T0 - timedelta(seconds=30) - timedelta(hours=HISTORY)
    for i in range(HISTORY + hours):
        opened = int((first + timedelta(hours=i)).timestamp() * 1000)
        wobble = (HISTORY - 1 - i) % 2  # the last candle before T0 closes at the start price
        after = i - HISTORY
        btc = START_PRICES["BTC/USDT"] + 100 * wobble
        if after >= 0:
            btc = btc_after[after] if after < len(btc_after) else START_PRICES["BTC/USDT"]
        eth = START_PRICES["ETH/USDT"] + 6 * (i % 2 if after >= 0 else wobble)
        for symbol, close in (("BTC/USDT", btc), ("ETH/USDT", eth)):
            rows.append(f"{opened},{close},{close},{close},{close},10,{symbol}")
    return "\n".join(rows) + "\n"


class BotFleet:
    """Named bots (name → the base asset it trades) on one account of ``exchange``."""

    def __init__(
        self,
        tmp_path: Path,
        exchange: LocalBinanceExchange,
        bots: dict[str, str],
        *,
        mode: ExecutionMode = ExecutionMode.LIVE,
        overrides: Sequence[str] = (),
        btc_after: Sequence[Decimal] = (),
        hours: int = 12,
    ) -> None:
        self.tmp_path, self.exchange, self.bots = tmp_path, exchange, bots
        self.mode, self.overrides = mode, list(overrides)
        self.clock = ManualClock(T0)
        self.path = tmp_path / "fleet.db"
        self.candles = tmp_path / "candles.csv"
        self.candles.write_text(candles_csv(btc_after, hours))
        self.daemons: dict[str, TradingDaemon] = {}

    def start(self) -> None:
        """(Re)build every bot's daemon: a restart reads everything back from the database."""
        self.close()
        self.daemons = {bot: self._daemon(bot, base) for bot, base in self.bots.items()}

    def _daemon(self, bot: str, base: str) -> TradingDaemon:
        strategy = self.tmp_path / f"{bot}.yaml"
        strategy.write_text(STRATEGY.format(base=base))
        return TradingDaemon(
            db_path=self.path,
            strategy_path=strategy,
            mode=self.mode,
            overrides=[
                "mode.paper_book_in_live=false",
                "broker=binance_testnet",
                f"broker.base_url={self.exchange.base_url}",
                "data=csv",
                f"data.csv_path={self.candles}",
                f"bot.name={bot}",
                "bot.capital=2000",
                *self.overrides,
            ],
            clock=self.clock,
        )

    def cycle(self) -> dict[str, RunSummary]:
        """One cycle of each bot, in turn (they share the account's lease)."""
        return {bot: daemon.run_once() for bot, daemon in self.daemons.items()}

    @property
    def account(self) -> str:
        """The id of the account every bot trades."""
        ids = {d.context.account.account_id for d in self.daemons.values()}
        assert len(ids) == 1, ids
        return ids.pop()

    def switch(self, book: str) -> KillSwitch:
        """The persisted kill-switch of ``book``."""
        context = next(iter(self.daemons.values())).context
        return KillSwitch(context.db, context.config.guardrails, book)

    def close(self) -> None:
        for daemon in self.daemons.values():
            daemon.close()
        self.daemons = {}


def local_exchange(**balances: Decimal) -> LocalBinanceExchange:
    """A local Binance exchange with ``balances`` and the start prices (enter it with ``with``)."""
    return LocalBinanceExchange(
        api_key="test-key", api_secret="test-secret", balances=balances, prices=dict(START_PRICES)
    )
