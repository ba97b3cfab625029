"""Operator commands: ``status``, ``trades``, ``orders``, ``profit``, ``equity``.

    otonom-trader status [--book BOOK] [--bot NAME] [--account ID] [--json]
    otonom-trader trades [--symbol BTC/USDT] [--book paper] [--since 7d] [--until …] [--limit N]
    otonom-trader orders [same filters]
    otonom-trader profit [--book BOOK] [--bot NAME] [--account ID] [--json]
    otonom-trader equity [--book BOOK] [--since 30d] [--until …] [--plot equity.png] [--json]

Every command shows every book by default; ``--bot`` narrows to one named bot's books,
``--account`` to one account's (``otonom_trader.fleet.scope``); with several bots the tables
name each row's bot.

They read the database only (marks come from the latest snapshot, see
:mod:`otonom_trader.operator.views`); nothing is sent anywhere. Times: ISO dates or datetimes
(UTC if naive) or spans back from now (``90m``, ``24h``, ``7d``, ``2w``). A bad filter is one
line and exit status 2, raised as ``ConfigError`` for the top-level ``main()`` to print.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from otonom_trader.config.errors import ConfigError
from otonom_trader.fleet.scope import Fleet
from otonom_trader.operator import render, views
from otonom_trader.persistence.database import Database, resolve_url

if TYPE_CHECKING:
    from otonom_trader.config.schema import AppConfig

MAX_ROWS = 10_000
_SYMBOL = re.compile(r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the operator views to the top-level parser's subcommands."""
    status = subparsers.add_parser(
        "status",
        help="equity, cash, open positions with PnL, guard and last run, per book",
        description="Per book: equity, cash, open positions (quantity, average entry, mark, "
        "unrealized PnL), today's PnL, kill-switch state and the last run. Marks are those of "
        "the latest portfolio snapshot (no exchange is called).",
    )
    trades = subparsers.add_parser("trades", help="booked fills (filter by symbol, book, time)")
    orders = subparsers.add_parser("orders", help="journaled orders (filter by symbol, book, time)")
    profit = subparsers.add_parser(
        "profit", help="realized and unrealized PnL, win rate and fees, by symbol"
    )
    equity = subparsers.add_parser(
        "equity", help="equity and drawdown per book; --plot writes a PNG"
    )
    for parser in (status, trades, orders, profit, equity):
        parser.add_argument("--book", default=None, help="one book (default: every book)")
        parser.add_argument("--bot", default=None, help="one named bot (default: every bot)")
        parser.add_argument(
            "--account", default=None, help="one account's books (default: every account)"
        )
        parser.add_argument(
            "--json", action="store_true", help="print JSON (exact decimals) instead of tables"
        )
    for parser in (trades, orders, equity):
        parser.add_argument("--since", help="from: ISO date/datetime (UTC if naive) or 7d, 24h")
        parser.add_argument("--until", help="to: ISO date/datetime or a span back (default now)")
    for parser in (trades, orders):
        parser.add_argument("--symbol", default=None, help="one symbol, e.g. BTC/USDT")
        parser.add_argument(
            "--limit",
            type=_row_limit,
            default=50,
            help=f"the newest N rows, 1 to {MAX_ROWS} (default 50)",
        )
    equity.add_argument("--plot", metavar="FILE", help="write equity and drawdown as a PNG")
    status.set_defaults(func=status_command)
    trades.set_defaults(func=trades_command)
    orders.set_defaults(func=orders_command)
    profit.set_defaults(func=profit_command)
    equity.set_defaults(func=equity_command)


def _row_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_ROWS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_ROWS}, got {value}")
    return value


# --------------------------------------------------------------------------- commands


def status_command(args: argparse.Namespace) -> int:
    """``status``: every book's (or one book's) status."""
    now = datetime.now(UTC)
    app, db = _open(args)
    try:
        statuses = [
            views.book_status(db, book, now=now, guardrails=app.guardrails)
            for book in _books(args, db)
        ]
        _emit(args, statuses, render.status_json, render.render_status)
    finally:
        db.dispose()
    return 0


def trades_command(args: argparse.Namespace) -> int:
    """``trades``: the newest fills matching the filters."""
    return _history_command(args, views.trades, render.render_trades)


def orders_command(args: argparse.Namespace) -> int:
    """``orders``: the newest orders matching the filters."""
    return _history_command(args, views.orders, render.render_orders)


def _history_command(
    args: argparse.Namespace,
    fetch: Callable[[Database, views.HistoryFilter], Sequence[Any]],
    draw: Callable[[Any, Console], None],
) -> int:
    where = history_filter(args, now=datetime.now(UTC))
    _, db = _open(args)
    try:
        if args.bot is not None or args.account is not None:
            where = replace(where, books=tuple(_books(args, db)), bot=args.bot)
        _emit(args, list(fetch(db, where)), render.history_json, draw)
    finally:
        db.dispose()
    return 0


