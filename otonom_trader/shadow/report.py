"""Divergence between the paper book and the broker over a window, as numbers, tables and a plot.

* :func:`build_report` reads the ledger and the portfolio snapshots and computes, per book: fill
  rate, mean and worst slippage (bps, positive = worse), mean latency, total fees, and the equity
  change (PnL) over the window; across books: fee and PnL differences (broker − paper) and how
  many pairs ended with different statuses or quantities.
* :func:`render_report` prints it as rich tables; :func:`render_pairs` lists the last pairs.
* :func:`plot_equity_curves` writes both books' equity curves as a PNG (matplotlib, Agg).
* :func:`run_markdown` / :func:`publish_run_artifact`: a short markdown table of one run's pairs,
  published as the Prefect artifact ``shadow-pairs`` when called inside a flow or task run.

Fill rate counts every pair in the denominator: a halted, rejected, errored, skipped or still
open leg counts against its book. A leg is "filled" when any quantity filled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.persistence import Database, PortfolioSnapshot
from otonom_trader.shadow.ledger import ShadowLedger, ShadowPairView, one_line_error

if TYPE_CHECKING:  # matplotlib is imported only when a plot is drawn (it is slow to import)
    from matplotlib.figure import Figure

BOOKS: tuple[str, str] = ("paper", "broker")  # the two legs, as every table names them


@dataclass(frozen=True)
class ShadowBooks:
    """The ledger books behind the two legs: an account's broker book and its shadow paper book.

    Reports compare the books of one account only; ``LEGACY_BOOKS`` are the books of a database
    written before accounts existed.
    """

    paper: str
    broker: str
    #: A named bot's pair of books (``paper@<name>`` and ``bot:<name>``): its pairs are those
    #: of its own orders (its broker orders are journaled on the shared account's book).
    bot: str | None = None

    def of(self, leg: str) -> str:
        """The book of leg ``paper`` or ``broker``."""
        return self.paper if leg == "paper" else self.broker


LEGACY_BOOKS = ShadowBooks("paper", "broker")


def shadow_books(db: Database, account_id: str | None = None) -> ShadowBooks:
    """The books of ``account_id``, or of the exchange account used most recently; the legacy
    books when the database has no exchange account. An unknown id raises ``LookupError``."""
    from otonom_trader.accounts.identity import shadow_paper_book
    from otonom_trader.persistence.account_models import AccountRecord

    with db.session() as session:
        query = select(AccountRecord)
        if account_id is not None:
            query = query.where(AccountRecord.account_id == account_id)
        else:
            query = query.where(AccountRecord.venue != "paper").order_by(
                AccountRecord.last_used_at.desc()
            )
        row = session.scalars(query.limit(1)).first()
    if row is None:
        if account_id is not None:
            raise LookupError(f"no account {account_id!r} in this database")
        return LEGACY_BOOKS
    return ShadowBooks(shadow_paper_book(row.account_id), row.book)


def shadow_books_of_bot(bot: str) -> ShadowBooks:
    """The books of named bot ``bot``: its paper leg's book and its own book on its account."""
    from otonom_trader.fleet.books import bot_book, bot_paper_book

    return ShadowBooks(bot_paper_book(bot), bot_book(bot), bot)


def _pairs_of_account(
    session: Session, pairs: Sequence[ShadowPairView], books: ShadowBooks
) -> list[ShadowPairView]:
    """The pairs whose broker leg was an order of ``books.broker`` (pairs of one account), or of
    ``books.bot`` (pairs of one named bot)."""
    if books == LEGACY_BOOKS:
        return list(pairs)
    from otonom_trader.persistence.models import OrderRecord

    ids = [p.broker.client_order_id for p in pairs if p.broker.client_order_id]
    ours: set[str] = set()
    for start in range(0, len(ids), 500):
        ours |= set(
            session.scalars(
                select(OrderRecord.client_order_id).where(
                    OrderRecord.book == books.broker
                    if books.bot is None
                    else OrderRecord.bot == books.bot,
                    OrderRecord.client_order_id.in_(ids[start : start + 500]),
                )
            )
        )
    return [p for p in pairs if p.broker.client_order_id in ours]


ARTIFACT_KEY = "shadow-pairs"
NO_PAIRS_MESSAGE = "no shadow pairs in this window"
_BPS_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class EquityPoint:
    """One portfolio snapshot's equity."""

    taken_at: datetime
    equity: Decimal


