"""From closed candles to order intents.

``evaluate`` looks only at the candles it is given — the market-data layer hands over closed
candles only — and only at the newest one's indicator values, computed from that candle and the
ones before it. So a signal can never depend on a candle that is still forming.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from otonom_trader.broker.types import OrderSide, to_decimal
from otonom_trader.market.candles import CandleSeries
from otonom_trader.strategy import indicators
from otonom_trader.strategy.model import Condition, Strategy


class Action(StrEnum):
    """What the strategy wants for a symbol this cycle."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"
    SKIP = "skip"  # data problem or not enough history: nothing is traded


@dataclass(frozen=True)
class Signal:
    """The strategy's decision for one symbol, with the reason in words."""

    symbol: str
    action: Action
    reason: str
    price: Decimal | None  # last closed price (the signal price)
    candle_time: str | None = None


@dataclass(frozen=True)
class OrderIntent:
    """An order the strategy wants: sized, not yet rounded to the market's rules."""

    symbol: str
    side: OrderSide
    quantity: Decimal
    signal_price: Decimal
    reason: str
    # Open time of the closed candle whose signal this is: part of the order's identity, so a
    # restarted cycle for the same candle recognises the order it already sent.
    candle_time: str | None = None

    @property
    def target_flat(self) -> bool:
        """A sell is an exit: the position the strategy wants is none. Every book sells all it
        holds (its own holding, not the quantity another book sold), and an exit that filled
        only in part is completed on the next cycles."""
        return self.side is OrderSide.SELL


class IndicatorTable:
    """Every indicator a strategy's conditions read, computed once over a series' closes.

    The indicators are causal (the value at index ``i`` uses closes ``0..i`` only), so one
    table over a whole history answers every bar of a backtest exactly as a table over the
    candles up to that bar would: the daemon's cycle and the backtest decide through the same
    ``decide`` on the same values.
    """

    def __init__(self, conditions: Sequence[Condition], closes: Sequence[float]) -> None:
        self.closes = closes
        self._series: dict[tuple[str, int], list[float | None]] = {}
        for condition in conditions:
            for key in _indicator_keys(condition):
                if key not in self._series:
                    self._series[key] = _compute(key, closes)

    @classmethod
    def for_strategy(cls, strategy: Strategy, closes: Sequence[float]) -> IndicatorTable:
        """The table of every entry and exit condition of ``strategy``."""
        return cls((*strategy.entry, *strategy.exit), closes)

    def value(self, indicator: str, period: int, index: int) -> float | None:
        """``indicator`` (sma, ema, rsi, rolling_max, rolling_min) of ``period`` at ``index``."""
        return self._series[(indicator, period)][index]


def _indicator_keys(condition: Condition) -> list[tuple[str, int]]:
    p = condition.params
    name = condition.indicator
    if name in ("sma_cross", "ema_cross", "sma_above", "ema_above"):
        average = name[:3]
        return [(average, int(p["fast"])), (average, int(p["slow"]))]
    if name == "rsi":
        return [("rsi", int(p["period"]))]
    if name == "breakout":
        return [("rolling_max" if p["direction"] == "up" else "rolling_min", int(p["lookback"]))]
    raise ValueError(f"unknown indicator {name}")  # the loader refuses these earlier


_INDICATOR_FUNCTIONS = {
    "sma": indicators.sma,
    "ema": indicators.ema,
    "rsi": indicators.rsi,
    "rolling_max": indicators.rolling_max,
    "rolling_min": indicators.rolling_min,
}


def _compute(key: tuple[str, int], closes: Sequence[float]) -> list[float | None]:
    name, period = key
    return _INDICATOR_FUNCTIONS[name](closes, period)


def condition_holds_at(condition: Condition, table: IndicatorTable, i: int) -> bool:
    """Evaluate one condition on the closed candle at index ``i`` (the newest one the cycle
    sees), reading only values at ``i`` and ``i - 1``."""
    p = condition.params
    name = condition.indicator
    if name in ("sma_cross", "ema_cross", "sma_above", "ema_above"):
        average = name[:3]
        f_now = table.value(average, p["fast"], i)
        s_now = table.value(average, p["slow"], i)
        if f_now is None or s_now is None:
            return False
        if name.endswith("_above"):
            return f_now > s_now if p.get("direction", "above") == "above" else f_now < s_now
        if i < 1:
            return False
        f_prev = table.value(average, p["fast"], i - 1)
        s_prev = table.value(average, p["slow"], i - 1)
        if f_prev is None or s_prev is None:
            return False
        if p["direction"] == "up":
            return f_prev <= s_prev and f_now > s_now
        return f_prev >= s_prev and f_now < s_now
    if name == "rsi":
        value = table.value("rsi", p["period"], i)
        if value is None:
            return False
        ok = True
        if "below" in p:
            ok = ok and value < p["below"]
        if "above" in p:
            ok = ok and value > p["above"]
        return ok
    if name == "breakout":
        if p["direction"] == "up":
            level = table.value("rolling_max", p["lookback"], i)
            return level is not None and table.closes[i] > level
        level = table.value("rolling_min", p["lookback"], i)
        return level is not None and table.closes[i] < level
    raise ValueError(f"unknown indicator {name}")  # the loader refuses these earlier


