"""data download: real ccxt.binance paging the real BTC candles from the local exchange over
HTTP into the candle store: limits, the open candle, gaps, interruptions and bad input."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otonom_trader.broker.errors import ExchangeUnavailableError
from otonom_trader.cli import main
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.market.candles import Candle
from otonom_trader.market.download import Gap, HistoryDownloader, SeriesReport
from otonom_trader.market.store import CandleStore
from otonom_trader.testkit.clock import ManualClock

HOUR = timedelta(hours=1)
SINCE = datetime(2023, 1, 1, tzinfo=UTC)
Candles = list[Candle]
Download = Callable[..., SeriesReport]


class Interrupted(Exception):
    """Raised by the page hook to cut a download short."""


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    return CandleStore(tmp_path / "data")


@pytest.fixture
def download(
    store: CandleStore, btc_exchange: LocalBinanceExchange, market_clock: ManualClock
) -> Callable[..., SeriesReport]:
    """Download BTC/USDT 1h since 2023-01-01 from ``btc_exchange`` into ``store``."""

    def run(
        page_limit: int | None = None, on_page: Callable[[str, int], None] | None = None
    ) -> SeriesReport:
        downloader = HistoryDownloader(
            store,
            base_url=btc_exchange.base_url,
            clock=market_clock,
            page_limit=page_limit,
            on_page=on_page,
        )
        [report] = downloader.download(["BTC/USDT"], "1h", SINCE)
        return report

    return run


def _kline_starts(exchange: LocalBinanceExchange) -> list[datetime]:
    return [
        datetime.fromtimestamp(int(r.params["startTime"]) / 1000, tz=UTC)
        for r in exchange.requests
        if r.path == "/api/v3/klines"
    ]


def test_paging_with_a_small_limit_stores_every_closed_candle_once(
    download: Download, store: CandleStore, btc_exchange: LocalBinanceExchange, btc_1h: Candles
) -> None:
    report = download(page_limit=100)

    closed = btc_1h[:-1]  # the newest candle is still open at the clock
    assert store.read("binance", "BTC/USDT", "1h") == closed
    assert (report.rows, report.added, report.gaps) == (915, 915, ())
    assert (report.first, report.last) == (closed[0].open_time, closed[-1].open_time)
    klines = [r for r in btc_exchange.requests if r.path == "/api/v3/klines"]
    assert len(klines) == math.ceil(len(btc_1h) / 100) == 10
    assert {r.params["limit"] for r in klines} == {"100"}
    # Each page starts one candle after the previous page's last one.
    assert _kline_starts(btc_exchange)[1:] == [
        closed[i * 100 + 99].open_time + HOUR for i in range(9)
    ]


def test_the_page_limit_never_exceeds_the_exchanges_own(
    store: CandleStore, btc_exchange: LocalBinanceExchange
) -> None:
    downloader = HistoryDownloader(store, base_url=btc_exchange.base_url, page_limit=5000)

    assert downloader.exchange_limit() == 1000 and downloader.page_limit == 1000


def test_the_open_candle_is_stored_only_once_it_has_closed(
    download: Download, store: CandleStore, market_clock: ManualClock, btc_1h: Candles
) -> None:
    download()
    assert store.last_time("binance", "BTC/USDT", "1h") == btc_1h[-2].open_time

    market_clock.now = btc_1h[-1].open_time + HOUR  # the newest candle closes
    report = download()

    assert report.added == 1
    assert store.read("binance", "BTC/USDT", "1h") == btc_1h


def test_a_range_the_exchange_lacks_is_reported_as_a_gap_and_not_filled(
    download: Download, store: CandleStore, btc_exchange: LocalBinanceExchange, btc_1h: Candles
) -> None:
    outage = (datetime(2023, 1, 10, tzinfo=UTC), datetime(2023, 1, 10, 5, tzinfo=UTC))
    btc_exchange.omit_candles("BTC/USDT", *outage)

    report = download(page_limit=100)

    expected = [c for c in btc_1h[:-1] if not outage[0] <= c.open_time < outage[1]]
    assert store.read("binance", "BTC/USDT", "1h") == expected
    assert report.rows == 915 - 5
    assert report.gaps == (Gap(outage[0] - HOUR, outage[1], 5),)
    assert str(report.gaps[0]) == "5 candle(s) missing after 2023-01-09 23:00"


def test_an_interrupted_download_resumes_after_the_newest_stored_candle(
    download: Download, store: CandleStore, btc_exchange: LocalBinanceExchange, btc_1h: Candles
) -> None:
    pages: list[int] = []

    def stop_after_two_pages(symbol: str, stored: int) -> None:
        pages.append(stored)
        if len(pages) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        download(page_limit=100, on_page=stop_after_two_pages)
    assert store.read("binance", "BTC/USDT", "1h") == btc_1h[:200]
    btc_exchange.requests.clear()

    report = download(page_limit=100)

    starts = _kline_starts(btc_exchange)
    # One look before the oldest stored candle (the exchange has nothing older), then onwards
    # from the newest stored one.
    assert starts[:2] == [SINCE, btc_1h[199].open_time + HOUR]
    assert report.added == 915 - 200
    assert store.read("binance", "BTC/USDT", "1h") == btc_1h[:-1]


def test_a_killed_download_process_resumes_with_every_candle_exactly_once(
    tmp_path: Path, btc_exchange_now: LocalBinanceExchange, btc_1h: list[Candle]
) -> None:
    # On the real clock every one of the 2023 candles is closed, for the process too.
    exchange = btc_exchange_now
    # 46 pages of 20, each held 50 ms: the process is still paging when it is killed.
    exchange.faults.inject("delay", count=1000, path="/api/v3/klines", seconds=0.05)
    root = tmp_path / "store"
    command = [
        *(sys.executable, "-m", "otonom_trader.cli", "data", "download"),
        *("--symbols=BTC/USDT", "--since=2023-01-01", "--limit=20"),
        *(f"--base-url={exchange.base_url}", f"--store={root}"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_month = root / "binance" / "1h" / "BTC_USDT" / "2023-01.parquet"
    deadline = time.monotonic() + 60
    while not first_month.exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the download stored nothing within 60 s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL  # killed mid-download
    store = CandleStore(root)
    kept = store.read("binance", "BTC/USDT", "1h")
    assert 0 < len(kept) < len(btc_1h) and kept == btc_1h[: len(kept)]
    exchange.faults.clear()

    [report] = HistoryDownloader(store, base_url=exchange.base_url).download(
        ["BTC/USDT"], "1h", SINCE
    )

    assert report.added == len(btc_1h) - len(kept)
    assert store.read("binance", "BTC/USDT", "1h") == btc_1h


def test_the_command_prints_the_summary_table_with_the_gaps(
    tmp_path: Path,
    btc_exchange: LocalBinanceExchange,
    btc_1h: list[Candle],
    capsys: pytest.CaptureFixture[str],
) -> None:
    btc_exchange.omit_candles(
        "BTC/USDT", datetime(2023, 1, 20, tzinfo=UTC), datetime(2023, 1, 20, 2, tzinfo=UTC)
    )
    root = tmp_path / "store"

    status = main(
        [
            "data",
            "download",
            "--symbols",
            "BTC/USDT",
            "--since",
            "2023-01-15",
            "--until",
            "2023-02-01T00:00",
            "--base-url",
            btc_exchange.base_url,
            "--limit",
            "300",
            "--store",
            str(root),
        ]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "│ BTC/USDT │  406 │ 406 │ 2023-01-15 00:00 │ 2023-01-31 23:00 │    1 │" in out
    assert "gap BTC/USDT: 2 candle(s) missing after 2023-01-19 23:00" in out
    stored = CandleStore(root).read("binance", "BTC/USDT", "1h")
    assert len(stored) == 406 and stored[-1].open_time == datetime(2023, 1, 31, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--symbols", "FOO/USDT"], "--symbols: FOO/USDT: not a market on binance"),
        (["--symbols", "BTC/USDT,NOPE"], "--symbols: cannot tell base and quote apart"),
        (["--timeframe", "7x"], "--timeframe: invalid timeframe '7x'"),
        (["--timeframe", "1s"], "--timeframe: invalid timeframe '1s'"),
        (["--since", "2023-13-45"], "--since: timestamp '2023-13-45' is not epoch ms"),
        (["--until", "2022-12-01"], "--until: 2022-12-01 00:00 is not after --since"),
        (["--since", "2999-01-01"], "--since: 2999-01-01 00:00 is in the future"),
        (["--exchange", "nosuchexchange"], "--exchange: unknown ccxt exchange id"),
        (["--limit", "0"], "--limit: must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path,
    btc_exchange: LocalBinanceExchange,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    root = tmp_path / "store"
    given = {"--symbols": "BTC/USDT", "--since": "2023-01-01", "--timeframe": "1h"}
    given.update(dict(zip(arguments[::2], arguments[1::2], strict=True)))
    flags = [item for pair in given.items() for item in pair]

    status = main(
        ["data", "download", *flags, "--base-url", btc_exchange.base_url, "--store", str(root)]
    )

    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not root.exists()
    assert not [r for r in btc_exchange.requests if r.path == "/api/v3/klines"]


def test_rate_limited_pages_are_retried_and_the_download_completes(
    store: CandleStore,
    btc_exchange: LocalBinanceExchange,
    market_clock: ManualClock,
    btc_1h: Candles,
) -> None:
    btc_exchange.faults.inject("http_429", count=2, path="/api/v3/klines")
    waits: list[float] = []
    downloader = HistoryDownloader(
        store, base_url=btc_exchange.base_url, clock=market_clock, sleep=waits.append
    )

    [report] = downloader.download(["BTC/USDT"], "1h", SINCE)

    assert waits == [0.5, 1.0]
    assert report.added == 915 and store.read("binance", "BTC/USDT", "1h") == btc_1h[:-1]


def test_an_exchange_still_failing_after_the_retries_ends_the_download_keeping_its_pages(
    store: CandleStore,
    btc_exchange: LocalBinanceExchange,
    market_clock: ManualClock,
    btc_1h: Candles,
) -> None:
    def fail_after_two_pages(symbol: str, stored: int) -> None:
        if store.last_time("binance", symbol, "1h") == btc_1h[199].open_time:
            btc_exchange.faults.inject("http_503", count=3, path="/api/v3/klines")

    downloader = HistoryDownloader(
        store,
        base_url=btc_exchange.base_url,
        clock=market_clock,
        page_limit=100,
        on_page=fail_after_two_pages,
        sleep=lambda _: None,
    )

    with pytest.raises(ExchangeUnavailableError):
        downloader.download(["BTC/USDT"], "1h", SINCE)

    assert store.read("binance", "BTC/USDT", "1h") == btc_1h[:200]
