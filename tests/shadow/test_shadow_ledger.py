"""The shadow ledger: legs from fills and errors, slippage sign, round trip on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    BelowMinimumNotionalError,
    BrokerNetworkError,
    InsufficientFundsError,
    KillSwitchError,
)
from otonom_trader.broker.types import OrderFill, OrderSide, OrderStatus
from otonom_trader.persistence import Database
from otonom_trader.persistence.registry import metadata
from otonom_trader.shadow.ledger import LegStatus, ShadowLedger, ShadowLeg, slippage_bps

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FillLeg = Callable[..., ShadowLeg]


def _record(
    ledger: ShadowLedger,
    paper: ShadowLeg,
    broker: ShadowLeg,
    *,
    side: OrderSide = OrderSide.BUY,
    intent_id: str = "intent-1",
    run_id: str = "run-1",
    at: datetime = AT,
) -> int:
    return ledger.record(
        run_id=run_id,
        intent_id=intent_id,
        symbol="BTC/USDT",
        side=side,
        requested_qty=Decimal("0.015"),
        signal_price=Decimal("64000"),
        paper=paper,
        broker=broker,
        at=at,
    )


def test_record_then_pairs_round_trips_every_field(
    any_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange
    ledger = ShadowLedger(any_db)
    paper = make_fill_leg(
        OrderSide.BUY, "0.015", "64006.4", "0.960096", latency_ms=0.25, coid="ot-p-1"
    )
    broker = ShadowLeg.from_error(
        AmbiguousOrderError("submit timed out after 10 s", "ot-b-1"), "ot-b-1"
    )

    # Act
    row_id = _record(ledger, paper, broker)
    pairs = ledger.pairs()

    # Assert
    assert [pair.id for pair in pairs] == [row_id]
    pair = pairs[0]
    assert (pair.run_id, pair.intent_id, pair.symbol, pair.side) == (
        "run-1",
        "intent-1",
        "BTC/USDT",
        OrderSide.BUY,
    )
    assert pair.requested_qty == Decimal("0.015")
    assert str(pair.signal_price) == "64000"
    assert pair.paper == paper
    assert str(pair.paper.fee) == "0.960096"  # exact digits, also on SQLite
    assert pair.paper.latency_ms == 0.25
    assert pair.broker == broker
    assert pair.broker.status == LegStatus.ERROR
    assert pair.broker.error == "AmbiguousOrderError: submit timed out after 10 s"
    assert pair.paper_slippage_bps == Decimal("1.0000")  # 6.4 / 64000 = 1 bp worse
    assert pair.broker_slippage_bps is None
    assert pair.created_at == AT and pair.created_at.tzinfo is not None


def test_record_same_intent_twice_replaces_the_legs_of_the_same_row(
    any_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange
    ledger = ShadowLedger(any_db)
    paper = make_fill_leg(OrderSide.BUY, "0.015", "64000", "0.96")
    unknown = ShadowLeg.from_error(BrokerNetworkError("connection reset"), "ot-b-1")
    resolved = make_fill_leg(OrderSide.BUY, "0.015", "64032", "0.96048", coid="ot-b-1")

    # Act
    first = _record(ledger, paper, unknown)
    second = _record(ledger, paper, resolved)

    # Assert
    pairs = ledger.pairs()
    assert first == second
    assert len(pairs) == 1
    assert pairs[0].broker == resolved
    assert pairs[0].broker_slippage_bps == Decimal("5")


def test_pairs_filters_by_window_bounds_inclusive_and_by_run(
    sqlite_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange
    ledger = ShadowLedger(sqlite_db)
    leg = make_fill_leg(OrderSide.BUY, "0.015", "64000", "0.96")
    for hour, run in [(0, "run-a"), (1, "run-a"), (2, "run-b"), (3, "run-b")]:
        _record(ledger, leg, leg, intent_id=f"i{hour}", run_id=run, at=AT + timedelta(hours=hour))

    # Act
    window = ledger.pairs(since=AT + timedelta(hours=1), until=AT + timedelta(hours=2))
    run_b = ledger.pairs(run_id="run-b")
    everything = ledger.pairs()

    # Assert
    assert [pair.intent_id for pair in window] == ["i1", "i2"]
    assert [pair.intent_id for pair in run_b] == ["i2", "i3"]
    assert [pair.intent_id for pair in everything] == ["i0", "i1", "i2", "i3"]


@pytest.mark.parametrize(
    ("side", "fill_price", "expected_bps"),
    [
        (OrderSide.BUY, "100.25", Decimal("25")),  # paid more than the signal: worse
        (OrderSide.BUY, "99.90", Decimal("-10")),  # paid less: better
        (OrderSide.SELL, "99.90", Decimal("10")),  # received less: worse
        (OrderSide.SELL, "100.25", Decimal("-25")),  # received more: better
        (OrderSide.SELL, "100", Decimal("0")),
    ],
)
def test_slippage_is_positive_when_worse_than_signal_for_the_side(
    side: OrderSide, fill_price: str, expected_bps: Decimal
) -> None:
    # Act
    bps = slippage_bps(side, Decimal("100"), Decimal(fill_price))

    # Assert
    assert bps == expected_bps


def test_slippage_is_stored_with_its_sign_for_buys_and_sells(
    sqlite_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange
    ledger = ShadowLedger(sqlite_db)
    buy_paper = make_fill_leg(OrderSide.BUY, "1", "64064", "0")  # 10 bps above
    buy_broker = make_fill_leg(OrderSide.BUY, "1", "63968", "0")  # 5 bps below
    sell_paper = make_fill_leg(OrderSide.SELL, "1", "63936", "0")  # 10 bps below
    sell_broker = make_fill_leg(OrderSide.SELL, "1", "64032", "0")  # 5 bps above

    # Act
    _record(ledger, buy_paper, buy_broker, side=OrderSide.BUY, intent_id="buy")
    _record(ledger, sell_paper, sell_broker, side=OrderSide.SELL, intent_id="sell")
    buy, sell = ledger.pairs()

    # Assert
    assert (buy.paper_slippage_bps, buy.broker_slippage_bps) == (Decimal(10), Decimal(-5))
    assert (sell.paper_slippage_bps, sell.broker_slippage_bps) == (Decimal(10), Decimal(-5))


def test_slippage_rounds_to_a_ten_thousandth_of_a_basis_point() -> None:
    # Act
    bps = slippage_bps(OrderSide.BUY, Decimal("3"), Decimal("3.001"))

    # Assert: 0.001 / 3 * 10000 = 3.3333… bps
    assert bps == Decimal("3.3333")


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        (OrderStatus.FILLED, "1", LegStatus.FILLED),
        (OrderStatus.PARTIALLY_FILLED, "0.4", LegStatus.PARTIALLY_FILLED),
        (OrderStatus.OPEN, "0", LegStatus.OPEN),
        (OrderStatus.OPEN, "0.4", LegStatus.PARTIALLY_FILLED),
        (OrderStatus.CANCELLED, "0.4", LegStatus.PARTIALLY_FILLED),
        (OrderStatus.CANCELLED, "0", LegStatus.REJECTED),
        (OrderStatus.REJECTED, "0", LegStatus.REJECTED),
        (OrderStatus.UNKNOWN, "0", LegStatus.ERROR),
    ],
)
def test_from_fill_maps_order_status_to_leg_status(
    status: OrderStatus, filled: str, expected: str
) -> None:
    # Arrange
    fill = OrderFill(
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        quantity=Decimal(filled),
        price=Decimal("100") if Decimal(filled) > 0 else None,
        requested_quantity=Decimal("1"),
        status=status,
        order_id="42",
        client_order_id="ot-1",
        fee=Decimal("0.01") if Decimal(filled) > 0 else Decimal(0),
        latency_ms=12.5,
    )

    # Act
    leg = ShadowLeg.from_fill(fill)

    # Assert
    assert leg.status == expected
    assert leg.quantity == Decimal(filled)
    assert leg.client_order_id == "ot-1"
    assert leg.latency_ms == 12.5
    assert (leg.error is not None) == (expected in (LegStatus.ERROR, LegStatus.REJECTED))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KillSwitchError("daily loss 6% > 5%"), LegStatus.HALTED),
        (InsufficientFundsError("Account has insufficient balance"), LegStatus.REJECTED),
        (BelowMinimumNotionalError("0.0001 × 64000 = 6.4 < 10"), LegStatus.REJECTED),
        (BrokerNetworkError("connection refused"), LegStatus.ERROR),
        (RuntimeError("boom"), LegStatus.ERROR),
    ],
)
def test_from_error_classifies_the_failure(exc: BaseException, expected: str) -> None:
    # Act
    leg = ShadowLeg.from_error(exc, "ot-b-9")

    # Assert
    assert leg.status == expected
    assert (leg.quantity, leg.price, leg.fee) == (Decimal(0), None, Decimal(0))
    assert leg.client_order_id == "ot-b-9"
    assert leg.error is not None and leg.error.startswith(type(exc).__name__ + ": ")


def test_from_error_keeps_one_line_and_masks_credentials() -> None:
    # Arrange
    exc = RuntimeError(
        "POST https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=abc123def\n"
        "headers: X-MBX-APIKEY: k3yk3yk3y api_secret='s3cr3t'"
    )

    # Act
    leg = ShadowLeg.from_error(exc, None)

    # Assert
    assert leg.error is not None
    assert "\n" not in leg.error
    for secret in ("abc123def", "k3yk3yk3y", "s3cr3t"):
        assert secret not in leg.error
    assert "signature=***" in leg.error


def test_record_refuses_naive_time_and_non_positive_signal(
    sqlite_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange
    ledger = ShadowLedger(sqlite_db)
    leg = make_fill_leg(OrderSide.BUY, "1", "100", "0")

    # Act / Assert
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(ledger, leg, leg, at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="signal_price must be positive"):
        ledger.record(
            run_id="r",
            intent_id="i",
            symbol="BTC/USDT",
            side=OrderSide.BUY,
            requested_qty=Decimal(1),
            signal_price=Decimal(0),
            paper=leg,
            broker=leg,
            at=AT,
        )
    assert ledger.pairs() == []


def test_leg_refuses_an_unknown_status() -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="status must be one of"):
        ShadowLeg("done", Decimal(0), None, Decimal(0), None, None, None)


def test_migration_creates_the_table_the_model_describes(any_db: Database) -> None:
    # Act
    with any_db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("shadow_pairs")}
        uniques = inspect(conn).get_unique_constraints("shadow_pairs")

    # Assert: no difference touches shadow_pairs (other domains' tables are theirs to check)
    ours = [diff for diff in diffs if "shadow_pairs" in repr(diff)]
    assert ours == []
    assert {"ix_shadow_pairs_created_at", "ix_shadow_pairs_run_id"} <= indexes
    assert [sorted(u["column_names"]) for u in uniques] == [["intent_id", "run_id"]]
    assert "0004_shadow" in any_db.applied_revisions()


def test_record_again_with_a_skipped_leg_keeps_the_outcome_already_recorded(
    sqlite_db: Database, make_fill_leg: FillLeg
) -> None:
    # Arrange: the first attempt filled both legs; the re-run finds both already sent
    ledger = ShadowLedger(sqlite_db)
    paper = make_fill_leg(OrderSide.BUY, "0.015", "64000", "0.96", coid="ot-p-1")
    broker = make_fill_leg(OrderSide.BUY, "0.015", "64032", "0.96048", coid="ot-b-1")
    _record(ledger, paper, broker)

    # Act
    _record(
        ledger,
        ShadowLeg.skipped("already sent in an earlier attempt; not resent", "ot-p-1"),
        ShadowLeg.skipped("already sent in an earlier attempt; not resent", "ot-b-1"),
    )

    # Assert
    (pair,) = ledger.pairs()
    assert (pair.paper, pair.broker) == (paper, broker)
    assert pair.broker_slippage_bps == Decimal("5")


def test_skipped_leg_carries_its_reason_on_one_line() -> None:
    # Act
    leg = ShadowLeg.skipped("paper book holds no BTC\nto sell", "ot-p-2")

    # Assert
    assert leg.status == LegStatus.SKIPPED
    assert leg.error == "paper book holds no BTC to sell"
    assert (leg.quantity, leg.fee, leg.filled) == (Decimal(0), Decimal(0), False)
