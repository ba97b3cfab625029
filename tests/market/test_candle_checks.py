"""find_issues: every kind of bad data is reported with its kind and where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from otonom_trader.market.candles import Candle, find_issues, timeframe_seconds

T0 = datetime(2025, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _bar(i: float, close: float = 100.0, **kw: float) -> Candle:
    values = {"open": 100.0, "high": 101.0, "low": 99.0, "close": close, "volume": 5.0, **kw}
    return Candle(T0 + i * H, **values)


def _kinds(candles: list[Candle], **kw: object) -> list[str]:
    return [issue.kind for issue in find_issues("BTC/USDT", candles, "1h", **kw)]  # type: ignore[arg-type]


def test_clean_series_when_checked_then_no_issue() -> None:
    assert _kinds([_bar(i) for i in range(5)]) == []


def test_gap_when_two_candles_missing_then_reported_with_count() -> None:
    issues = find_issues("BTC/USDT", [_bar(0), _bar(1), _bar(4)], "1h")
    assert [i.kind for i in issues] == ["gap"]
    assert "2 candle(s) missing after 2025-06-01 01:00" in str(issues[0])


def test_misaligned_candle_when_checked_then_reported_as_gap() -> None:
    issues = find_issues("BTC/USDT", [_bar(0), _bar(1.5)], "1h")
    assert [i.kind for i in issues] == ["gap"] and "not a multiple of 1h" in issues[0].detail


def test_duplicate_when_checked_then_reported() -> None:
    assert _kinds([_bar(0), _bar(1), _bar(1), _bar(2)]) == ["duplicate"]


def test_out_of_order_when_checked_then_reported() -> None:
    assert "out_of_order" in _kinds([_bar(0), _bar(2), _bar(1), _bar(3)])


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
def test_nan_or_inf_when_checked_then_bad_value(field: str) -> None:
    assert _kinds([_bar(0), _bar(1, **{field: float("nan")})]) == ["bad_value"]
    assert _kinds([_bar(0), _bar(1, **{field: float("inf")})]) == ["bad_value"]


@pytest.mark.parametrize(
    "values",
    [
        {"high": 99.5},  # high under the open
        {"low": 100.5},  # low over the open
        {"high": 98.0, "low": 99.0},  # high under low
        {"close": 0.0, "low": 0.0},  # non-positive price
        {"volume": -1.0},
    ],
)
def test_impossible_ohlc_when_checked_then_bad_value(values: dict[str, float]) -> None:
    assert _kinds([_bar(0, **values)]) == ["bad_value"]


def test_stale_when_newest_close_older_than_limit_then_reported() -> None:
    candles = [_bar(i) for i in range(3)]  # newest closes at T0 + 3 h
    assert _kinds(candles, now=T0 + 5 * H, stale_after_timeframes=2) == []
    assert _kinds(candles, now=T0 + 5 * H + timedelta(seconds=1), stale_after_timeframes=2) == [
        "stale"
    ]


def test_empty_when_checked_then_reported() -> None:
    assert _kinds([]) == ["empty"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m", 60), ("15m", 900), ("4h", 14400), ("1d", 86400), ("1w", 604800)]
)
def test_timeframe_seconds_when_valid_then_seconds(text: str, seconds: int) -> None:
    assert timeframe_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "0h", "1y", "1.5h", "-1h"])
def test_timeframe_seconds_when_invalid_then_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="invalid timeframe"):
        timeframe_seconds(text)