@dataclass(frozen=True)
class BookStats:
    """One book's side of the comparison.

    ``fill_rate`` is ``filled / legs`` (``None`` without legs); slippages are in bps, positive =
    worse than the signal price, averaged over filled legs only; ``equity_change`` is the last
    equity minus the first over the window (``None`` with fewer than two snapshots).
    """

    book: str
    legs: int
    filled: int
    status_counts: Mapping[str, int]
    fill_rate: Decimal | None
    mean_slippage_bps: Decimal | None
    worst_slippage_bps: Decimal | None
    mean_latency_ms: float | None
    total_fee: Decimal
    equity_start: Decimal | None
    equity_end: Decimal | None
    snapshot_count: int = 0

    @property
    def equity_change(self) -> Decimal | None:
        """PnL of the book over the window, from its portfolio snapshots."""
        if self.equity_start is None or self.equity_end is None:
            return None
        return self.equity_end - self.equity_start


@dataclass(frozen=True)
class ShadowReport:
    """Divergence statistics of the paper book and the broker over a window."""

    since: datetime | None
    until: datetime | None
    run_id: str | None
    pair_count: int
    paper: BookStats
    broker: BookStats
    status_mismatches: int
    quantity_mismatches: int
    pairs: Sequence[ShadowPairView] = field(default_factory=tuple, repr=False)

    @property
    def empty(self) -> bool:
        """True when the window holds no shadow pairs."""
        return self.pair_count == 0

    @property
    def fee_difference(self) -> Decimal:
        """Broker fees minus paper fees (positive: the broker cost more)."""
        return self.broker.total_fee - self.paper.total_fee

    @property
    def pnl_difference(self) -> Decimal | None:
        """Broker equity change minus paper equity change (``None`` if either is unknown)."""
        paper, broker = self.paper.equity_change, self.broker.equity_change
        if paper is None or broker is None:
            return None
        return broker - paper

    def book(self, name: str) -> BookStats:
        """The ``"paper"`` or ``"broker"`` statistics."""
        if name == "paper":
            return self.paper
        if name == "broker":
            return self.broker
        raise ValueError(f"book must be 'paper' or 'broker', got {name!r}")


def equity_points(
    session: Session,
    book: str,
    *,
    since: datetime | None,
    until: datetime | None,
    run_id: str | None = None,
) -> list[EquityPoint]:
    """A book's equity over the window, oldest first.

    The last snapshot at or before ``since`` opens the series, so the change is measured from
    the window's start rather than from its first snapshot. With ``run_id``: that run's latest
    snapshot and the snapshot before it (the run's own PnL).
    """
    base = select(PortfolioSnapshot).where(PortfolioSnapshot.book == book)
    if run_id is not None:
        end = session.scalars(
            base.where(PortfolioSnapshot.run_id == run_id)
            .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
            .limit(1)
        ).one_or_none()
        if end is None:
            return []
        before = session.scalars(
            base.where(PortfolioSnapshot.taken_at < end.taken_at)
            .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
            .limit(1)
        ).one_or_none()
        rows = [before, end] if before is not None else [end]
        return [EquityPoint(row.taken_at, row.equity) for row in rows]
    rows_in_window = base
    if since is not None:
        rows_in_window = rows_in_window.where(PortfolioSnapshot.taken_at > since)
    if until is not None:
        rows_in_window = rows_in_window.where(PortfolioSnapshot.taken_at <= until)
    rows = list(
        session.scalars(rows_in_window.order_by(PortfolioSnapshot.taken_at, PortfolioSnapshot.id))
    )
    if since is not None:
        opening = session.scalars(
            base.where(PortfolioSnapshot.taken_at <= since)
            .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
            .limit(1)
        ).one_or_none()
        if opening is not None:
            rows.insert(0, opening)
    return [EquityPoint(row.taken_at, row.equity) for row in rows]


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return (sum(values, Decimal(0)) / len(values)).quantize(_BPS_QUANTUM, rounding=ROUND_HALF_EVEN)


