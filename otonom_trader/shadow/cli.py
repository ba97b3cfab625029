"""``otonom-trader shadow-report``: divergence statistics of the shadow ledger and an equity plot.

::

    otonom-trader shadow-report                      # last 7 days
    otonom-trader shadow-report --since 24h --pairs 20
    otonom-trader shadow-report --since 2025-01-01 --until 2025-01-31T12:00
    otonom-trader shadow-report --run-id 20250131-120000-ab12 --plot /tmp/run.png

Times are ISO dates or datetimes (a naive time is UTC) or spans back from now: ``90m``, ``24h``,
``7d``, ``2w``. The top-level parser (``otonom_trader.cli``) supplies ``args.db`` and
``args.overrides``.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from otonom_trader.config.errors import ConfigError
from otonom_trader.home import otonom_home
from otonom_trader.persistence import Database, DatabaseError
from otonom_trader.shadow.report import (
    ShadowBooks,
    build_report,
    plot_equity_curves,
    render_pairs,
    render_report,
    shadow_books,
    shadow_books_of_bot,
)

DEFAULT_WINDOW = timedelta(days=7)
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PROG = "otonom-trader shadow-report"


def default_plot_path() -> Path:
    """``$OTONOM_HOME/reports/shadow-equity.png``."""
    return otonom_home() / "reports" / "shadow-equity.png"


def parse_when(text: str, *, now: datetime, flag: str) -> datetime:
    """An aware UTC datetime from an ISO date/datetime or a span back from ``now`` (``24h``).

    Raises ``ConfigError`` naming ``flag`` when the text is neither.
    """
    value = text.strip().lower()
    if value == "now":
        return now
    span = _SPAN.match(value)
    if span:
        amount, unit = float(span.group(1)), _SPAN_UNITS[span.group(2)]
        return now - timedelta(**{unit: amount})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a time: use an ISO date or datetime "
            "(2025-01-31, 2025-01-31T12:00, 2025-01-31T12:00+02:00) or a span back from now "
            "(90m, 24h, 7d, 2w)",
            key=flag,
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def resolve_window(
    since: str | None, until: str | None, *, run_id: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The report's ``(since, until)``.

    Defaults: the 7 days before ``until`` (or now); with ``--run-id`` and no explicit bounds,
    all time (a run is already a window of its own).
    """
    until_at = parse_when(until, now=now, flag="--until") if until is not None else None
    since_at = parse_when(since, now=now, flag="--since") if since is not None else None
    if run_id is None:
        until_at = until_at or now
        since_at = since_at or until_at - DEFAULT_WINDOW
    if since_at is not None and until_at is not None and since_at > until_at:
        raise ConfigError(
            f"{since_at.isoformat()} is after --until {until_at.isoformat()}", key="--since"
        )
    return since_at, until_at


def _plot_target(plot: str | None) -> Path:
    """Where the PNG goes. A path the user gives must name a ``.png`` file in a directory that
    exists: nothing beyond the file itself is created (only the default reports folder is)."""
    if not plot:
        return default_plot_path()
    target = Path(plot).expanduser()
    if target.suffix.lower() != ".png":
        raise ConfigError(f"expected a path ending in .png, got {plot!r}", key="--plot")
    if target.is_dir():
        raise ConfigError(f"{target} is a directory; expected a .png file path", key="--plot")
    if not target.parent.is_dir():
        raise ConfigError(
            f"directory {target.parent} does not exist (it is not created for you)", key="--plot"
        )
    return target


