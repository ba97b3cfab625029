"""The backtest's replay: closed candles only, indicators once, guardrails, the span."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from otonom_trader.backtest.simulator import Backtest, BacktestResult
from otonom_trader.config.validation import compose_validated
from otonom_trader.market.candles import Candle
from otonom_trader.strategy import indicators
from otonom_trader.strategy.model import Strategy, load_strategy

from .conftest import ALWAYS_TRADE, BASELINE, BTC_1H, read_candles, strategy_on


def _run(
    strategy: Strategy,
    candles: dict[str, list[Candle]],
    overrides: list[str] | None = None,
    **span: datetime,
) -> BacktestResult:
    _raw, app = compose_validated(["alerts.enabled=false", *(overrides or [])])
    return Backtest(app, strategy, candles, **span).run()


def _fills(result: BacktestResult) -> list[tuple[object, ...]]:
    return [(f.time, f.side, f.quantity, f.price, f.fee) for f in result.fills]


def test_changing_future_candles_never_changes_earlier_fills(tmp_path: Path) -> None:
    strategy = load_strategy(strategy_on(BASELINE, tmp_path, "BTC/USDT"))
    candles = read_candles(BTC_1H, "BTC/USDT")[:300]
    cut = 200
    # From candle 200 on, a different market: prices 20 % lower and falling.
    altered = candles[:cut] + [
        dataclasses.replace(
            c,
            open=c.open * 0.8 * (1 - n / 1000),
            high=c.high * 0.8 * (1 - n / 1000),
            low=c.low * 0.8 * (1 - n / 1000) * 0.999,
            close=c.close * 0.8 * (1 - n / 1000),
        )
        for n, c in enumerate(candles[cut:])
    ]
    altered[cut] = dataclasses.replace(altered[cut], open=candles[cut - 1].close)
    decided_until = candles[cut].open_time  # the close of candle cut-1

    original = _run(strategy, {"BTC/USDT": candles}, ["data.max_jump_pct=1000"])
    changed = _run(strategy, {"BTC/USDT": altered}, ["data.max_jump_pct=1000"])

    before = [f for f in _fills(original) if f[0] <= decided_until]
    assert before, "the window must trade before the cut for this test to mean anything"
    assert [f for f in _fills(changed) if f[0] <= decided_until] == before
    assert _fills(changed) != _fills(original)  # the future did change what came after


def test_a_fill_happens_at_the_close_of_the_candle_that_signalled_it(tmp_path: Path) -> None:
    strategy = load_strategy(strategy_on(BASELINE, tmp_path, "BTC/USDT"))
    candles = read_candles(BTC_1H, "BTC/USDT")[:300]
    closes = {c.open_time.replace(tzinfo=UTC): c.close for c in candles}

    result = _run(strategy, {"BTC/USDT": candles})

    for fill in result.fills:
        signal_candle = fill.time - (candles[1].open_time - candles[0].open_time)
        close = closes[signal_candle]
        # The modelled price is that candle's close ± 5 bps slippage, on the tick grid.
        assert abs(float(fill.price) / close - 1) <= 0.00051


def test_indicators_are_computed_once_per_series_not_per_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = load_strategy(strategy_on(BASELINE, tmp_path, "BTC/USDT"))
    candles = read_candles(BTC_1H, "BTC/USDT")[:300]
    calls: list[int] = []
    real_ema, real_rsi = indicators.ema, indicators.rsi

    def counted_ema(values: list[float], period: int) -> list[float | None]:
        calls.append(len(values))
        return real_ema(values, period)

    def counted_rsi(values: list[float], period: int) -> list[float | None]:
        calls.append(len(values))
        return real_rsi(values, period)

    monkeypatch.setattr(indicators, "ema", counted_ema)
    monkeypatch.setattr(indicators, "rsi", counted_rsi)
    from otonom_trader.strategy import signals

    monkeypatch.setitem(signals._INDICATOR_FUNCTIONS, "ema", counted_ema)
    monkeypatch.setitem(signals._INDICATOR_FUNCTIONS, "rsi", counted_rsi)

    result = _run(strategy, {"BTC/USDT": candles})

    assert result.fills
    # EMA 12, EMA 26 and RSI 14, each once over all 300 candles.
    assert calls == [300, 300, 300]


def test_span_trades_only_inside_from_and_to_while_earlier_candles_warm_up(
    tmp_path: Path,
) -> None:
    strategy = load_strategy(strategy_on(BASELINE, tmp_path, "BTC/USDT"))
    candles = read_candles(BTC_1H, "BTC/USDT")[:300]
    start, end = candles[100].open_time, candles[250].open_time

    result = _run(strategy, {"BTC/USDT": candles}, start=start, end=end)

    assert len(result.equity) == 150
    assert result.equity[0].time == candles[101].open_time  # the close of candle 100
    assert result.equity[-1].time == end
    assert all(start < f.time <= end for f in result.fills)


def test_tight_guardrails_halt_the_backtest_and_count_the_halts(tmp_path: Path) -> None:
    strategy = load_strategy(strategy_on(ALWAYS_TRADE, tmp_path, "BTC/USDT"))
    candles = read_candles(BTC_1H, "BTC/USDT")[:120]

    free = _run(strategy, {"BTC/USDT": candles}, ["guardrails=off"])
    halted = _run(strategy, {"BTC/USDT": candles}, ["guardrails.max_consecutive_losses=1"])

    assert free.kill_switch_halts == 0
    assert halted.kill_switch_halts >= 1
    assert len(halted.fills) < len(free.fills)


def test_two_symbols_share_one_cash_balance(tmp_path: Path) -> None:
    strategy = load_strategy(strategy_on(ALWAYS_TRADE, tmp_path, "BTC/USDT", "ETH/USDT"))
    btc = read_candles(BTC_1H, "BTC/USDT")[:60]
    # ETH at a tenth of BTC's price path: a second, differently priced series on the same clock.
    eth = [
        dataclasses.replace(
            c, open=c.open / 10, high=c.high / 10, low=c.low / 10, close=c.close / 10
        )
        for c in btc
    ]

    result = _run(strategy, {"BTC/USDT": btc, "ETH/USDT": eth}, ["guardrails=off"])

    assert {f.symbol for f in result.fills} == {"BTC/USDT", "ETH/USDT"}
    assert all(p.cash >= 0 for p in result.equity)
    assert result.bar_steps == 120