def _book_stats(book: str, pairs: Sequence[ShadowPairView], equity: list[EquityPoint]) -> BookStats:
    legs = [pair.leg(book) for pair in pairs]
    slippages = [s for pair in pairs if (s := pair.slippage(book)) is not None]
    latencies = [leg.latency_ms for leg in legs if leg.latency_ms is not None]
    filled = sum(1 for leg in legs if leg.filled)
    return BookStats(
        book=book,
        legs=len(legs),
        filled=filled,
        status_counts=dict(Counter(leg.status for leg in legs)),
        fill_rate=Decimal(filled) / Decimal(len(legs)) if legs else None,
        mean_slippage_bps=_mean(slippages),
        worst_slippage_bps=max(slippages) if slippages else None,
        mean_latency_ms=sum(latencies) / len(latencies) if latencies else None,
        total_fee=sum((leg.fee for leg in legs), Decimal(0)),
        equity_start=equity[0].equity if len(equity) >= 2 else None,
        equity_end=equity[-1].equity if len(equity) >= 2 else None,
        snapshot_count=len(equity),
    )


def build_report(
    db: Database,
    *,
    since: datetime | None,
    until: datetime | None,
    run_id: str | None = None,
    books: ShadowBooks | None = None,
) -> ShadowReport:
    """Compare the two books of one account (default: the most recently used) over
    ``[since, until]`` (either bound optional), or over one run."""
    books = books or shadow_books(db)
    all_pairs = ShadowLedger(db).pairs(since=since, until=until, run_id=run_id)
    with db.session() as session:
        pairs = _pairs_of_account(session, all_pairs, books)
        equity = {
            leg: equity_points(session, books.of(leg), since=since, until=until, run_id=run_id)
            for leg in BOOKS
        }
    return ShadowReport(
        since=since,
        until=until,
        run_id=run_id,
        pair_count=len(pairs),
        paper=_book_stats("paper", pairs, equity["paper"]),
        broker=_book_stats("broker", pairs, equity["broker"]),
        status_mismatches=sum(1 for pair in pairs if pair.status_mismatch),
        quantity_mismatches=sum(1 for pair in pairs if pair.quantity_mismatch),
        pairs=tuple(pairs),
    )


# --------------------------------------------------------------------------- formatting


def fmt_decimal(value: Decimal | None, places: int | None = None) -> str:
    """A decimal as plain text (no exponent); ``—`` for ``None``. ``places`` rounds half-even."""
    if value is None:
        return "—"
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        return f"{value:f}"
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def _fmt_signed(value: Decimal | None, places: int | None = None) -> str:
    text = fmt_decimal(value, places)
    return f"+{text}" if value is not None and value > 0 else text


def _fmt_rate(stats: BookStats) -> str:
    if stats.fill_rate is None:
        return "—"
    percent = fmt_decimal(stats.fill_rate * 100, 1)
    return f"{percent}% ({stats.filled}/{stats.legs})"


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _fmt_window(report: ShadowReport) -> str:
    if report.run_id is not None:
        return f"run {report.run_id}"
    since = report.since.isoformat(timespec="seconds") if report.since else "the beginning"
    until = report.until.isoformat(timespec="seconds") if report.until else "now"
    return f"{since} → {until}"


def _diff(paper: Decimal | None, broker: Decimal | None, places: int | None = None) -> str:
    if paper is None or broker is None:
        return "—"
    return _fmt_signed(broker - paper, places)


def render_report(report: ShadowReport, console: Console) -> None:
    """Print the report as tables: one row per metric, a column per book and their difference."""
    console.print(f"[bold]Shadow report[/bold] — {escape(_fmt_window(report))}")
    if report.empty:
        console.print(NO_PAIRS_MESSAGE)
    else:
        table = Table(title=f"{report.pair_count} shadow pairs", title_justify="left")
        table.add_column("metric")
        table.add_column("paper", justify="right")
        table.add_column("broker", justify="right")
        table.add_column("broker − paper", justify="right")
        paper, broker = report.paper, report.broker
        table.add_row("fill rate", _fmt_rate(paper), _fmt_rate(broker), "")
        table.add_row(
            "mean slippage (bps)",
            fmt_decimal(paper.mean_slippage_bps, 2),
            fmt_decimal(broker.mean_slippage_bps, 2),
            _diff(paper.mean_slippage_bps, broker.mean_slippage_bps, 2),
        )
        table.add_row(
            "worst slippage (bps)",
            fmt_decimal(paper.worst_slippage_bps, 2),
            fmt_decimal(broker.worst_slippage_bps, 2),
            _diff(paper.worst_slippage_bps, broker.worst_slippage_bps, 2),
        )
        table.add_row(
            "mean latency (ms)",
            _fmt_ms(paper.mean_latency_ms),
            _fmt_ms(broker.mean_latency_ms),
            "",
        )
        table.add_row(
            "total fees",
            fmt_decimal(paper.total_fee),
            fmt_decimal(broker.total_fee),
            _fmt_signed(report.fee_difference),
        )
        for status in sorted(set(paper.status_counts) | set(broker.status_counts)):
            table.add_row(
                f"  {status}",
                str(paper.status_counts.get(status, 0)),
                str(broker.status_counts.get(status, 0)),
                "",
            )
        console.print(table)
        console.print(
            f"pairs with different statuses: {report.status_mismatches}; "
            f"with different filled quantities: {report.quantity_mismatches}"
        )
    _render_equity(report, console)


