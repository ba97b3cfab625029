"""From closed candles to order intents.

``evaluate`` looks only at the candles it is given — the market-data layer hands over closed
candles only — and only at the newest one's indicator values, computed from that candle and the
ones before it. So a signal can never depend on a candle that is still forming.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def condition_holds(condition: Condition, closes: list[float]) -> bool:
    """Evaluate one condition on the newest closed candle."""
    p = condition.params
    name = condition.indicator
    if name in ("sma_cross", "ema_cross", "sma_above", "ema_above"):
        average = indicators.sma if name.startswith("sma") else indicators.ema
        fast, slow = average(closes, p["fast"]), average(closes, p["slow"])
        f_now, s_now = fast[-1], slow[-1]
        if f_now is None or s_now is None:
            return False
        if name.endswith("_above"):
            return f_now > s_now if p.get("direction", "above") == "above" else f_now < s_now
        f_prev, s_prev = fast[-2], slow[-2]
        if f_prev is None or s_prev is None:
            return False
        if p["direction"] == "up":
            return f_prev <= s_prev and f_now > s_now
        return f_prev >= s_prev and f_now < s_now
    if name == "rsi":
        value = indicators.rsi(closes, p["period"])[-1]
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
            level = indicators.rolling_max(closes, p["lookback"])[-1]
            return level is not None and closes[-1] > level
        level = indicators.rolling_min(closes, p["lookback"])[-1]
        return level is not None and closes[-1] < level
    raise ValueError(f"unknown indicator {name}")  # the loader refuses these earlier


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
    closes = series.closes()
    price = to_decimal(closes[-1])
    stamp = f"{series.candles[-1].open_time:%Y-%m-%d %H:%M}"
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
            if condition_holds(condition, closes):
                return Signal(symbol, Action.SELL, f"exit: {condition.describe()}", price, stamp)
        return Signal(symbol, Action.HOLD, "long; no exit condition", price, stamp)
    if all(condition_holds(c, closes) for c in strategy.entry):
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
