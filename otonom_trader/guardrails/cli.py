"""Command line of the kill-switch: ``kill-switch status | trip | reset`` and the fire drill.

    otonom-trader kill-switch status [--book broker]
    otonom-trader kill-switch trip --reason "exchange incident" [--actor alice]
    otonom-trader kill-switch reset --reason "incident over"
    otonom-trader drill kill-switch [--mode paper|shadow]

``--book`` defaults to the executing book of the configured mode (``paper`` in PAPER, ``broker``
in SHADOW and LIVE); ``--actor`` to the OS user. Every trip and reset is an audited event.
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from otonom_trader.config.errors import ConfigError
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.mode import ExecutionMode


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
        parser.add_argument(
            "--book",
            default=None,
            help="book (default: paper in PAPER mode, broker in SHADOW/LIVE)",
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


def _config(args: argparse.Namespace) -> tuple[GuardrailConfig, ExecutionMode]:
    from otonom_trader.config.compose import load_config

    _, app = load_config(list(getattr(args, "overrides", None) or []))
    return app.guardrails, app.mode.execution_mode


def _switch(args: argparse.Namespace) -> KillSwitch:
    from otonom_trader.persistence.database import Database

    cfg, mode = _config(args)
    book = args.book or ("paper" if mode is ExecutionMode.PAPER else "broker")
    if len(book) > 32:
        raise ConfigError(f"book names are at most 32 characters, got {book!r}", key="--book")
    return KillSwitch(Database(getattr(args, "db", None)), cfg, book)


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
    """Print the persisted state, its holds and the newest events of one book."""
    switch = _switch(args)
    detail = switch.detail()
    console = Console()
    state = "[bold red]ACTIVE[/] (trading halted)" if detail.active else "[green]clear[/]"
    table = Table(title=f"kill-switch — book '{switch.book}'", show_header=False)
    table.add_row("state", state)
    table.add_row("reason", detail.reason or "—")
    table.add_row(
        "since", f"{detail.tripped_at:%Y-%m-%d %H:%M:%S} UTC" if detail.tripped_at else "—"
    )
    table.add_row("manual trip", "yes (until a manual reset)" if detail.manual else "no")
    for name, hold in detail.holds.items():
        until = hold.get("until") or "while breached"
        table.add_row(f"hold: {name}", f"until {until}; {hold.get('reason')}")
    if detail.numbers:
        table.add_row("numbers", json.dumps(dict(detail.numbers), sort_keys=True))
    cfg = switch.cfg
    table.add_row(
        "limits",
        f"daily loss {cfg.max_daily_loss_pct}% · drawdown {cfg.max_drawdown_pct}% · "
        f"{cfg.max_consecutive_losses} losses in a row · {cfg.halt_policy}"
        + ("" if cfg.enabled else " · [yellow]guardrails OFF[/]"),
    )
    console.print(table)
    events = switch.history(args.limit)
    if events:
        log = Table(title="latest events", show_lines=False)
        for column in ("at (UTC)", "event", "actor", "reason"):
            log.add_column(column)
        for event in events:
            kind = f"{event.kind}{' (manual)' if event.manual else ''}"
            log.add_row(f"{event.at:%Y-%m-%d %H:%M:%S}", kind, event.actor, event.reason)
        console.print(log)
    return 0


def trip_command(args: argparse.Namespace) -> int:
    """Halt the book by hand."""
    reason, actor = _reason(args), _actor(args)  # checked before the database is opened
    switch = _switch(args)
    transition = switch.trip(reason, datetime.now(UTC), actor)
    note = "" if transition else " (it was already halted; the trip is recorded)"
    Console().print(f"[bold red]kill-switch tripped[/] on book '{switch.book}'{note}")
    return 0


def reset_command(args: argparse.Namespace) -> int:
    """Clear the book's halt by hand."""
    reason, actor = _reason(args), _actor(args)  # checked before the database is opened
    switch = _switch(args)
    transition = switch.reset(reason, datetime.now(UTC), actor)
    note = "" if transition else " (it was not halted; the reset is recorded)"
    Console().print(f"[green]kill-switch reset[/] on book '{switch.book}'{note}")
    return 0


def drill_command(args: argparse.Namespace) -> int:
    """Run the kill-switch fire drill; exit 0 only when every step showed what it should."""
    from otonom_trader.guardrails.drill import run_drill

    cfg, _ = _config(args)
    if not cfg.enabled:
        raise ConfigError("guardrails are off: there is nothing to drill", key="guardrails")
    report = run_drill(cfg, ExecutionMode(args.mode))
    return 0 if report.complete else 1