def _render_equity(report: ShadowReport, console: Console) -> None:
    paper, broker = report.paper, report.broker
    if paper.equity_change is None and broker.equity_change is None:
        console.print("equity change: not enough portfolio snapshots in this window (need two)")
        return
    table = Table(title="equity over the window (PnL)", title_justify="left")
    table.add_column("book")
    table.add_column("start", justify="right")
    table.add_column("end", justify="right")
    table.add_column("change", justify="right")
    for stats in (paper, broker):
        table.add_row(
            stats.book,
            fmt_decimal(stats.equity_start),
            fmt_decimal(stats.equity_end),
            _fmt_signed(stats.equity_change),
        )
    console.print(table)
    console.print(f"PnL difference (broker − paper): {_fmt_signed(report.pnl_difference)}")


def _leg_text(pair: ShadowPairView, book: str, *, with_slippage: bool = True) -> str:
    leg = pair.leg(book)
    if not leg.filled:
        return leg.status
    slippage = pair.slippage(book)
    text = f"{fmt_decimal(leg.quantity)} @ {fmt_decimal(leg.price)}"
    if leg.status != "filled":  # partially filled, or filled while still open
        text = f"{leg.status} {text}"
    if with_slippage and slippage is not None:
        return f"{text} ({fmt_decimal(slippage, 2)} bps)"
    return text


def render_pairs(pairs: Sequence[ShadowPairView], console: Console, *, last: int) -> None:
    """Print the last ``last`` pairs, newest last."""
    if last <= 0 or not pairs:
        return
    shown = list(pairs)[-last:]
    table = Table(title=f"last {len(shown)} of {len(pairs)} pairs", title_justify="left")
    columns = ("time (UTC)", "symbol", "side", "qty", "signal", "paper", "bps", "broker", "bps")
    for name in (*columns, "Δ fee"):
        left = name in ("time (UTC)", "symbol", "side", "paper", "broker")
        table.add_column(name, justify="left" if left else "right", no_wrap=name != "symbol")
    for pair in shown:
        table.add_row(
            pair.created_at.strftime("%m-%d %H:%M:%S"),
            escape(pair.symbol),
            pair.side.value,
            fmt_decimal(pair.requested_qty),
            fmt_decimal(pair.signal_price),
            escape(_leg_text(pair, "paper", with_slippage=False)),
            fmt_decimal(pair.paper_slippage_bps, 2),
            escape(_leg_text(pair, "broker", with_slippage=False)),
            fmt_decimal(pair.broker_slippage_bps, 2),
            _fmt_signed(pair.fee_difference),
        )
    console.print(table)


# --------------------------------------------------------------------------- plot


