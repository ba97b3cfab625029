"""GuardedBroker: the guide's form, the gate on place_order, cancels, reduce-only, SHADOW.

``HoldingsBroker`` is a small real ``Broker``: it keeps cash and holdings, fills market orders
at a set price and remembers cancels. The simulated exchange is used for the guide's snippet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otonom_trader.broker import (
    Balance,
    Broker,
    BrokerError,
    KillSwitchError,
    OrderFill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    build_broker,
)
from otonom_trader.broker.guarded import GuardedBroker, account_equity, reduces_position
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.market.symbols import to_unified
from otonom_trader.persistence import Database
from otonom_trader.testkit.clock import ManualClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class HoldingsBroker(Broker):
    """Cash in USDT plus base-asset holdings; market orders fill at ``prices[symbol]``."""

    name = "holdings (test broker)"

    def __init__(self, cash: Decimal = Decimal(10_000)) -> None:
        self.quote_asset = "USDT"
        self.cash = cash
        self.holdings: dict[str, Decimal] = {}
        self.prices: dict[str, Decimal] = {}
        self.placed: list[OrderRequest] = []
        self.cancelled: list[tuple[str, str]] = []

    def place_order(self, req: OrderRequest) -> OrderFill:
        symbol = to_unified(req.symbol)
        price = self.prices[symbol]
        sign = 1 if req.side is OrderSide.BUY else -1
        self.holdings[symbol] = self.holdings.get(symbol, Decimal(0)) + sign * req.quantity
        self.cash -= sign * req.quantity * price
        self.placed.append(req)
        return OrderFill(
            req.symbol,
            req.side,
            req.quantity,
            price,
            req.quantity,
            OrderStatus.FILLED,
            f"o{len(self.placed)}",
            req.client_order_id,
        )

    def cancel_order(self, symbol: str, order_id: str) -> None:
        self.cancelled.append((symbol, order_id))

    def get_open_positions(self) -> list[Position]:
        return [
            Position(symbol, qty, self.prices[symbol], mark_price=self.prices[symbol])
            for symbol, qty in self.holdings.items()
            if qty > 0
        ]

    def get_balances(self) -> list[Balance]:
        return [Balance("USDT", self.cash)]

    def ping(self) -> bool:
        return True


def buy(qty: str = "0.1", symbol: str = "BTC/USDT") -> OrderRequest:
    return OrderRequest(symbol=symbol, side=OrderSide.BUY, quantity=Decimal(qty))


def sell(qty: str, symbol: str = "BTC/USDT") -> OrderRequest:
    return OrderRequest(symbol=symbol, side=OrderSide.SELL, quantity=Decimal(qty))


def guarded(db: Database, raw: HoldingsBroker, clock: ManualClock, **cfg: object) -> GuardedBroker:
    config = GuardrailConfig(**cfg)  # type: ignore[arg-type]
    switch = KillSwitch(db, config, "broker")
    return GuardedBroker(raw, config, kill_switch=switch, clock=clock)


def test_guide_snippet_runs_as_written_with_the_simulated_exchange(
    tmp_path: Path, isolated_home: Path
) -> None:
    (tmp_path / "broker.yaml").write_text("kind: sim\n")
    req = OrderRequest(
        symbol="BTCUSDT", side=OrderSide.BUY, quantity=0.001, order_type=OrderType.MARKET
    )
    # --- the guide, section 3 ---
    guard_cfg = GuardrailConfig(
        max_daily_loss_pct=5.0,  # Max 5% daily loss
        max_drawdown_pct=40.0,  # Max 40% drawdown
        max_consecutive_losses=5,  # Max 5 losses in a row
        enabled=True,  # Enable guardrails
    )
    raw_broker = build_broker(str(tmp_path / "broker.yaml"))
    guarded_broker = GuardedBroker(raw_broker, guard_cfg)
    halted_by_hand = KillSwitch(Database(None), guard_cfg, "broker")
    halted_by_hand.trip("guide test", datetime.now(UTC), actor="pytest")
    messages = []
    try:
        fill = guarded_broker.place_order(req)
    except BrokerError as e:
        if "KILL-SWITCH" in str(e):
            messages.append("Trading halted by kill-switch!")
    active, reason = guarded_broker.get_kill_switch_status()
    # --- end of the guide's code ---
    assert messages == ["Trading halted by kill-switch!"]
    assert (active, reason) == (True, "manual: guide test")
    assert (isolated_home / "otonom.db").is_file()  # the default database, under OTONOM_HOME
    assert "fill" not in locals()


def test_orders_pass_while_clear_and_are_rejected_with_the_reason_after_a_daily_loss(
    sqlite_db: Database,
) -> None:
    raw = HoldingsBroker()
    raw.prices["BTC/USDT"] = Decimal(50_000)
    clock = ManualClock(T0)
    broker = guarded(sqlite_db, raw, clock)
    broker.place_order(buy("0.1"))  # 5,000 in BTC, 5,000 cash: equity 10,000

    raw.prices["BTC/USDT"] = Decimal(45_000)  # -500 unrealized: 5 % of the day's 10,000
    clock.now = T0 + timedelta(minutes=1)
    with pytest.raises(KillSwitchError) as caught:
        broker.place_order(buy("0.01"))

    assert str(caught.value).startswith("KILL-SWITCH active: daily loss 5.00% >= 5.0%")
    assert len(raw.placed) == 1
    assert broker.get_kill_switch_status()[0] is True


def test_cancel_passes_while_halted(sqlite_db: Database) -> None:
    raw = HoldingsBroker()
    broker = guarded(sqlite_db, raw, ManualClock(T0))
    broker.kill_switch.trip("drill", T0, actor="alice")

    broker.cancel_order("BTC/USDT", "123")

    assert raw.cancelled == [("BTC/USDT", "123")]


def test_reduce_only_policy_lets_only_position_reducing_sells_through(sqlite_db: Database) -> None:
    raw = HoldingsBroker()
    raw.prices["BTC/USDT"] = Decimal(50_000)
    raw.prices["ETH/USDT"] = Decimal(2_000)
    broker = guarded(sqlite_db, raw, ManualClock(T0), halt_policy="reduce_only")
    broker.place_order(buy("0.1"))
    broker.kill_switch.trip("drill", T0, actor="alice")

    broker.place_order(sell("0.04", symbol="BTCUSDT"))  # exchange spelling of the same symbol
    broker.place_order(sell("0.06"))
    with pytest.raises(KillSwitchError):
        broker.place_order(sell("0.01"))  # nothing left: this would open a short
    with pytest.raises(KillSwitchError):
        broker.place_order(buy("0.01"))
    with pytest.raises(KillSwitchError):
        broker.place_order(sell("1", symbol="ETH/USDT"))

    assert [r.quantity for r in raw.placed] == [Decimal("0.1"), Decimal("0.04"), Decimal("0.06")]


def test_reject_all_policy_rejects_even_a_closing_sell(sqlite_db: Database) -> None:
    raw = HoldingsBroker()
    raw.prices["BTC/USDT"] = Decimal(50_000)
    broker = guarded(sqlite_db, raw, ManualClock(T0))
    broker.place_order(buy("0.1"))
    broker.kill_switch.trip("drill", T0, actor="alice")

    with pytest.raises(KillSwitchError, match="manual: drill"):
        broker.place_order(sell("0.1"))


def test_equity_is_quote_cash_plus_positions_marked_to_market() -> None:
    raw = HoldingsBroker(cash=Decimal(1_000))
    raw.prices["BTC/USDT"] = Decimal(50_000)
    raw.holdings["BTC/USDT"] = Decimal("0.02")

    assert account_equity(raw) == Decimal(2_000)


def test_shadow_books_share_one_decision(sqlite_db: Database) -> None:
    cfg = GuardrailConfig()
    paper, exchange = HoldingsBroker(), HoldingsBroker()
    for raw in (paper, exchange):
        raw.prices["BTC/USDT"] = Decimal(50_000)
    switch = KillSwitch(sqlite_db, cfg, "broker")
    clock = ManualClock(T0)
    books = [
        GuardedBroker(
            raw, cfg, kill_switch=switch, equity_fn=lambda: account_equity(exchange), clock=clock
        )
        for raw in (paper, exchange)
    ]
    books[1].place_order(buy("0.1"))
    exchange.prices["BTC/USDT"] = Decimal(40_000)  # only the broker account loses
    clock.now = T0 + timedelta(minutes=1)

    for book in books:
        with pytest.raises(KillSwitchError, match="daily loss"):
            book.place_order(buy("0.01"))


def test_the_gate_forwards_only_the_broker_interface(sqlite_db: Database) -> None:
    # The gate is the one object every order passes: nothing else of the venue leaks through
    # it by accident (no attribute forwarding); the venue stays reachable by name.
    raw = HoldingsBroker()
    broker = guarded(sqlite_db, raw, ManualClock(T0))

    assert not hasattr(broker, "quote_asset")
    assert broker.raw_broker.quote_asset == "USDT"  # type: ignore[attr-defined]
    assert broker.name == raw.name and broker.ping()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    held=st.dictionaries(
        st.sampled_from(["BTC/USDT", "ETH/USDT"]),
        st.decimals(min_value=Decimal("0.001"), max_value=5, places=3),
    ),
    side=st.sampled_from([OrderSide.BUY, OrderSide.SELL]),
    symbol=st.sampled_from(["BTC/USDT", "BTCUSDT", "ETH/USDT", "SOL/USDT"]),
    qty=st.decimals(min_value=Decimal("0.001"), max_value=6, places=3),
)
def test_reduce_only_passes_exactly_the_sells_within_the_held_long(
    held: dict[str, Decimal], side: OrderSide, symbol: str, qty: Decimal
) -> None:
    positions = [Position(s, q, Decimal(100)) for s, q in held.items()]
    req = OrderRequest(symbol=symbol, side=side, quantity=qty)
    unified = symbol if "/" in symbol else "BTC/USDT"

    allowed = reduces_position(req, positions)

    assert allowed is (side is OrderSide.SELL and qty <= held.get(unified, Decimal(0)))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    policy=st.sampled_from(["reject_all", "reduce_only"]),
    cancels=st.lists(
        st.tuples(st.sampled_from(["BTC/USDT", "ETH/USDT"]), st.text(min_size=1, max_size=8)),
        min_size=1,
        max_size=5,
    ),
)
def test_cancels_always_pass_while_halted(
    sqlite_db: Database, policy: str, cancels: list[tuple[str, str]]
) -> None:
    raw = HoldingsBroker()
    broker = guarded(sqlite_db, raw, ManualClock(T0), halt_policy=policy)
    broker.kill_switch.trip("halted", T0, actor="alice")

    for symbol, order_id in cancels:
        broker.cancel_order(symbol, order_id)

    assert raw.cancelled == cancels