def condition_holds(condition: Condition, closes: list[float]) -> bool:
    """Evaluate one condition on the newest closed candle."""
    return condition_holds_at(condition, IndicatorTable((condition,), closes), len(closes) - 1)


def evaluate(
    strategy: Strategy,
    series: CandleSeries,
    position_qty: Decimal,
    avg_entry: Decimal | None,
) -> Signal:
    """BUY when flat and every entry condition holds; SELL when long and any exit condition
    (or the stop-loss / take-profit) holds; otherwise HOLD. SKIP on bad or short data."""
    symbol = series.symbol
    if series.issues:
        return Signal(symbol, Action.SKIP, "; ".join(str(i) for i in series.issues), None)
    if len(series.candles) < strategy.required_history:
        return Signal(
            symbol,
            Action.SKIP,
            f"{len(series.candles)} closed candles, strategy needs {strategy.required_history}",
            None,
        )
    table = IndicatorTable.for_strategy(strategy, series.closes())
    newest = len(series.candles) - 1
    stamp = candle_stamp(series.candles[newest].open_time)
    return decide(strategy, symbol, table, newest, stamp, position_qty, avg_entry)


def candle_stamp(open_time: datetime) -> str:
    """The candle's identity in a signal and an intent: its open time to the minute."""
    return f"{open_time:%Y-%m-%d %H:%M}"


def decide(
    strategy: Strategy,
    symbol: str,
    table: IndicatorTable,
    i: int,
    stamp: str,
    position_qty: Decimal,
    avg_entry: Decimal | None,
) -> Signal:
    """The decision on the closed candle at index ``i`` of ``table`` (enough history assumed):
    risk exits and exit conditions when long, entry conditions when flat."""
    price = to_decimal(table.closes[i])
    if position_qty > 0:
        risk = strategy.risk
        if avg_entry and risk.stop_loss_pct is not None:
            stop = avg_entry * (1 - to_decimal(risk.stop_loss_pct) / 100)
            if price <= stop:
                return Signal(
                    symbol, Action.SELL, f"stop-loss: {price} <= {stop:.8g}", price, stamp
                )
        if avg_entry and risk.take_profit_pct is not None:
            target = avg_entry * (1 + to_decimal(risk.take_profit_pct) / 100)
            if price >= target:
                return Signal(
                    symbol, Action.SELL, f"take-profit: {price} >= {target:.8g}", price, stamp
                )
        for condition in strategy.exit:
            if condition_holds_at(condition, table, i):
                return Signal(symbol, Action.SELL, f"exit: {condition.describe()}", price, stamp)
        return Signal(symbol, Action.HOLD, "long; no exit condition", price, stamp)
    if all(condition_holds_at(c, table, i) for c in strategy.entry):
        reason = "entry: " + " and ".join(c.describe() for c in strategy.entry)
        return Signal(symbol, Action.BUY, reason, price, stamp)
    return Signal(symbol, Action.HOLD, "flat; entry conditions not all met", price, stamp)


def size_intent(
    strategy: Strategy,
    signal: Signal,
    *,
    equity: Decimal,
    cash: Decimal,
    position_qty: Decimal,
    position_value: Decimal,
    fee_rate: Decimal,
    slippage_rate: Decimal = Decimal(0),
) -> OrderIntent | None:
    """Turn a BUY/SELL signal into an intent. Buys respect the sizing rule, the per-position cap
    and the cash available; sells close the whole position.

    When cash is the limit, the order must still be affordable after the book's modelled
    slippage (``slippage_rate``, e.g. 5 bps → ``Decimal("0.0005")``) and taker fee
    (``fee_rate``), both charged on top of the signal price.
    """
    if signal.price is None or signal.action not in (Action.BUY, Action.SELL):
        return None
    if signal.action is Action.SELL:
        if position_qty <= 0:
            return None
        return OrderIntent(
            signal.symbol,
            OrderSide.SELL,
            position_qty,
            signal.price,
            signal.reason,
            signal.candle_time,
        )
    sizing = strategy.sizing
    budget = to_decimal(sizing.value)
    if sizing.mode == "pct_equity":
        budget = equity * budget / 100
    if sizing.max_position_quote is not None:
        budget = min(budget, to_decimal(sizing.max_position_quote) - position_value)
    budget = min(budget, cash / ((1 + fee_rate) * (1 + slippage_rate)))
    if budget <= 0:
        return None
    return OrderIntent(
        signal.symbol,
        OrderSide.BUY,
        budget / signal.price,
        signal.price,
        signal.reason,
        signal.candle_time,
    )
