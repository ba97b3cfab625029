"""The concurrent cycle does what the sequential one does, with one account read per cycle.

Two local Binance exchanges start alike; one SHADOW daemon trades each — one with every request in
turn (``execution.io_workers=1``), one with eight in flight — over a buy cycle and a sell cycle of
ten symbols. What each exchange holds and reports, and what each book says, must be the same.
Counted on the exchange's side: the account is read once per cycle, no ticker is asked for while
the candles are the venue's own prices, and the weight stays the floor plus the open-orders list.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from otonom_trader.broker.ccxt_broker import clear_markets_cache
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence.models import BookPosition, OrderRecord

SHIPPED = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT", "TRX/USDT"]
LISTED = ["S001/USDT", "S002/USDT", "S003/USDT"]
SYMBOLS = SHIPPED + LISTED

STRATEGY = f"""\
name: always_trade_ten
version: "1.0"
symbols: [{", ".join(SYMBOLS)}]
timeframe: 1h
entry:
  - {{indicator: rsi, period: 14, below: 100}}
exit:
  - {{indicator: rsi, period: 14, above: 0}}
sizing: {{mode: fixed_quote, value: 30, max_position_quote: 60}}
"""


@pytest.fixture
def exchanges(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[LocalBinanceExchange, LocalBinanceExchange]]:
    """Two local exchanges alike, their market lists loaded (and cached) as a deployment's
    first process does; the daemons' keys in the environment."""
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    pair = []
    for _ in range(2):
        exchange = LocalBinanceExchange(
            api_key="test-key", api_secret="test-secret", balances={"USDT": Decimal(5000)}
        ).start()
        exchange.list_markets(LISTED, like="XRP/USDT", price=Decimal("0.6"))
        pair.append(exchange)
    clear_markets_cache()
    for exchange in pair:
        _load_markets(exchange)
    yield pair[0], pair[1]
    for exchange in pair:
        exchange.stop()


def _daemon(
    tmp_path: Path, name: str, exchange: LocalBinanceExchange, workers: int
) -> TradingDaemon:
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(STRATEGY)
    url = exchange.base_url
    return TradingDaemon(
        db_path=tmp_path / f"{name}.db",
        strategy_path=strategy,
        mode=ExecutionMode.SHADOW,
        overrides=[
            "alerts.enabled=false",
            "broker=binance_testnet",
            f"broker.base_url={url}",
            "data=exchange",
            f"data.exchange_base_url={url}",
            f"execution.io_workers={workers}",
            # A kill-switch tripped mid-cycle lets through whichever orders came first, an
            # order the threads do not fix; the comparison is of everything else.
            "guardrails=off",
        ],
    )


def _load_markets(exchange: LocalBinanceExchange) -> None:
    """The venue's market list, as a deployment's first process loads it (then cached)."""
    from otonom_trader.broker.ccxt_broker import CcxtBroker
    from otonom_trader.broker.config import BrokerConfig

    config = BrokerConfig(kind="binance", testnet=True, base_url=exchange.base_url)
    CcxtBroker(config).load_markets()


def _orders(daemon: TradingDaemon) -> list[tuple[str, str, str, str, Decimal, Decimal | None]]:
    with daemon.context.db.session() as session:
        rows = session.scalars(select(OrderRecord).order_by(OrderRecord.symbol, OrderRecord.id))
        return sorted(
            (
                _role(r.book),
                r.symbol,
                r.side,
                r.status,
                r.filled_qty,
                r.avg_fill_price,
            )
            for r in rows
        )


def _positions(daemon: TradingDaemon) -> list[tuple[str, str, Decimal, Decimal]]:
    with daemon.context.db.session() as session:
        rows = session.scalars(select(BookPosition))
        return sorted((_role(r.book), r.symbol, r.quantity, r.cost_basis) for r in rows)


def _role(book: str) -> str:
    """The two daemons trade two accounts (two exchanges): books compare by role."""
    return "paper" if book.startswith("paper:") else "broker"


def _exchange_side(exchange: LocalBinanceExchange) -> tuple[object, ...]:
    orders = sorted(
        (o.symbol, o.side, o.orig_qty, o.executed_qty, o.cumm_quote_qty) for o in exchange.orders
    )
    assets = ["USDT", *(s.split("/")[0] for s in SYMBOLS)]
    return tuple(orders), {asset: exchange.balance(asset) for asset in assets}


def test_concurrent_cycle_sends_the_same_orders_and_books_the_same_as_sequential(
    tmp_path: Path, exchanges: tuple[LocalBinanceExchange, LocalBinanceExchange]
) -> None:
    in_turn, parallel = exchanges
    sequential = _daemon(tmp_path, "sequential", in_turn, workers=1)
    concurrent = _daemon(tmp_path, "concurrent", parallel, workers=8)
    try:
        for _ in range(2):  # every symbol bought, then every symbol sold
            first = sequential.run_once()
            second = concurrent.run_once()
            assert first.status == second.status == "succeeded"
        assert len(in_turn.orders) == 2 * len(SYMBOLS)
        assert _exchange_side(in_turn) == _exchange_side(parallel)
        assert _orders(sequential) == _orders(concurrent)
        assert _positions(sequential) == _positions(concurrent)
    finally:
        sequential.close()
        concurrent.close()


def test_a_cycle_reads_the_account_once_and_asks_no_ticker_when_candles_are_the_venues(
    tmp_path: Path, exchanges: tuple[LocalBinanceExchange, LocalBinanceExchange]
) -> None:
    exchange = exchanges[0]
    daemon = _daemon(tmp_path, "reads", exchange, workers=8)
    try:
        daemon.run_once()  # buys every symbol: the next cycle holds ten assets
        before = len(exchange.requests)
        weight_before = exchange.weight_total
        summary = daemon.run_once()  # sells every symbol
        paths = [f"{r.method} {r.path}" for r in exchange.requests[before:]]
    finally:
        daemon.close()
    assert summary.status == "succeeded"
    assert summary.broker_ping is True
    assert paths.count("GET /api/v3/account") == 1
    assert paths.count("GET /api/v3/openOrders") == 1
    assert paths.count("GET /api/v3/klines") == len(SYMBOLS)
    assert paths.count("POST /api/v3/order") == len(SYMBOLS)
    assert not [p for p in paths if "ticker" in p or "exchangeInfo" in p or "myTrades" in p]
    # klines 2 each, the account 20, the open-orders list 80, the orders 1 each.
    assert exchange.weight_total - weight_before == 2 * 10 + 20 + 80 + 10
