"""Command line of the kill-switch: ``kill-switch status | trip | reset`` and the fire drill.

    otonom-trader kill-switch status [--book BOOK | --account ID | --bot NAME]
    otonom-trader kill-switch trip --reason "exchange incident" [--actor alice]
    otonom-trader kill-switch reset --reason "incident over"
    otonom-trader drill kill-switch [--mode paper|shadow]

With no scope, ``trip`` is the emergency stop: it halts every book of every account in the
database *and* every book first used afterwards (the all-books switch ``*``), and names them;
``reset`` with no scope clears all of it. ``--account`` narrows to one account's books (its broker
book and the paper book that shadows it, and the books of the named bots trading it: tripping it
halts every bot on the account at once), ``--bot`` to one named bot's own switch (its book
``bot:<name>`` and its paper book), ``--book`` to one book. ``status`` with no scope lists
every book's state. ``--actor`` defaults to the OS user. Every trip and reset is an audited event,
and every one that changes the state is announced: its alert outbox rows commit with the state
change (as in a cycle), then the command tries to deliver them and prints what happened; rows a
channel did not take stay pending for the next cycle or the watchdog.
"""

from __future__ import annotations

import argparse
import getpass
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from otonom_trader.config.errors import ConfigError
from otonom_trader.fleet.books import bot_of_book
from otonom_trader.fleet.scope import Fleet
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import ALL_BOOKS, KillSwitch
from otonom_trader.mode import ExecutionMode
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.guardrail_models import KillSwitchStateRecord

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from otonom_trader.alerts.engine import AlertEngine
    from otonom_trader.config.schema import AppConfig
    from otonom_trader.guardrails.kill_switch import KillSwitchTransition


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``kill-switch`` and ``drill`` to the top-level parser's subcommands."""
    ks = subparsers.add_parser(
        "kill-switch",
        help="show, trip or reset the kill-switch (audited)",
        description="Show, trip or reset the kill-switch of a book. Every action is recorded.",
    )
    actions = ks.add_subparsers(dest="ks_action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="state, holds and the latest events")
    status.add_argument(
        "--limit", type=_event_limit, default=10, help="events to show, 1 to 1000 (default 10)"
    )
    trip = actions.add_parser("trip", help="halt trading by hand (until a manual reset)")
    reset = actions.add_parser("reset", help="clear the halt by hand")
    for parser in (status, trip, reset):
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--book", default=None, help="one book (default: every book)")
        scope.add_argument(
            "--account", default=None, help="the books of one account (see `status`)"
        )
        scope.add_argument(
            "--bot", default=None, help="the switch of one named bot (its own books)"
        )
    for parser in (trip, reset):
        parser.add_argument("--reason", required=True, help="why (recorded and announced)")
        parser.add_argument("--actor", default=None, help="who (default: the OS user)")
    status.set_defaults(func=status_command)
    trip.set_defaults(func=trip_command)
    reset.set_defaults(func=reset_command)

    drill = subparsers.add_parser(
        "drill", help="fire drills on a scratch book (the real book is never touched)"
    )
    kinds = drill.add_subparsers(dest="drill_kind", metavar="DRILL", required=True)
    kill = kinds.add_parser("kill-switch", help="walk equity through every guardrail")
    kill.add_argument(
        "--mode",
        choices=["paper", "shadow"],
        default="paper",
        help="paper: paper book; shadow: simulated exchange + paper book",
    )
    kill.set_defaults(func=drill_command)


def _event_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected 1 to 1000, got {value}")
    return value


def _app(args: argparse.Namespace) -> AppConfig:
    from otonom_trader.config.compose import load_config

    _, app = load_config(list(getattr(args, "overrides", None) or []))
    return app


def _config(args: argparse.Namespace) -> tuple[GuardrailConfig, ExecutionMode]:
    app = _app(args)
    return app.guardrails, app.mode.execution_mode


@dataclass
class _Controls:
    """The switches a command acts on and, when alerts are on, the engine their transitions
    are recorded by (in the state change's own transaction)."""

    switches: list[KillSwitch]
    alerts: AlertEngine | None
    recorded: list[int] = field(default_factory=list)

    def record(self, session: Session, transition: KillSwitchTransition, event_id: int) -> None:
        assert self.alerts is not None
        self.alerts.record_transition(session, transition, event_id)
        self.recorded.append(event_id)


def _database(args: argparse.Namespace, app: AppConfig | None = None) -> Database:
    app = app or _app(args)
    return Database(getattr(args, "db", None) or app.db.url, busy_timeout_ms=app.db.busy_timeout_ms)


def _controls(args: argparse.Namespace, *, for_change: bool) -> _Controls:
    """One book, one account's books, or every book (and, for a trip or reset, the all-books
    switch that covers books first used later)."""
    if args.book and len(args.book) > 32:  # checked before the database is opened
        raise ConfigError(f"book names are at most 32 characters, got {args.book!r}", key="--book")
    app = _app(args)
    db = _database(args, app)
    if args.book:
        books = [args.book]
    elif getattr(args, "bot", None):
        books = Fleet.read(db).books_of_bot(args.bot)
    elif args.account:
        books = _account_books(db, args.account)
    else:
        books = known_books(db) + ([ALL_BOOKS] if for_change else [])
    return controls_for(app, db, books, for_change=for_change)


def controls_for(app: AppConfig, db: Database, books: list[str], *, for_change: bool) -> _Controls:
    """The switches of ``books`` and, for a change with alerts on, the engine that records
    and announces their transitions (what ``trip``/``reset`` act on)."""
    alerts = None
    if for_change and app.alerts.enabled:
        from otonom_trader.alerts.engine import AlertEngine

        alerts = AlertEngine(app.alerts, db=db, mode=str(app.mode.name))
    fleet = Fleet.read(db)

    def switch_of(book: str) -> KillSwitch:
        # A bot's switch knows its bot and account (written on its rows, named in its alerts).
        bot = bot_of_book(book)
        account = fleet.bots.get(bot) if bot else (book if book in fleet.accounts else None)
        shared = bot is None and account is not None and account in fleet.bots.values()
        return KillSwitch(db, app.guardrails, book, bot=bot, account_id=account, every_bot=shared)

    controls = _Controls([switch_of(book) for book in books], alerts)
    if alerts is not None:
        # An emergency stop (no scope) is one announcement, the all-books switch's: the books it
        # halts or clears record their events but are not announced one by one.
        everything = ALL_BOOKS in books
        for switch in controls.switches:
            if switch.book == ALL_BOOKS or not everything:
                switch.on_transition_tx = controls.record
    return controls


def emergency_stop(
    app: AppConfig, db: Database, reason: str, actor: str, now: datetime, console: Console
) -> list[tuple[str, bool]]:
    """``kill-switch trip`` without a scope: halt every book of every account and the
    all-books switch, announce it (what happened is printed to ``console``). Returns
    ``(book, changed)`` per switch (``*`` is the all-books switch)."""
    controls = controls_for(app, db, known_books(db) + [ALL_BOOKS], for_change=True)
    outcomes = trip_switches(controls, reason, actor, now)
    _announce(controls, console, any(changed for _, changed in outcomes))
    return outcomes


def emergency_reset(
    app: AppConfig, db: Database, reason: str, actor: str, now: datetime, console: Console
) -> list[tuple[str, bool]]:
    """``kill-switch reset`` without a scope: clear every book and the all-books switch."""
    controls = controls_for(app, db, known_books(db) + [ALL_BOOKS], for_change=True)
    outcomes = reset_switches(controls, reason, actor, now)
    _announce(controls, console, any(changed for _, changed in outcomes))
    return outcomes


def trip_switches(
    controls: _Controls, reason: str, actor: str, now: datetime
) -> list[tuple[str, bool]]:
    """Trip each switch; ``(book, changed)`` per switch (unchanged: it was halted already)."""
    return [(s.book, s.trip(reason, now, actor) is not None) for s in controls.switches]


def reset_switches(
    controls: _Controls, reason: str, actor: str, now: datetime
) -> list[tuple[str, bool]]:
    """Reset each switch, the all-books trip first (a book reset while it stands would take
    it over again); ``(book, changed)`` per switch."""
    controls.switches.sort(key=lambda s: s.book != ALL_BOOKS)
    return [(s.book, s.reset(reason, now, actor) is not None) for s in controls.switches]


def _switches(args: argparse.Namespace, *, for_change: bool) -> list[KillSwitch]:
    return _controls(args, for_change=for_change).switches


def known_books(db: Database) -> list[str]:
    """Every book the database knows: with an account, a ledger or a kill-switch state."""
    from sqlalchemy import select

    from otonom_trader.persistence.account_models import AccountRecord
    from otonom_trader.persistence.models import BookAccount

    with db.session() as session:
        books = set(session.scalars(select(KillSwitchStateRecord.book)))
        books |= set(session.scalars(select(BookAccount.book)))
        books |= set(session.scalars(select(AccountRecord.book)))
    books.discard(ALL_BOOKS)
    return sorted(books)


def _account_books(db: Database, account_id: str) -> list[str]:
    from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID, shadow_paper_book
    from otonom_trader.persistence.account_models import AccountRecord

    with db.session() as session:
        row = session.get(AccountRecord, account_id)
        book = row.book if row is not None else None
    if book is None:
        raise ConfigError(
            f"no account {account_id!r} in this database (see `kill-switch status`)",
            key="--account",
        )
    own = [book] if book == PAPER_ACCOUNT_ID else [book, shadow_paper_book(account_id)]
    fleet = Fleet.read(db)
    bots = [b for b in fleet.books_of_account(account_id) if b not in own]
    return own + bots


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        actor = " ".join(str(args.actor).split())
        if not 1 <= len(actor) <= 64:
            raise ConfigError(f"must be 1 to 64 characters, got {len(actor)}", key="--actor")
        return actor
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def _reason(args: argparse.Namespace) -> str:
    reason = " ".join(str(args.reason).split())
    if not reason:
        raise ConfigError("must not be empty", key="--reason")
    if len(reason) > 500:
        raise ConfigError(f"must be at most 500 characters, got {len(reason)}", key="--reason")
    return reason


def status_command(args: argparse.Namespace) -> int:
    """Every book's state (no scope), or one book's state, holds and newest events."""
    if args.limit < 0:
        raise ConfigError(f"must not be negative, got {args.limit}", key="--limit")
    switches = _switches(args, for_change=False)
    console = Console()
    if args.book is None:
        _print_books(console, switches, _database(args))
        if args.account is None and getattr(args, "bot", None) is None:
            return 0
    # An account that named bots share is guarded by the account level's limits.
    shared = {a for a in Fleet.read(_database(args)).bots.values() if a is not None}
    for switch in switches:
        _print_book_detail(console, switch, args.limit, account_level=switch.book in shared)
    return 0


def _print_books(console: Console, switches: list[KillSwitch], db: Database) -> None:
    everything = KillSwitch(db, GuardrailConfig(), ALL_BOOKS).detail()
    table = Table(title="kill-switch — every book")
    # With several named bots each row says whose switch it is (an account's: every bot's).
    named = Fleet.read(db).several_bots
    for column in (("bot",) if named else ()) + ("book", "state", "since (UTC)", "reason"):
        table.add_column(column)
    if everything.active:
        table.add_row(
            *(("every bot",) if named else ()),
            "* (all books)",
            "[bold red]ACTIVE[/]",
            f"{everything.tripped_at:%Y-%m-%d %H:%M:%S}" if everything.tripped_at else "—",
            escape(everything.reason or ""),
        )
    for switch in switches:
        detail = switch.detail()
        table.add_row(
            *((escape(bot_of_book(switch.book) or "every bot"),) if named else ()),
            escape(switch.book),
            "[bold red]ACTIVE[/]" if detail.active else "[green]clear[/]",
            f"{detail.tripped_at:%Y-%m-%d %H:%M:%S}" if detail.tripped_at else "—",
            escape(detail.reason or "—"),
        )
    if not switches and not everything.active:
        table.add_row(*(("—",) if named else ()), "—", "no book yet", "—", "—")
    console.print(table)


def _print_book_detail(
    console: Console, switch: KillSwitch, limit: int, *, account_level: bool = False
) -> None:
    detail = switch.detail()
    state = "[bold red]ACTIVE[/] (trading halted)" if detail.active else "[green]clear[/]"
    table = Table(title=f"kill-switch — book '{escape(switch.book)}'", show_header=False)
    table.add_row("state", state)
    table.add_row("reason", escape(detail.reason or "—"))
    table.add_row(
        "since", f"{detail.tripped_at:%Y-%m-%d %H:%M:%S} UTC" if detail.tripped_at else "—"
    )
    table.add_row("manual trip", "yes (until a manual reset)" if detail.manual else "no")
    for name, hold in detail.holds.items():
        until = hold.get("until") or "while breached"
        table.add_row(f"hold: {name}", escape(f"until {until}; {hold.get('reason')}"))
    if detail.numbers:
        table.add_row("numbers", escape(json.dumps(dict(detail.numbers), sort_keys=True)))
    cfg = switch.cfg
    if account_level:
        table.add_row(
            "limits",
            f"account level (every bot): daily loss {cfg.account.max_daily_loss_pct}% · "
            f"drawdown {cfg.account.max_drawdown_pct}%"
            + ("" if cfg.enabled and cfg.account.enabled else " · [yellow]OFF[/]"),
        )
    else:
        table.add_row(
            "limits",
            f"daily loss {cfg.max_daily_loss_pct}% · drawdown {cfg.max_drawdown_pct}% · "
            f"{cfg.max_consecutive_losses} losses in a row · {cfg.halt_policy}"
            + ("" if cfg.enabled else " · [yellow]guardrails OFF[/]"),
        )
    console.print(table)
    events = switch.history(limit)
    if events:
        log = Table(title="latest events", show_lines=False)
        for column in ("at (UTC)", "event", "actor", "reason"):
            log.add_column(column)
        for event in events:
            kind = f"{event.kind}{' (manual)' if event.manual else ''}"
            log.add_row(
                f"{event.at:%Y-%m-%d %H:%M:%S}", kind, escape(event.actor), escape(event.reason)
            )
        console.print(log)


def trip_command(args: argparse.Namespace) -> int:
    """Halt by hand: every book (no scope), one account's books, or one book."""
    reason, actor, now = _reason(args), _actor(args), datetime.now(UTC)
    console = Console(highlight=False)
    controls = _controls(args, for_change=True)
    outcomes = trip_switches(controls, reason, actor, now)
    for book, changed in outcomes:
        note = "" if changed else " (it was already halted; the trip is recorded)"
        name = (
            "* (every book, also books first used later)"
            if book == ALL_BOOKS
            else f"'{escape(book)}'"
        )
        console.print(f"[bold red]kill-switch tripped[/] on book {name}{note}")
    _announce(controls, console, any(changed for _, changed in outcomes))
    return 0


def reset_command(args: argparse.Namespace) -> int:
    """Clear the halt by hand: every book (no scope), one account's books, or one book."""
    reason, actor, now = _reason(args), _actor(args), datetime.now(UTC)
    console = Console(highlight=False)
    controls = _controls(args, for_change=True)
    outcomes = reset_switches(controls, reason, actor, now)
    for book, changed in outcomes:
        note = "" if changed else " (it was not halted; the reset is recorded)"
        name = "*" if book == ALL_BOOKS else f"'{escape(book)}'"
        console.print(f"[green]kill-switch reset[/] on book {name}{note}")
    _announce(controls, console, any(changed for _, changed in outcomes))
    return 0


def _announce(controls: _Controls, console: Console, changed: bool) -> None:
    """Deliver what the outbox holds (in order, this transition last) and say what became of
    this transition's alert on each channel."""
    alerts = controls.alerts
    if alerts is None:
        if changed:
            console.print("alerts are off (alerts.enabled=false): the change is not announced")
        return
    try:
        if not controls.recorded:
            return
        alerts.deliver_pending()
        for event_id in controls.recorded:
            for row in alerts.outbox.for_transition(event_id):
                if row.status == "pending" and row.next_attempt_at is not None:
                    detail = f"pending, next try {row.next_attempt_at:%H:%M:%S} UTC"
                    if row.last_error:
                        detail += f" ({row.last_error})"
                else:
                    detail = row.status + (f" ({row.note})" if row.note else "")
                console.print(
                    f"alert (outbox row {row.id}, transition #{event_id}) "
                    f"{escape(row.channel)}: {escape(detail)}"
                )
    finally:
        alerts.db.dispose()


def drill_command(args: argparse.Namespace) -> int:
    """Run the kill-switch fire drill; exit 0 only when every step showed what it should."""
    from otonom_trader.guardrails.drill import run_drill

    cfg, _ = _config(args)
    if not cfg.enabled:
        raise ConfigError("guardrails are off: there is nothing to drill", key="guardrails")
    report = run_drill(cfg, ExecutionMode(args.mode))
    return 0 if report.complete else 1
