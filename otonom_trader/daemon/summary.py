"""What one cycle did, as data (stored with the run) and as readable terminal tables."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


#: The action of a symbol that did nothing this cycle (``Action.HOLD``'s value).
HELD = "hold"


@dataclass(frozen=True)
class SignalLine:
    """One symbol's decision this cycle."""

    symbol: str
    action: str
    reason: str
    price: Decimal | None


@dataclass(frozen=True)
class OrderLine:
    """One order leg on one book: what was asked and what happened."""

    book: str
    symbol: str
    side: str
    requested_qty: Decimal
    status: str
    filled_qty: Decimal
    price: Decimal | None
    fee: Decimal
    client_order_id: str
    error: str | None = None


@dataclass(frozen=True)
class BookLine:
    """A book's state after the cycle."""

    book: str
    equity: Decimal
    cash: Decimal
    positions: int
    peak_equity: Decimal


@dataclass
class RunSummary:
    """Everything a person wants to know about one cycle."""

    run_id: str
    mode: str
    broker: str
    data_source: str
    strategy: str
    status: str = "running"
    signals: list[SignalLine] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    books: list[BookLine] = field(default_factory=list)
    guard_active: bool = False
    guard_reason: str | None = None
    guardrails_enabled: bool = True
    data_issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heartbeat_gap_s: float | None = None
    broker_ping: bool | None = None
    duration_s: float | None = None
    #: Symbols that held, by reason, as a stored summary keeps them (see ``to_json``); a
    #: summary made by a cycle has its held symbols in ``signals`` instead.
    signals_held: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        """What is stored with the run: JSON with Decimals as strings (exact).

        Bounded for many symbols: a symbol that held (the usual case) is counted by its reason
        (``signals_held``: reason → symbols), not listed with its price; every other signal
        (buy, sell, skip), every order, book, issue and note is kept in full. The orders table
        has each order's own row."""
        data = asdict(self)
        held: dict[str, list[str]] = {k: list(v) for k, v in self.signals_held.items()}
        for signal in self.signals:
            if signal.action == HELD:
                held.setdefault(signal.reason, []).append(signal.symbol)
        data["signals"] = [s for s in data["signals"] if s["action"] != HELD]
        data["signals_held"] = held
        return json.dumps(data, default=str, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        """The summary ``to_json`` stored (``daemon_runs.summary_json``), typed again."""
        data = json.loads(text)
        data["signals"] = [
            SignalLine(**{**s, "price": _decimal(s["price"])}) for s in data.get("signals", [])
        ]
        data["orders"] = [
            OrderLine(
                **{
                    **o,
                    **{k: _decimal(o[k]) for k in ("requested_qty", "filled_qty", "price", "fee")},
                }
            )
            for o in data.get("orders", [])
        ]
        data["books"] = [
            BookLine(**{**b, **{k: _decimal(b[k]) for k in ("equity", "cash", "peak_equity")}})
            for b in data.get("books", [])
        ]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def guard_text(self) -> str:
        """``clear``, ``HALTED: <reason>`` or ``off (guardrails disabled)``."""
        if self.guard_active:
            return f"HALTED: {self.guard_reason or 'no reason recorded'}"
        return "clear" if self.guardrails_enabled else "off (guardrails disabled)"

    def headline(self) -> str:
        """One line: what ran and what it did (the run's state message, the first log line)."""
        actions = [s for s in self.signals if s.action.lower() != "hold"]
        equity = ", ".join(f"{b.book} {b.equity:,.2f}" for b in self.books) or "no snapshot"
        parts = [
            f"{self.mode.upper()} {self.status}: {self.signal_count} signal(s), "
            f"{len(actions)} to act on",
            f"{len(self.orders)} order(s), {len(self.fills)} filled",
            f"equity {equity}",
            f"guard {self.guard_text}",
        ]
        if self.data_issues:
            parts.append(f"{len(self.data_issues)} data issue(s)")
        return "; ".join(parts)

    @property
    def signal_count(self) -> int:
        """Every symbol's decision, listed or counted among the held ones."""
        return len(self.signals) + sum(len(v) for v in self.signals_held.values())

    def held_rows(self) -> list[tuple[str, str]]:
        """``(symbols, reason)`` of the held symbols a stored summary counts by reason: up to
        three symbols by name, more as a count with the first ones."""
        rows = []
        for reason, symbols in sorted(self.signals_held.items()):
            names = ", ".join(symbols[:3])
            if len(symbols) > 3:
                names = f"{len(symbols)} symbols: {names}, …"
            rows.append((names, reason))
        return rows

    def log_lines(self) -> list[str]:
        """The headline, then one line per signal to act on, per order, per fill, per data
        issue: what an operator reads in the run's log."""
        lines = [self.headline()]
        lines += [
            f"signal {s.symbol} {s.action.upper()} at {_num(s.price)}: {s.reason}"
            for s in self.signals
            if s.action.lower() != "hold"
        ]
        lines += [order_log_line(o) for o in self.orders]
        lines += [fill_log_line(o) for o in self.fills]
        lines += [f"data issue: {issue}" for issue in self.data_issues]
        return lines

    def key_numbers(self) -> dict[str, Any]:
        """The few numbers worth scanning across runs (JSON-friendly; amounts as strings)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "mode": self.mode,
            "broker": self.broker,
            "signals": self.signal_count,
            "orders": len(self.orders),
            "fills": len(self.fills),
            "equity": {b.book: f"{b.equity:.2f}" for b in self.books},
            "positions": {b.book: b.positions for b in self.books},
            "guard": self.guard_text,
            "data_issues": len(self.data_issues),
            "duration_s": round(self.duration_s, 2) if self.duration_s is not None else None,
        }

    def to_markdown(self) -> str:
        """The summary as Markdown tables (the flow's ``cycle-summary`` artifact)."""
        out = [
            f"## {self.mode.upper()} cycle: {self.status}",
            "",
            f"- **run**: `{self.run_id}`",
            f"- **broker**: {self.broker}",
            f"- **strategy**: {self.strategy}; **data**: {self.data_source}",
            f"- **guard**: {self.guard_text}",
        ]
        if self.duration_s is not None:
            out.append(f"- **cycle time**: {self.duration_s:.2f} s")
        out += ["", "### Signals", "", "| symbol | action | price | reason |", "|---|---|---|---|"]
        out += [
            f"| {s.symbol} | {s.action.upper()} | {_num(s.price)} | {_cell(s.reason)} |"
            for s in self.signals
        ]
        out += [f"| {symbols} | HOLD |  | {_cell(why)} |" for symbols, why in self.held_rows()]
        out += ["", "### Orders and fills", ""]
        if self.orders:
            out += [
                "| book | symbol | side | asked | status | filled | price | fee | note |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            out += [
                f"| {o.book} | {o.symbol} | {o.side} | {_num(o.requested_qty)} | {o.status} | "
                f"{_num(o.filled_qty)} | {_num(o.price)} | {_num(o.fee)} | {_cell(o.error or '')} |"
                for o in self.orders
            ]
        else:
            out.append("No orders this cycle.")
        out += [
            "",
            "### Books",
            "",
            "| book | equity | cash | positions | peak |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {b.book} | {b.equity:,.2f} | {b.cash:,.2f} | {b.positions} | {b.peak_equity:,.2f} |"
            for b in self.books
        ]
        if self.data_issues:
            out += ["", "### Data issues", ""] + [f"- {_cell(i)}" for i in self.data_issues]
        if self.notes:
            out += ["", "### Notes", ""] + [f"- {_cell(n)}" for n in self.notes]
        return "\n".join(out) + "\n"

    @property
    def fills(self) -> list[OrderLine]:
        """Order legs that filled at least partly."""
        return [o for o in self.orders if o.filled_qty > 0]

    def render(self, console: Console | None = None) -> None:
        """Print the summary as a few readable tables."""
        # Piped output (logs, CI) gets a width that fits the order table instead of 80 columns.
        # rich is loaded when a summary is shown, not when a cycle runs in a flow.
        from rich.console import Console
        from rich.table import Table

        console = console or Console(width=None if _is_terminal() else 140)
        guard = (
            "[bold red]HALTED[/] — " + (self.guard_reason or "")
            if self.guard_active
            else (
                "[green]clear[/]"
                if self.guardrails_enabled
                else "[yellow]OFF (guardrails disabled)[/]"
            )
        )
        head = Table.grid(padding=(0, 2))
        head.add_row("run", self.run_id)
        head.add_row("mode", f"[bold]{self.mode.upper()}[/]")
        head.add_row("broker", self.broker)
        head.add_row("data", self.data_source)
        head.add_row("strategy", self.strategy)
        head.add_row("guard", guard)
        if self.heartbeat_gap_s is not None:
            head.add_row("since last run", _duration(self.heartbeat_gap_s))
        if self.duration_s is not None:
            head.add_row("cycle time", f"{self.duration_s:.2f} s")
        head.add_row("status", self.status)
        console.print(head)
        signals = Table(title="Signals", title_justify="left")
        for column in ("symbol", "action", "price", "reason"):
            signals.add_column(column)
        for s in self.signals:
            signals.add_row(s.symbol, s.action.upper(), _num(s.price), s.reason)
        for symbols, reason in self.held_rows():
            signals.add_row(symbols, "HOLD", "", reason)
        console.print(signals)
        if self.orders:
            orders = Table(title="Orders", title_justify="left")
            for column in (
                "book",
                "symbol",
                "side",
                "asked",
                "status",
                "filled",
                "price",
                "fee",
                "note",
            ):
                orders.add_column(column)
            for o in self.orders:
                orders.add_row(
                    o.book,
                    o.symbol,
                    o.side,
                    _num(o.requested_qty),
                    o.status,
                    _num(o.filled_qty),
                    _num(o.price),
                    _num(o.fee),
                    o.error or "",
                )
            console.print(orders)
        else:
            console.print("Orders: none this cycle")
        books = Table(title="Books", title_justify="left")
        for column in ("book", "equity", "cash", "positions", "peak"):
            books.add_column(column, justify="right" if column != "book" else "left")
        for b in self.books:
            books.add_row(
                b.book,
                f"{b.equity:,.2f}",
                f"{b.cash:,.2f}",
                str(b.positions),
                f"{b.peak_equity:,.2f}",
            )
        console.print(books)
        for issue in self.data_issues:
            console.print(f"[yellow]data issue:[/] {issue}")
        for note in self.notes:
            console.print(f"[cyan]note:[/] {note}")


def order_log_line(o: OrderLine) -> str:
    """One order leg as a log line."""
    line = (
        f"order {o.book} {o.symbol} {o.side.upper()} {_num(o.requested_qty)}: {o.status}, "
        f"filled {_num(o.filled_qty)} (client id {o.client_order_id})"
    )
    return line + (f"; {o.error}" if o.error else "")


def fill_log_line(o: OrderLine) -> str:
    """One fill (an order leg that filled at least partly) as a log line."""
    return (
        f"fill {o.book} {o.symbol} {o.side.upper()} {_num(o.filled_qty)} at {_num(o.price)}, "
        f"fee {_num(o.fee)} (client id {o.client_order_id})"
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _is_terminal() -> bool:
    import sys

    return sys.stdout.isatty()


def _num(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def summary_from_json(text: str) -> dict[str, Any]:
    """The stored summary back as a plain mapping (for reports)."""
    data: dict[str, Any] = json.loads(text)
    return data
