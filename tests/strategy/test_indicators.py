"""Indicators against values computed by hand, and their no-look-ahead prefix property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otonom_trader.strategy import indicators


def test_sma_when_three_bars_then_averages_the_window() -> None:
    assert indicators.sma([1.0, 2.0, 3.0, 4.0, 5.0], 3) == [None, None, 2.0, 3.0, 4.0]


def test_ema_when_seeded_with_sma_then_smooths_with_two_over_n_plus_one() -> None:
    # period 3 → alpha 0.5; seed SMA(2, 4, 6) = 4; then 0.5·8 + 0.5·4 = 6; 0.5·3 + 0.5·6 = 4.5
    assert indicators.ema([2.0, 4.0, 6.0, 8.0, 3.0], 3) == [None, None, 4.0, 6.0, 4.5]


def test_ema_when_history_shorter_than_period_then_all_none() -> None:
    assert indicators.ema([1.0, 2.0], 3) == [None, None]


def test_rsi_when_wilder_smoothing_then_matches_hand_computation() -> None:
    # changes +1 −1 +2 | +1 −1; first averages gain 3/3 = 1, loss 1/3 → RS 3 → 75
    # next: gain (2·1 + 1)/3 = 1, loss (2·1/3 + 0)/3 = 2/9 → RS 4.5 → 100 − 100/5.5
    # next: gain (2·1 + 0)/3 = 2/3, loss (2·2/9 + 1)/3 = 13/27 → RS 18/13 → 100 − 100·13/31
    values = indicators.rsi([10.0, 11.0, 10.0, 12.0, 13.0, 12.0], 3)
    assert values[:3] == [None, None, None]
    assert values[3] == pytest.approx(75.0)
    assert values[4] == pytest.approx(100 - 100 / 5.5)
    assert values[5] == pytest.approx(100 - 100 * 13 / 31)


def test_rsi_when_only_gains_then_100_and_when_flat_then_50() -> None:
    assert indicators.rsi([1.0, 2.0, 3.0, 4.0], 3)[3] == 100.0
    assert indicators.rsi([5.0, 5.0, 5.0, 5.0], 3)[3] == 50.0


def test_rolling_max_when_current_bar_is_highest_then_it_is_excluded() -> None:
    assert indicators.rolling_max([1.0, 2.0, 3.0, 9.0], 2) == [None, None, 2.0, 3.0]


def test_rolling_min_when_current_bar_is_lowest_then_it_is_excluded() -> None:
    assert indicators.rolling_min([5.0, 4.0, 6.0, 1.0], 2) == [None, None, 4.0, 4.0]


prices = st.lists(st.floats(min_value=1, max_value=1e6), min_size=1, max_size=60)


@given(
    prices,
    st.lists(st.floats(min_value=1, max_value=1e6), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=20),
)
def test_indicators_when_values_appended_then_earlier_outputs_unchanged(
    values: list[float], appended: list[float], period: int
) -> None:
    for indicator in (
        indicators.sma,
        indicators.ema,
        indicators.rsi,
        indicators.rolling_max,
        indicators.rolling_min,
    ):
        before = indicator(values, period)
        after = indicator(values + appended, period)[: len(values)]
        assert after == before