def profit_command(args: argparse.Namespace) -> int:
    """``profit``: realized/unrealized PnL, win rate and fees per book and symbol."""
    now = datetime.now(UTC)
    _, db = _open(args)
    try:
        profits = [views.book_profit(db, book, now=now) for book in _books(args, db)]
        _emit(args, profits, render.profit_json, render.render_profit)
    finally:
        db.dispose()
    return 0


def equity_command(args: argparse.Namespace) -> int:
    """``equity``: equity and drawdown per book over the window; ``--plot`` writes a PNG."""
    since, until = _window(args, now=datetime.now(UTC))
    target = plot_target(args.plot) if args.plot else None
    _, db = _open(args)
    try:
        books = _books(args, db)
        curves = [views.equity_curve(db, book, since=since, until=until) for book in books]
    finally:
        db.dispose()
    _emit(args, curves, render.equity_json, render.render_equity)
    if target is not None:
        if not any(curve.points for curve in curves):
            raise ConfigError(
                "no portfolio snapshots in this window: nothing to plot", key="--plot"
            )
        render.plot_equity(curves, target)
        if not args.json:
            Console(highlight=False).print(f"equity plot written to {target}", soft_wrap=True)
    return 0


# --------------------------------------------------------------------------- helpers


def history_filter(args: argparse.Namespace, *, now: datetime) -> views.HistoryFilter:
    """The filters of ``trades``/``orders`` from the flags (``ConfigError`` naming the flag)."""
    since, until = _window(args, now=now)
    symbol = args.symbol
    if symbol is not None:
        symbol = symbol.strip().upper()
        if not _SYMBOL.match(symbol):
            raise ConfigError(
                f"expected BASE/QUOTE such as BTC/USDT, got {args.symbol!r}", key="--symbol"
            )
    return views.HistoryFilter(
        symbol=symbol, book=args.book, since=since, until=until, limit=args.limit
    )


def _window(args: argparse.Namespace, *, now: datetime) -> tuple[datetime | None, datetime | None]:
    from otonom_trader.shadow.cli import parse_when

    since = parse_when(args.since, now=now, flag="--since") if args.since else None
    until = parse_when(args.until, now=now, flag="--until") if args.until else None
    if since is not None and until is not None and since > until:
        raise ConfigError(
            f"{since.isoformat()} is after --until {until.isoformat()}", key="--since"
        )
    return since, until


def plot_target(text: str) -> Path:
    """A ``.png`` path in a directory that exists (nothing but the file is created)."""
    target = Path(text).expanduser()
    if target.suffix.lower() != ".png" or target.is_dir():
        raise ConfigError(f"expected a path ending in .png, got {text!r}", key="--plot")
    if not target.parent.is_dir():
        raise ConfigError(f"directory {target.parent} does not exist", key="--plot")
    return target


def _open(args: argparse.Namespace) -> tuple[AppConfig, Database]:
    """The configuration and the database, after the checks that need no database. A SQLite
    file that does not exist is refused (a view never creates a database); an unknown
    ``--book`` is refused by name."""
    from otonom_trader.config.compose import load_config
    from otonom_trader.home import otonom_home
    from otonom_trader.operator.logfiles import configured_secrets, install_file_logging

    _, app = load_config(list(getattr(args, "overrides", None) or []))
    install_file_logging(otonom_home(), configured_secrets(app))
    url = resolve_url(getattr(args, "db", None) or app.db.url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigError(
            f"no database at {url.removeprefix('sqlite:///')}: run a cycle first (daemon-once)",
            key="--db",
        )
    db = Database(url, busy_timeout_ms=app.db.busy_timeout_ms)
    if args.book is not None and args.book not in views.book_names(db):
        known = ", ".join(views.book_names(db)) or "none yet"
        db.dispose()
        raise ConfigError(f"no book {args.book!r} in this database (books: {known})", key="--book")
    return app, db


def _books(args: argparse.Namespace, db: Database) -> list[str]:
    """The ledger books the ``--book`` / ``--bot`` / ``--account`` filters select (every book
    without one); an unknown bot or account is a ``ConfigError`` naming the known ones."""
    books = views.book_names(db)
    if args.bot is None and args.account is None:
        return [args.book] if args.book is not None else books
    chosen = Fleet.read(db).select(book=args.book, bot=args.bot, account=args.account)
    return [book for book in chosen if book in books]


def _emit(
    args: argparse.Namespace,
    items: list[Any],
    to_json: Callable[[Any], Any],
    draw: Callable[[Any, Console], None],
) -> None:
    if args.json:
        print(json.dumps([to_json(item) for item in items], indent=2))
    else:
        draw(items, Console(highlight=False))
