"""data=store: cycles read the downloaded candles up to their clock, exactly as data=csv would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.cli import main
from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.config.errors import ConfigError
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.daemon.summary import SignalLine
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.candles import Candle
from otonom_trader.market.download import HistoryDownloader
from otonom_trader.market.store import CandleStore
from otonom_trader.market.store_source import StoreMarketData
from otonom_trader.testkit.clock import ManualClock

HOUR = timedelta(hours=1)
#: One cycle's signals and its fills (side, quantity, price, fee).
CycleOutcome = tuple[list[SignalLine], list[tuple[str, Decimal, Decimal | None, Decimal]]]
SINCE = datetime(2023, 1, 1, tzinfo=UTC)


@pytest.fixture
def btc_only_baseline(tmp_path: Path) -> Path:
    """The shipped baseline strategy on BTC/USDT alone (the real candles are BTC's)."""
    text = (PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml").read_text()
    path = tmp_path / "baseline_btc.yaml"
    path.write_text(text.replace("  - ETH/USDT\n", ""))
    return path


def test_a_fetch_sees_the_closed_candles_up_to_the_cycle_clock(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    CandleStore(tmp_path).append("binance", "BTC/USDT", "1h", btc_1h)
    now = btc_1h[500].open_time + timedelta(minutes=30)  # candle 500 is still forming

    series = StoreMarketData(tmp_path).fetch("BTC/USDT", "1h", 200, now)

    assert series.candles == tuple(btc_1h[300:500]) and series.tradable


def test_a_gap_in_the_store_is_reported_and_not_traded(
    tmp_path: Path, btc_1h: list[Candle]
) -> None:
    CandleStore(tmp_path).append("binance", "BTC/USDT", "1h", btc_1h[:450] + btc_1h[452:])

    series = StoreMarketData(tmp_path).fetch("BTC/USDT", "1h", 100, btc_1h[500].open_time)

    assert [i.kind for i in series.issues] == ["gap"] and not series.tradable


def test_a_store_not_refreshed_lately_is_stale(tmp_path: Path, btc_1h: list[Candle]) -> None:
    CandleStore(tmp_path).append("binance", "BTC/USDT", "1h", btc_1h)

    series = StoreMarketData(tmp_path).fetch("BTC/USDT", "1h", 50, btc_1h[-1].open_time + 4 * HOUR)

    assert [i.kind for i in series.issues] == ["stale"]


def test_store_cycles_make_the_same_signals_and_fills_as_csv_cycles_on_the_same_candles(
    tmp_path: Path,
    btc_exchange: LocalBinanceExchange,
    market_clock: ManualClock,
    btc_only_baseline: Path,
    btc_1h_csv: Path,
) -> None:
    # The store is filled the way a user fills it: downloaded from the (local) exchange.
    HistoryDownloader(CandleStore(), base_url=btc_exchange.base_url, clock=market_clock).download(
        ["BTC/USDT"], "1h", SINCE
    )
    sources = {
        "csv": ["data=csv", f"data.csv_path={btc_1h_csv}"],
        "store": ["data=store"],  # $OTONOM_HOME/data, where the download went
    }
    seen: dict[str, list[CycleOutcome]] = {}
    for name, overrides in sources.items():
        # 12 cycles over a stretch where the baseline enters and exits (2023-01-24 19:00, 23:00).
        clock = ManualClock(datetime(2023, 1, 24, 13, 1, tzinfo=UTC))
        daemon = TradingDaemon(
            db_path=tmp_path / f"{name}.db",
            strategy_path=btc_only_baseline,
            mode=ExecutionMode.PAPER,
            overrides=["alerts.enabled=false", *overrides],
            clock=clock,
        )
        seen[name] = []
        for _ in range(12):
            summary = daemon.run_once()
            assert summary.status == "succeeded" and not summary.data_issues
            seen[name].append(
                (
                    summary.signals,
                    [(o.side, o.filled_qty, o.price, o.fee) for o in summary.orders],
                )
            )
            clock.advance()
        daemon.close()

    assert seen["store"] == seen["csv"]
    fills = [fill[0] for _, orders in seen["store"] for fill in orders]
    assert fills == ["buy", "sell"]


def test_data_store_without_the_strategy_symbols_is_one_config_error(
    tmp_path: Path, btc_1h: list[Candle], btc_only_baseline: Path
) -> None:
    CandleStore(tmp_path / "store").append("binance", "BTC/USDT", "4h", btc_1h[:10])

    with pytest.raises(ConfigError) as error:
        TradingDaemon(
            db_path=tmp_path / "trader.db",
            strategy_path=btc_only_baseline,
            overrides=["data=store", f"data.store_path={tmp_path / 'store'}"],
        )

    message = str(error.value)
    assert message.startswith("data.store_path: no 1h candles of BTC/USDT from binance in ")
    assert "(have: none)" in message and "otonom-trader data download" in message
    assert "\n" not in message


def test_daemon_once_on_an_empty_store_exits_2_with_one_line(
    tmp_path: Path, btc_only_baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "--db",
            str(tmp_path / "trader.db"),
            "daemon-once",
            "--strategy",
            str(btc_only_baseline),
            "-o",
            "data=store",
        ]
    )

    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "no 1h candles of BTC/USDT from binance" in err
    assert not (tmp_path / "trader.db").exists()
