"""Drawing the operator views: rich tables that fit 80 columns, JSON for scripts, an equity PNG.

Tables are one per book (the book is the title, so a long account book name never squeezes the
columns); times are UTC. JSON carries every number as an exact decimal string and every time
as ISO 8601.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from otonom_trader.fleet.books import bot_of_book
from otonom_trader.operator.views import (
    BookProfit,
    BookStatus,
    EquityCurve,
    OrderView,
    TradeView,
)
from otonom_trader.shadow.report import fmt_decimal

#: Terminal width the tables are laid out for.
WIDTH = 80
#: Order statuses too wide for the orders table (JSON keeps the exact status).
SHORT_STATUS = {"partially_filled": "partial"}


def money(value: Decimal | None) -> str:
    """An amount of the quote currency with 2 decimals (``—`` for none)."""
    return fmt_decimal(value, 2)


def signed(value: Decimal | None) -> str:
    """``money`` with a ``+`` on gains."""
    text = money(value)
    return f"+{text}" if value is not None and value > 0 else text


def price(value: Decimal | None, digits: int = 8) -> str:
    """A price, quantity or fee to ``digits`` significant digits and at most 8 decimals, no
    trailing zeros (81746.585, 0.02443, 0.00002439)."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    exponent = max(value.adjusted() - digits + 1, -8)
    return fmt_decimal(value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN))


def when(at: datetime | None) -> str:
    """``2026-06-01 12:00`` (UTC)."""
    return "—" if at is None else f"{at:%Y-%m-%d %H:%M}"


def stamp(at: datetime) -> str:
    """``26-06-01 12:00`` (UTC): a table row's time, short enough for 80 columns."""
    return f"{at:%y-%m-%d %H:%M}"


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h 5m``, ``2d 4h`` ago."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def _table(title: str, *columns: str, numeric_from: int = 1) -> Table:
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), expand=False
    )
    for index, column in enumerate(columns):
        table.add_column(
            column,
            justify="right" if index >= numeric_from else "left",
            overflow="fold",
            no_wrap=index >= numeric_from or index == 0,
        )
    return table


# --------------------------------------------------------------------------- status


def guard_text(status: BookStatus) -> str:
    """``clear`` or ``HALTED since … — reason`` (plain text, no markup)."""
    guard = status.guard
    if not guard.active:
        return "clear"
    since = f" since {when(guard.since)} UTC" if guard.since else ""
    return f"HALTED{since}: {guard.reason or 'no reason recorded'}"


def last_run_text(status: BookStatus) -> str:
    """``succeeded 2026-06-01 12:00 UTC (5m ago, paper)`` or ``never``."""
    run = status.last_run
    if run is None:
        return "never"
    end = run.finished_at or run.started_at
    return f"{run.status} {when(end)} UTC ({age(run.age_seconds)} ago, {run.mode})"


def _summary(console: Console, heading: str) -> Table:
    """A two-column, headerless table under a bold heading line (the heading is printed here:
    as a table title it would wrap at the narrow table's width)."""
    console.print(f"[bold]{heading}[/]", soft_wrap=True)
    table = Table(show_header=False, box=box.SIMPLE, padding=(0, 1))
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    return table


def render_status(statuses: Sequence[BookStatus], console: Console) -> None:
    """A summary and a positions table per book."""
    if not statuses:
        console.print("no book in this database yet: run a cycle first (daemon-once)")
        return
    for status in statuses:
        quote = escape(status.quote_asset)
        summary = _summary(
            console,
            f"book {escape(status.book)}"
            + (f" · bot {escape(bot)}" if (bot := bot_of_book(status.book)) else "")
            + (f" · account {escape(status.account_id)}" if status.account_id else ""),
        )
        summary.add_row(f"equity ({quote})", money(status.equity))
        summary.add_row("cash", money(status.cash))
        summary.add_row("today's PnL", signed(status.today_pnl))
        summary.add_row("realized PnL", signed(status.realized_pnl))
        summary.add_row("unrealized PnL", signed(status.unrealized_pnl))
        guard = escape(guard_text(status))
        summary.add_row("guard", f"[bold red]{guard}[/]" if status.guard.active else guard)
        summary.add_row("last run", escape(last_run_text(status)))
        summary.add_row("marks from", f"snapshot {when(status.marked_at)} UTC")
        console.print(summary)
        if not status.positions:
            console.print("no open positions")
            continue
        table = _table("open positions", "symbol", "quantity", "avg entry", "mark", "unreal. PnL")
        for position in status.positions:
            table.add_row(
                escape(position.symbol),
                price(position.quantity),
                price(position.avg_entry_price),
                price(position.mark_price),
                signed(position.unrealized_pnl) if position.mark_price is not None else "—",
            )
        console.print(table)