def equity_figure(
    db: Database,
    *,
    since: datetime | None,
    until: datetime | None,
    books: ShadowBooks | None = None,
) -> Figure:
    """A matplotlib figure with one equity line per book that has snapshots in the window.

    Built on ``Figure`` + the Agg canvas directly (no pyplot): no global state, no display, safe
    in a worker thread. Without any snapshot the figure says there is nothing to plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    books = books or shadow_books(db)
    with db.session() as session:
        series = {
            leg: equity_points(session, books.of(leg), since=since, until=until) for leg in BOOKS
        }
    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    start = since.strftime("%Y-%m-%d %H:%M") if since else "beginning"
    end = until.strftime("%Y-%m-%d %H:%M") if until else "now"
    axes.set_title(f"Equity: paper vs broker ({start} → {end} UTC)")
    if not any(series.values()):
        axes.text(
            0.5,
            0.5,
            "nothing to plot: no portfolio snapshots in this window",
            ha="center",
            va="center",
            transform=axes.transAxes,
        )
        axes.set_xticks([])
        axes.set_yticks([])
        return figure
    colors = {"paper": "tab:blue", "broker": "tab:orange"}
    for book, points in series.items():
        if not points:
            continue
        axes.plot(
            date2num([point.taken_at for point in points]),
            [float(point.equity) for point in points],  # floats for drawing only
            label=book,
            marker="o" if len(points) < 30 else None,
            markersize=3,
            drawstyle="steps-post",
            color=colors[book],
        )
    axes.xaxis_date(tz="UTC")
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_ylabel("equity (quote currency)")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def plot_equity_curves(
    db: Database,
    path: Path,
    *,
    since: datetime | None,
    until: datetime | None,
    books: ShadowBooks | None = None,
) -> Path:
    """Write the equity curves of both books as a PNG at ``path`` (parents created)."""
    figure = equity_figure(db, since=since, until=until, books=books)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


# --------------------------------------------------------------------------- Prefect artifact


def _md_cell(text: str) -> str:
    # A pipe would split the cell; newlines would end the row.
    return " ".join(text.split()).replace("|", "\\|")


def run_markdown(db: Database, run_id: str) -> str:
    """A short markdown summary and table of one run's shadow pairs."""
    pairs = ShadowLedger(db).pairs(run_id=run_id)
    title = f"### Shadow pairs of run `{_md_cell(run_id)}`"
    if not pairs:
        return f"{title}\n\nno shadow pairs in this run\n"
    report = build_report(db, since=None, until=None, run_id=run_id)
    summary = (
        f"{len(pairs)} pairs · paper filled {report.paper.filled}/{len(pairs)} · "
        f"broker filled {report.broker.filled}/{len(pairs)} · "
        f"fees paper {fmt_decimal(report.paper.total_fee)} / "
        f"broker {fmt_decimal(report.broker.total_fee)} · "
        f"status mismatches {report.status_mismatches}"
    )
    lines = [
        title,
        "",
        summary,
        "",
        "| intent | symbol | side | qty | signal | paper | broker | Δ fee | note |",
        "|---|---|---|---:|---:|---|---|---:|---|",
    ]
    for pair in pairs:
        notes = [
            f"{book}: {leg.error}" for book in BOOKS if (leg := pair.leg(book)).error is not None
        ]
        cells = [
            pair.intent_id,
            pair.symbol,
            pair.side.value,
            fmt_decimal(pair.requested_qty),
            fmt_decimal(pair.signal_price),
            _leg_text(pair, "paper"),
            _leg_text(pair, "broker"),
            _fmt_signed(pair.fee_difference),
            "; ".join(notes)[:160],
        ]
        lines.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_run_artifact(db: Database, run_id: str) -> None:
    """Publish this run's pairs as the markdown artifact ``shadow-pairs``.

    Only inside a Prefect flow or task run (the artifact belongs to that run); anywhere else it
    returns quietly, so the library's plain ``run_once()`` path can call it unconditionally.
    A failure to publish is logged as a warning on the run's logger, never raised: by the time
    the artifact is written the cycle's orders are placed, and a report must not fail the run.
    """
    if not _in_prefect_run():
        return
    from prefect.artifacts import create_markdown_artifact
    from prefect.logging import get_run_logger

    try:
        pairs = ShadowLedger(db).pairs(run_id=run_id)
        broker_filled = sum(1 for pair in pairs if pair.broker.filled)
        create_markdown_artifact(
            key=ARTIFACT_KEY,
            markdown=run_markdown(db, run_id),
            description=(
                f"Shadow pairs of run {run_id}: {len(pairs)} pairs, "
                f"broker filled {broker_filled}/{len(pairs)}"
            ),
            _sync=True,  # type: ignore[call-arg]  # async_dispatch: stay sync in an async flow
        )
    except Exception as exc:  # noqa: BLE001 - reporting must not fail a cycle (see docstring)
        get_run_logger().warning(
            "shadow-pairs artifact of run %s not published: %s", run_id, one_line_error(exc)
        )
