"""A named bot sizes from its own allocation and never spends cash the account does not have:
its buy on the local Binance exchange is capped by the account's free cash, whatever its
``bot.capital`` says; a named PAPER bot trades its own paper book, started with its capital."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from bots_fleet import BotFleet, local_exchange
from sqlalchemy import select

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.persistence.models import BookAccount, OrderRecord
from otonom_trader.testkit.clock import ManualClock

ALWAYS_TRADE = Path(__file__).resolve().parents[1] / "fixtures" / "always_buy_v1.0.yaml"
START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


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


def test_a_named_paper_bot_trades_its_own_paper_book_with_its_capital(tmp_path: Path) -> None:
    daemon = TradingDaemon(
        db_path=tmp_path / "paper.db",
        strategy_path=ALWAYS_TRADE,
        mode=ExecutionMode.PAPER,
        overrides=["alerts.enabled=false", "bot.name=solo", "bot.capital=500"],
        clock=ManualClock(START),
    )
    try:
        summary = daemon.run_once()
        with daemon.context.db.session() as session:
            book = session.get(BookAccount, "paper@solo")
            shared = session.get(BookAccount, "paper")
            bots = set(session.scalars(select(OrderRecord.bot)))
    finally:
        daemon.close()

    assert book is not None and book.initial_cash == Decimal(500) and shared is None
    assert summary.orders and {line.book for line in summary.orders} == {"paper@solo"}
    # 20 % of its 500 per symbol (the strategy's sizing), not of paper.initial_cash's 10,000
    assert all(line.filled_qty * (line.price or 0) <= 101 for line in summary.orders)
    assert bots == {"solo"}