def status_json(status: BookStatus) -> dict[str, Any]:
    """A book's status as JSON-ready values (derived numbers included)."""
    data = jsonable(status)
    data["unrealized_pnl"] = str(status.unrealized_pnl)
    for entry, position in zip(data["positions"], status.positions, strict=True):
        entry["unrealized_pnl"] = (
            None if position.mark_price is None else str(position.unrealized_pnl)
        )
    return data


# --------------------------------------------------------------------------- trades, orders


def _by_book(rows: Sequence[TradeView] | Sequence[OrderView]) -> dict[str, list[Any]]:
    books: dict[str, list[Any]] = {}
    for row in rows:
        books.setdefault(row.book, []).append(row)
    return books


def render_trades(rows: Sequence[TradeView], console: Console) -> None:
    """One table of fills per book, oldest first."""
    if not rows:
        console.print("no trades match")
        return
    named = several_bots(rows)
    for book, fills in _by_book(rows).items():
        table = _table(
            f"trades · book {escape(book)}",
            *(("bot",) if named else ()),
            "time (UTC)",
            "symbol",
            "side",
            "quantity",
            "price",
            "fee",
            "realized",
            numeric_from=4 if named else 3,
        )
        for fill in fills:
            table.add_row(
                *((escape(fill.bot or "—"),) if named else ()),
                stamp(fill.at),
                escape(fill.symbol),
                fill.side,
                price(fill.quantity),
                price(fill.price),
                price(fill.fee, 6),
                signed(fill.realized_pnl) if fill.realized_pnl is not None else "",
            )
        console.print(table)


def render_orders(rows: Sequence[OrderView], console: Console) -> None:
    """One table of orders per book, oldest first."""
    if not rows:
        console.print("no orders match")
        return
    named = several_bots(rows)
    for book, entries in _by_book(rows).items():
        table = _table(
            f"orders · book {escape(book)}",
            *(("bot",) if named else ()),
            "time (UTC)",
            "symbol",
            "side",
            "status",
            "filled/asked",
            "avg price",
            numeric_from=5 if named else 4,
        )
        for order in entries:
            table.add_row(
                *((escape(order.bot or "—"),) if named else ()),
                stamp(order.at),
                escape(order.symbol),
                order.side,
                escape(SHORT_STATUS.get(order.status, order.status)),
                f"{price(order.filled_qty)}/{price(order.requested_qty)}",
                price(order.avg_fill_price),
            )
        console.print(table)


# --------------------------------------------------------------------------- profit


def win_rate_text(profit: BookProfit) -> str:
    """``60.0% (3/5)`` or ``— (0 closed)``."""
    rate = profit.win_rate
    if rate is None:
        return "— (0 closed)"
    return f"{rate * 100:.1f}% ({profit.winning_fills}/{profit.closing_fills})"


