"""Recovery before trading: journaled orders an earlier cycle left open are resolved from the
exchange (real ``ccxt.binance`` against the local exchange) before anything new is sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from otonom_trader.broker.types import OrderRequest, OrderSide, OrderStatus
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.execution.engine import ExecutionEngine
from otonom_trader.execution.journal import journal_order
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence.models import OrderRecord
from otonom_trader.strategy.signals import OrderIntent
from otonom_trader.testkit.clock import ManualClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def daemon(
    tmp_path: Path, local_binance: LocalBinanceExchange, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TradingDaemon]:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")
    daemon = TradingDaemon(
        db_path=tmp_path / "trader.db",
        strategy_path=FIXTURES / "always_buy_v1.0.yaml",
        mode=ExecutionMode.LIVE,
        overrides=[
            "alerts.enabled=false",
            "mode.paper_book_in_live=false",
            "broker=binance_testnet",
            f"broker.base_url={local_binance.base_url}",
            "execution.ambiguity_window_seconds=15",
        ],
        clock=ManualClock(T0),
    )
    yield daemon
    daemon.close()


def _engine(daemon: TradingDaemon, alerts: list[str]) -> ExecutionEngine:
    ctx = daemon.context
    return ExecutionEngine(
        ctx.db,
        ctx.legs,
        account_id=ctx.account.account_id,
        bot=ctx.bot,
        mode="live",
        clock=ctx.clock,
        alert=lambda message, _key: alerts.append(message),
        ambiguity_window_s=15,
    )


def _journal(daemon: TradingDaemon, cid: str, side: OrderSide = OrderSide.BUY) -> None:
    ctx = daemon.context
    with ctx.db.session() as session:
        journal_order(
            session,
            OrderRequest("BTC/USDT", side, Decimal("0.01"), client_order_id=cid),
            book=ctx.account.book,
            mode="live",
            run_id="crashed-run",
            signal_price=Decimal(50000),
            now=ctx.clock(),
        )


def _status(daemon: TradingDaemon, cid: str) -> tuple[OrderRecord, int]:
    """The journal row of ``cid`` and how many fill rows it has."""
    with daemon.context.db.session() as session:
        row = session.scalars(select(OrderRecord).where(OrderRecord.client_order_id == cid)).one()
        return row, len(row.fills)


def test_an_order_the_exchange_filled_is_booked_once_from_the_exchange(
    daemon: TradingDaemon, local_binance: LocalBinanceExchange
) -> None:
    # Arrange: the crashed cycle journaled the order and the exchange filled it
    cid = "ot-recovered-0000000000000001-b"
    _journal(daemon, cid)
    leg = daemon.context.legs[0]
    leg.gate.raw_broker.place_order(  # type: ignore[attr-defined]
        OrderRequest("BTC/USDT", OrderSide.BUY, Decimal("0.01"), client_order_id=cid)
    )
    alerts: list[str] = []

    # Act: two recoveries (a second must not book again)
    first = _engine(daemon, alerts).recover()
    second = _engine(daemon, alerts).recover()

    # Assert
    record, fills = _status(daemon, cid)
    assert first.resolved == [cid] and second.resolved == []
    assert record.status == OrderStatus.FILLED and record.filled_qty == Decimal("0.01")
    assert fills == 1 and alerts == []
    assert len([o for o in local_binance.orders if o.client_order_id == cid]) == 1


def test_a_young_order_the_exchange_does_not_know_blocks_its_symbol_with_one_alert(
    daemon: TradingDaemon, local_binance: LocalBinanceExchange
) -> None:
    cid = "ot-in-flight-00000000000000001-b"
    _journal(daemon, cid)
    clock = daemon.context.clock
    assert isinstance(clock, ManualClock)
    alerts: list[str] = []
    engine = _engine(daemon, alerts)

    # Act: the order may still be in flight (5 s old, window 15 s): twice, then after the window
    clock.advance(seconds=5)
    first = engine.recover()
    blocked_line = engine.execute(
        [OrderIntent("BTC/USDT", OrderSide.BUY, Decimal("0.01"), Decimal(50000), "t", "c1")],
        "run-now",
    )
    engine.recover()
    clock.now += timedelta(seconds=30)
    later = engine.recover()

    # Assert: blocked and announced once while unknown; final (never placed) after the window
    assert first.unresolved == [cid] and ("paper" not in str(first.blocked))
    assert blocked_line[0].status == "blocked" and local_binance.orders == []
    assert len(alerts) == 1 and cid in alerts[0]
    assert later.not_sent == [cid] and later.blocked == set()
    assert _status(daemon, cid)[0].status == OrderStatus.NOT_SENT