MAX_PAIRS = 10_000


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_PAIRS:
        raise argparse.ArgumentTypeError(f"expected 0 to {MAX_PAIRS}, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``shadow-report`` command to the top-level parser's subcommands."""
    parser = subparsers.add_parser(
        "shadow-report",
        help="compare the paper book and the broker over a window (SHADOW mode)",
        description=(
            "Divergence between the paper book and the broker from the shadow ledger: fill "
            "rate, mean and worst slippage (bps, positive = worse than the signal price), fees "
            "and PnL per book; writes a PNG of both equity curves."
        ),
    )
    parser.add_argument(
        "--since", help="start: ISO date/datetime (UTC if naive) or 90m/24h/7d/2w (default 7d)"
    )
    parser.add_argument("--until", help="end: ISO date/datetime or a span back (default now)")
    parser.add_argument("--run-id", help="only the pairs of this daemon run")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--account",
        help="the account whose books to compare (default: the one used most recently)",
    )
    scope.add_argument(
        "--bot",
        help="the named bot whose books to compare (its paper book and its own book)",
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="where to write the equity PNG (default $OTONOM_HOME/reports/shadow-equity.png)",
    )
    parser.add_argument(
        "--pairs",
        metavar="N",
        type=_non_negative_int,
        default=10,
        help="show the last N pairs in a table (0 hides it; default 10)",
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Entry point of ``shadow-report``: 0 on success, 2 on a bad flag or database, 1 when the
    plot cannot be written."""
    return run_shadow_report(args, now=datetime.now(UTC), console=Console())


def _books(db: Database, args: argparse.Namespace) -> list[tuple[str | None, ShadowBooks]]:
    """The pairs of books to compare, each with its bot: one named bot's (``--bot``), one
    account's (``--account``), by default every named bot's in turn, or — in a database without
    named bots — the account used most recently. An unknown bot is a ``ConfigError``, an unknown
    account a ``LookupError``."""
    from otonom_trader.fleet.scope import Fleet

    bot = getattr(args, "bot", None)
    account = getattr(args, "account", None)
    if bot is not None:
        return [(bot, shadow_books_of_bot(Fleet.read(db).require_bot(bot)))]
    if account is None:
        bots = sorted(Fleet.read(db).bots)
        if bots:
            return [(name, shadow_books_of_bot(name)) for name in bots]
    return [(None, shadow_books(db, account))]


def _report_one(
    args: argparse.Namespace,
    console: Console,
    db: Database,
    books: ShadowBooks,
    since: datetime | None,
    until: datetime | None,
    target: Path,
) -> int:
    """Print one pair of books' report and write its plot; the command's exit status."""
    report = build_report(db, since=since, until=until, run_id=args.run_id, books=books)
    render_report(report, console)
    render_pairs(report.pairs, console, last=args.pairs)
    nothing = report.run_id is None and not (
        report.paper.snapshot_count or report.broker.snapshot_count
    )
    if nothing:
        console.print("no portfolio snapshots in this window: nothing to plot (no file written)")
        return 0
    try:
        written = plot_equity_curves(db, target, since=since, until=until, books=books)
    except OSError as exc:
        print(f"{_PROG}: --plot: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    console.print(f"equity plot written to {written}", markup=False, soft_wrap=True)
    return 0


def _plot_path(target: Path, bot: str | None, several: bool) -> Path:
    """One PNG per bot when the report covers several: ``<stem>-<bot>.png`` beside ``target``."""
    return target.with_name(f"{target.stem}-{bot}{target.suffix}") if several and bot else target


def run_shadow_report(args: argparse.Namespace, *, now: datetime, console: Console) -> int:
    """The command with the clock and the console injected (tests pass their own)."""
    try:
        since, until = resolve_window(args.since, args.until, run_id=args.run_id, now=now)
        target = _plot_target(args.plot)
    except ConfigError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        db = Database(args.db)
    except DatabaseError as exc:
        print(f"{_PROG}: --db: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            books = _books(db, args)
        except LookupError as exc:
            print(f"{_PROG}: --account: {exc}", file=sys.stderr)
            return 2
        except ConfigError as exc:
            print(f"{_PROG}: {exc}", file=sys.stderr)
            return 2
        several = len(books) > 1
        for bot, pair in books:
            if several:
                console.print(f"[bold]bot {escape(bot or '')}[/bold]")
            plot = _plot_path(target, bot, several)
            status = _report_one(args, console, db, pair, since, until, plot)
            if status:
                return status
    finally:
        db.dispose()
    return 0