def render_profit(profits: Sequence[BookProfit], console: Console) -> None:
    """A summary per book and its by-symbol table."""
    if not profits:
        console.print("no book in this database yet: run a cycle first (daemon-once)")
        return
    for profit in profits:
        summary = _summary(
            console, f"profit · book {escape(profit.book)} ({escape(profit.quote_asset)})"
        )
        summary.add_row("realized PnL", signed(profit.realized_pnl))
        summary.add_row("unrealized PnL", signed(profit.unrealized_pnl))
        summary.add_row("total PnL", signed(profit.total_pnl))
        summary.add_row("fees paid", money(profit.fees))
        summary.add_row("win rate", win_rate_text(profit))
        console.print(summary)
        if not profit.by_symbol:
            continue
        table = _table("by symbol", "symbol", "realized", "unrealized", "fees", "wins", "open qty")
        for row in profit.by_symbol:
            table.add_row(
                escape(row.symbol),
                signed(row.realized_pnl),
                signed(row.unrealized_pnl),
                money(row.fees),
                f"{row.winning_fills}/{row.closing_fills}",
                price(row.open_quantity),
            )
        console.print(table)


def profit_json(profit: BookProfit) -> dict[str, Any]:
    """A book's profit as JSON-ready values (derived numbers included)."""
    data = jsonable(profit)
    data["total_pnl"] = str(profit.total_pnl)
    data["win_rate"] = None if profit.win_rate is None else str(profit.win_rate)
    return data


# --------------------------------------------------------------------------- equity


def render_equity(curves: Sequence[EquityCurve], console: Console) -> None:
    """One row per book: first and last equity, change, peak, deepest drawdown."""
    shown = [curve for curve in curves if curve.points]
    if not shown:
        console.print("no portfolio snapshots in this window")
        return
    for curve in shown:
        first, last = curve.points[0], curve.points[-1]
        table = _summary(console, f"equity · book {escape(curve.book)}")
        table.add_row("from", f"{money(first.equity)} at {when(first.at)}")
        table.add_row("to", f"{money(last.equity)} at {when(last.at)}")
        table.add_row("change", signed(last.equity - first.equity))
        table.add_row("peak", money(max(p.peak for p in curve.points)))
        table.add_row("max drawdown", f"{curve.max_drawdown * 100:.2f}%")
        table.add_row("snapshots", str(len(curve.points)))
        console.print(table)


def equity_json(curve: EquityCurve) -> dict[str, Any]:
    """A book's equity series as JSON-ready values."""
    data = jsonable(curve)
    data["max_drawdown"] = str(curve.max_drawdown)
    return data


def plot_equity(curves: Sequence[EquityCurve], path: Path) -> Path:
    """Write equity (top) and drawdown in % (bottom) of each book as a PNG at ``path``.

    ``Figure`` with the Agg canvas directly (no pyplot): no display, no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 6), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.set_title("Equity and drawdown (UTC)")
    for curve in curves:
        if not curve.points:
            continue
        x = date2num([p.at for p in curve.points])
        (line,) = top.plot(x, [float(p.equity) for p in curve.points], label=curve.book)
        drawdown = [-float(p.drawdown) * 100 for p in curve.points]  # floats: drawing only
        bottom.plot(x, drawdown, color=line.get_color())
        bottom.fill_between(x, drawdown, 0, color=line.get_color(), alpha=0.2)
    top.set_ylabel("equity (quote)")
    bottom.set_ylabel("drawdown %")
    for axes in (top, bottom):
        axes.grid(True, alpha=0.3)
    bottom.xaxis_date(tz="UTC")
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    top.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


# --------------------------------------------------------------------------- JSON


def history_json(row: TradeView | OrderView) -> dict[str, Any]:
    """A trade or order as JSON; ``bot`` only when a named bot wrote it (a one-bot database's
    output is as it always was)."""
    data: dict[str, Any] = jsonable(row)
    if data.get("bot") is None:
        data.pop("bot", None)
    return data


def several_bots(rows: Sequence[TradeView] | Sequence[OrderView]) -> bool:
    """True when ``rows`` come from more than one bot: the tables then get a bot column."""
    return len({row.bot for row in rows}) > 1


def jsonable(value: Any) -> Any:
    """Dataclasses, decimals and datetimes as JSON-ready dicts, strings and ISO times."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return f"{value:f}"  # plain digits: 0.00000000, never 0E-8
    if isinstance(value, datetime):
        return value.isoformat()
    return value
