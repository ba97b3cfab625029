"""``otonom-trader data download``: page public candles into the local store.

::

    otonom-trader data download --exchange binance --symbols BTC/USDT,ETH/USDT \\
        --timeframe 1h --since 2024-01-01 [--until 2024-07-01] [--base-url URL]

Times are ISO 8601 dates or datetimes (UTC when no offset is given) or epoch milliseconds.
Run it again to resume: it starts after the newest stored candle. The final table shows each
symbol's stored rows in the range, first and last candle and the gaps (missing intervals).
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from otonom_trader.config.errors import ConfigError
from otonom_trader.market.csv_source import parse_timestamp

if TYPE_CHECKING:  # ccxt and pyarrow load only when the command runs, not with every command
    from otonom_trader.market.download import SeriesReport
    from otonom_trader.market.store import CandleStore

#: Gap lines printed under the table per symbol (the rest are counted).
SHOWN_GAPS = 5
#: A progress line every this many pages.
PROGRESS_PAGES = 10


def register(subparsers: Any) -> None:
    """Add the ``data`` command and its ``download`` subcommand to the top-level parser."""
    data = subparsers.add_parser("data", help="historical candles in the local store")
    sub = data.add_subparsers(dest="data_command", metavar="{download}")
    sub.required = True
    download = sub.add_parser(
        "download",
        help="download public candles into $OTONOM_HOME/data (resumes where it stopped)",
        description="Page public OHLCV candles through ccxt into the local Parquet store.",
    )
    download.add_argument("--exchange", default="binance", help="ccxt exchange id")
    download.add_argument(
        "--symbols", required=True, help="comma-separated, e.g. BTC/USDT,ETH/USDT"
    )
    download.add_argument("--timeframe", default="1h", help="e.g. 1m, 5m, 1h, 1d (default 1h)")
    download.add_argument("--since", required=True, help="first candle, e.g. 2024-01-01")
    download.add_argument("--until", default=None, help="stop before this time (default: now)")
    download.add_argument(
        "--base-url", default=None, help="another host, e.g. http://127.0.0.1:PORT"
    )
    download.add_argument(
        "--limit",
        type=int,
        default=None,
        help="candles per request (default and maximum: the exchange's own limit)",
    )
    download.add_argument(
        "--store", default=None, metavar="DIR", help="store folder (default $OTONOM_HOME/data)"
    )
    download.set_defaults(func=handle_download)


def handle_download(args: argparse.Namespace) -> int:
    """Check everything, download, print the summary table; 0 when done."""
    from otonom_trader.market.download import HistoryDownloader
    from otonom_trader.market.store import CandleStore

    since = _when(args.since, "--since")
    until = _when(args.until, "--until") if args.until else None
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    store = CandleStore(args.store)
    console = Console(stderr=False, width=80)

    pages: Counter[str] = Counter()
    stored_so_far: Counter[str] = Counter()

    def progress(symbol: str, stored: int) -> None:
        # One line per PROGRESS_PAGES pages: a year of 1m candles is 526 pages a symbol.
        pages[symbol] += 1
        stored_so_far[symbol] += stored
        if pages[symbol] % PROGRESS_PAGES == 1:
            console.print(f"{symbol}: {stored_so_far[symbol]:,} candles stored", highlight=False)

    downloader = HistoryDownloader(
        store, args.exchange, base_url=args.base_url, page_limit=args.limit, on_page=progress
    )
    try:
        reports = downloader.download(symbols, args.timeframe, since, until)
    finally:
        downloader.close()
    render_reports(reports, args.exchange, args.timeframe, store, console)
    return 0


def render_reports(
    reports: list[SeriesReport],
    exchange: str,
    timeframe: str,
    store: CandleStore,
    console: Console,
) -> None:
    """The summary table (fits 80 columns) and the first gaps of each symbol."""
    table = Table(title=f"{exchange} {timeframe} → {store.root}", title_justify="left")
    for column in ("symbol", "rows", "new", "first", "last", "gaps"):
        table.add_column(column, justify="right" if column in ("rows", "new", "gaps") else "left")
    for report in reports:
        table.add_row(
            report.symbol,
            str(report.rows),
            str(report.added),
            _time(report.first),
            _time(report.last),
            str(len(report.gaps)),
        )
    console.print(table)
    for report in reports:
        for gap in report.gaps[:SHOWN_GAPS]:
            console.print(f"gap {report.symbol}: {gap}", highlight=False)
        if len(report.gaps) > SHOWN_GAPS:
            console.print(
                f"gap {report.symbol}: … and {len(report.gaps) - SHOWN_GAPS} more", highlight=False
            )


def _when(text: str, flag: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise ConfigError(str(exc), key=flag) from None


def _time(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M}" if when is not None else "-"
