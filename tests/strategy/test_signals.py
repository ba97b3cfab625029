"""Signals on closed candles: no look-ahead, risk exits, SKIP on bad data, and sizing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otonom_trader.broker.types import OrderSide
from otonom_trader.market.candles import Candle, CandleSeries, closed_only, find_issues
from otonom_trader.strategy.model import parse_strategy
from otonom_trader.strategy.signals import Action, Signal, evaluate, size_intent

START = datetime(2025, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _strategy(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "name": "t",
        "version": "1",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "entry": [{"indicator": "ema_cross", "fast": 3, "slow": 8, "direction": "up"}],
        "exit": [{"indicator": "ema_cross", "fast": 3, "slow": 8, "direction": "down"}],
        "sizing": {"mode": "pct_equity", "value": 10, "max_position_quote": 2500},
        "risk": {"stop_loss_pct": 4, "take_profit_pct": 8},
    }
    data.update(overrides)
    return parse_strategy(data, "test.yaml")


def _candles(closes: list[float], start: datetime = START) -> list[Candle]:
    out, previous = [], closes[0]
    for i, close in enumerate(closes):
        out.append(
            Candle(
                start + i * HOUR,
                previous,
                max(previous, close) * 1.001,
                min(previous, close) * 0.999,
                close,
                10.0,
            )
        )
        previous = close
    return out


def _series(closes: list[float]) -> CandleSeries:
    candles = _candles(closes)
    issues = find_issues("BTC/USDT", candles, "1h")
    return CandleSeries("BTC/USDT", "1h", tuple(candles), tuple(issues))


# -- no look-ahead ------------------------------------------------------------------------------

walks = st.lists(st.floats(min_value=-0.03, max_value=0.03), min_size=30, max_size=80)
open_bar = st.tuples(*(st.floats(allow_nan=True, allow_infinity=True) for _ in range(5)))


@settings(max_examples=150, deadline=None)
@given(walks, open_bar, st.integers(min_value=0, max_value=3599), st.booleans())
def test_evaluate_when_still_open_candle_changes_or_appended_then_signal_unchanged(
    steps: list[float], bar: tuple[float, ...], seconds_into_bar: int, long: bool
) -> None:
    strategy = _strategy(
        entry=[
            {"indicator": "breakout", "lookback": 5, "direction": "up"},
            {"indicator": "rsi", "period": 5, "below": 100},
        ],
        exit=[{"indicator": "breakout", "lookback": 5, "direction": "down"}],
    )
    closes = [100.0]
    for step in steps:
        closes.append(closes[-1] * (1 + step))
    closed = _candles(closes)
    forming_open = closed[-1].open_time + HOUR
    now = forming_open + timedelta(seconds=seconds_into_bar)  # inside the forming candle
    forming = Candle(forming_open, *bar)
    qty, entry = (Decimal(1), Decimal("100")) if long else (Decimal(0), None)

    def signal(candles: list[Candle]) -> Signal:
        kept = closed_only(candles, "1h", now)
        series = CandleSeries(
            "BTC/USDT", "1h", tuple(kept), tuple(find_issues("BTC/USDT", kept, "1h"))
        )
        return evaluate(strategy, series, qty, entry)

    assert signal(closed + [forming]) == signal(closed)


def test_closed_only_when_candle_closes_exactly_now_then_it_is_kept() -> None:
    candles = _candles([1.0, 2.0, 3.0])
    assert closed_only(candles, "1h", candles[-1].open_time + HOUR) == candles
    assert (
        closed_only(candles, "1h", candles[-1].open_time + HOUR - timedelta(microseconds=1))
        == candles[:-1]
    )


def test_breakout_when_close_above_previous_highs_then_buy() -> None:
    strategy = _strategy(entry=[{"indicator": "breakout", "lookback": 3, "direction": "up"}])

    assert (
        evaluate(
            strategy, _series([10, 11, 12, 11, 10, 10, 10, 10, 10, 10, 13]), Decimal(0), None
        ).action
        is Action.BUY
    )
    assert (
        evaluate(
            strategy, _series([10, 11, 12, 11, 10, 10, 10, 10, 10, 13, 12]), Decimal(0), None
        ).action
        is Action.HOLD
    )


def test_ema_cross_up_when_flat_then_buy_with_reason_and_price() -> None:
    signal = evaluate(_strategy(), _series([100.0] * 20 + [105.0]), Decimal(0), None)

    assert signal.action is Action.BUY
    assert signal.price == Decimal("105.0")
    assert signal.reason.startswith("entry: ema_cross(fast=3, slow=8, direction=up)")


# -- stop-loss / take-profit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "action", "reason"),
    [
        (96.0, Action.SELL, "stop-loss"),  # exactly 4 % under 100: the stop is inclusive
        (95.0, Action.SELL, "stop-loss"),
        (108.0, Action.SELL, "take-profit"),
        (100.0, Action.HOLD, "long; no exit condition"),
        (107.9, Action.HOLD, "long; no exit condition"),
    ],
)
def test_risk_exits_when_long_then_against_average_entry(
    last: float, action: Action, reason: str
) -> None:
    signal = evaluate(_strategy(), _series([100.0] * 20 + [last]), Decimal("0.5"), Decimal("100"))

    assert signal.action is action
    assert signal.reason.startswith(reason)


def test_risk_exits_when_not_configured_then_exit_rule_decides() -> None:
    strategy = _strategy(risk={})
    signal = evaluate(strategy, _series([100.0] * 20 + [90.0]), Decimal(1), Decimal("100"))

    assert signal.action is Action.SELL
    assert signal.reason.startswith("exit: ema_cross")


# -- bad or short data → SKIP --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        (lambda c: c[:10] + c[11:], "gap"),
        (lambda c: c[:10] + [c[10]] + c[10:], "duplicate"),
        (lambda c: c[:10] + [c[11], c[10]] + c[12:], "out_of_order"),
        (lambda c: c[:-1] + [Candle(c[-1].open_time, 1, 2, 0.5, float("nan"), 1)], "bad_value"),
        (lambda c: c[:-1] + [Candle(c[-1].open_time, 10, 9, 8, 11, 1)], "bad_value"),
    ],
)
def test_evaluate_when_series_has_an_issue_then_skip(mutate: Any, kind: str) -> None:
    candles = mutate(_candles([100.0 + i for i in range(30)]))
    series = CandleSeries(
        "BTC/USDT", "1h", tuple(candles), tuple(find_issues("BTC/USDT", candles, "1h"))
    )

    signal = evaluate(_strategy(), series, Decimal(0), None)

    assert signal.action is Action.SKIP
    assert kind in signal.reason
    assert signal.price is None


def test_evaluate_when_stale_then_skip() -> None:
    candles = _candles([100.0] * 30)
    now = candles[-1].open_time + HOUR * 4  # newest closed candle ended 3 h ago, limit 2 h
    issues = find_issues("BTC/USDT", candles, "1h", now, stale_after_timeframes=2)

    signal = evaluate(
        _strategy(), CandleSeries("BTC/USDT", "1h", tuple(candles), tuple(issues)), Decimal(0), None
    )

    assert [i.kind for i in issues] == ["stale"]
    assert signal.action is Action.SKIP


def test_evaluate_when_history_too_short_then_skip() -> None:
    signal = evaluate(_strategy(), _series([100.0] * 9), Decimal(0), None)
    assert signal.action is Action.SKIP
    assert "strategy needs 10" in signal.reason


# -- sizing -------------------------------------------------------------------------------------

BUY = Signal("BTC/USDT", Action.BUY, "entry", Decimal("100"))


def _size(strategy: Any, signal: Signal = BUY, **kw: Any) -> Any:
    args = dict(
        equity=Decimal(10_000),
        cash=Decimal(10_000),
        position_qty=Decimal(0),
        position_value=Decimal(0),
        fee_rate=Decimal("0.001"),
    )
    args.update(kw)
    return size_intent(strategy, signal, **args)


def test_sizing_fixed_quote_when_enough_cash_then_spends_the_amount() -> None:
    intent = _size(_strategy(sizing={"mode": "fixed_quote", "value": 500}))
    assert (intent.side, intent.quantity) == (OrderSide.BUY, Decimal(5))
    assert intent.signal_price == Decimal(100)


def test_sizing_pct_equity_when_enough_cash_then_spends_the_share_of_equity() -> None:
    intent = _size(_strategy(sizing={"mode": "pct_equity", "value": 10}), equity=Decimal(20_000))
    assert intent.quantity == Decimal(20)


def test_sizing_cap_when_budget_exceeds_max_position_then_capped() -> None:
    strategy = _strategy(sizing={"mode": "pct_equity", "value": 50, "max_position_quote": 2500})
    assert _size(strategy).quantity == Decimal(25)
    assert _size(strategy, position_value=Decimal(2000)).quantity == Decimal(5)
    assert _size(strategy, position_value=Decimal(2500)) is None


def test_sizing_when_cash_is_short_then_cost_with_fee_and_slippage_fits_the_cash() -> None:
    strategy = _strategy(sizing={"mode": "fixed_quote", "value": 5000})
    fee, slip, cash = Decimal("0.001"), Decimal("0.0005"), Decimal(300)

    plain = _size(strategy, cash=cash, fee_rate=fee)
    slipped = _size(strategy, cash=cash, fee_rate=fee, slippage_rate=slip)

    assert plain.quantity * Decimal(100) * (1 + fee) == pytest.approx(cash, abs=Decimal("1e-20"))
    cost = slipped.quantity * Decimal(100) * (1 + slip) * (1 + fee)
    assert cost <= cash and cost == pytest.approx(cash, abs=Decimal("1e-20"))


def test_sizing_when_no_cash_then_no_intent() -> None:
    assert _size(_strategy(), cash=Decimal(0)) is None


def test_sizing_sell_when_long_then_closes_whole_position_and_when_flat_then_nothing() -> None:
    sell = Signal("BTC/USDT", Action.SELL, "exit", Decimal("100"))
    intent = _size(_strategy(), sell, position_qty=Decimal("0.1234"))

    assert (intent.side, intent.quantity) == (OrderSide.SELL, Decimal("0.1234"))
    assert _size(_strategy(), sell) is None
    assert _size(_strategy(), Signal("BTC/USDT", Action.HOLD, "", Decimal(100))) is None
    assert _size(_strategy(), Signal("BTC/USDT", Action.SKIP, "gap", None)) is None
