"""Target positions: an exit wants the book flat. An exit that filled only in part is completed
on the next cycle (not at the next exit signal, hours later), and in SHADOW each book sells its
own holding, so both end flat together."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from otonom_trader.broker.types import OrderRequest, OrderSide
from otonom_trader.daemon import ExecutionMode, TradingDaemon, steps
from otonom_trader.portfolio.ledger import positions_of
from otonom_trader.strategy.signals import OrderIntent
from otonom_trader.testkit.clock import ManualClock

HOLD_FOREVER = """name: hold_forever
version: "1.0"
symbols: [BTC/USDT]
timeframe: 1h
entry:
  - {indicator: rsi, period: 14, below: 100}
exit:
  - {indicator: rsi, period: 14, below: 0}
sizing: {mode: pct_equity, value: 20}
"""
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def _daemon(tmp_path: Path, mode: ExecutionMode, *extra: str) -> TradingDaemon:
    strategy = tmp_path / "hold_forever.yaml"
    strategy.write_text(HOLD_FOREVER)
    return TradingDaemon(
        db_path=tmp_path / "trader.db",
        strategy_path=strategy,
        mode=mode,
        overrides=["alerts.enabled=false", "guardrails=off", *extra],
        clock=ManualClock(T0),
    )


def _held(daemon: TradingDaemon, book: str) -> Decimal:
    with daemon.context.db.session() as session:
        position = positions_of(session, book).get("BTC/USDT")
        return position.quantity if position is not None else Decimal(0)


def test_a_partly_filled_exit_is_completed_on_the_next_cycle(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, ExecutionMode.PAPER)
    ctx = daemon.context
    gate = ctx.legs[0].gate
    batch = steps.fetch_signal(ctx, T0)
    gate.set_marks(batch.marks)
    # The book bought 0.1 BTC; its exit sold only 0.04 (a partial fill).
    gate.place_order(OrderRequest("BTC/USDT", OrderSide.BUY, Decimal("0.1"), client_order_id="b1"))
    gate.place_order(
        OrderRequest("BTC/USDT", OrderSide.SELL, Decimal("0.04"), client_order_id="s1")
    )

    # Act: the strategy's exit condition no longer holds (it never does here)
    summary = daemon.run_once()

    lines = [o for o in summary.orders if o.symbol == "BTC/USDT"]
    signal = next(s for s in summary.signals if s.symbol == "BTC/USDT")
    assert signal.action == "sell" and "completing the exit" in signal.reason
    assert [(o.side, o.filled_qty) for o in lines] == [("sell", Decimal("0.06"))]
    assert _held(daemon, "paper") == 0
    daemon.close()


def test_shadow_books_sell_their_own_holdings_and_end_flat_together(tmp_path: Path) -> None:
    # The exchange fills the entry only in part (40-100 %); the paper book fills it whole.
    daemon = _daemon(
        tmp_path,
        ExecutionMode.SHADOW,
        "broker.sim.partial_fill_probability=1.0",
        "broker.sim.reject_probability=0",
    )
    ctx = daemon.context
    paper_book, broker_book = ctx.account.shadow_paper_book, ctx.account.book
    daemon.run_once()  # entry: both books buy; the exchange's fill is partial
    assert Decimal(0) < _held(daemon, broker_book) < _held(daemon, paper_book)
    # A person's exit (the strategy here never exits): one SELL intent for the broker's holding.
    batch = steps.fetch_signal(ctx, ctx.clock())
    intent = OrderIntent(
        "BTC/USDT",
        OrderSide.SELL,
        _held(daemon, broker_book),
        batch.marks["BTC/USDT"],
        "exit",
        "2026-06-01 11:00",
    )
    sim = ctx.legs[1].gate.raw_broker
    sim.cfg.partial_fill_probability = 0.0  # type: ignore[attr-defined]
    steps._set_marks(ctx, batch.marks)
    ctx.engine.execute([intent], "run-exit")

    assert _held(daemon, paper_book) == 0 and _held(daemon, broker_book) == 0
    daemon.close()
