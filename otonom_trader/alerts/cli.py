"""``otonom-trader alerts …``: test the channels, list the outbox, retry undelivered alerts.

    otonom-trader alerts test [--config config/alerts.yaml]   # "Test alert notifications"
    otonom-trader alerts outbox [--limit 20] [--status pending]   # the alert history
    otonom-trader alerts deliver                                  # retry now; list what waits

The top-level parser provides ``args.db`` (a database URL or path, or ``None``) and
``args.overrides`` (Hydra overrides); ``--config`` reads the guide's alerts.yaml instead of the
``alerts`` config group. Exit codes: 0 ok, 1 a channel failed (or none is configured), 2 bad
configuration.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from otonom_trader.alerts.outbox import OutboxRow
from otonom_trader.config.errors import ConfigError
from otonom_trader.persistence.database import Database, DatabaseError

if TYPE_CHECKING:
    # The engine (and Apprise) is loaded when an alerts command runs, not when the command line
    # registers its subcommands (a daemon-once that sends no alert never imports Apprise).
    from otonom_trader.alerts.engine import AlertEngine


def register(subparsers: Any) -> None:
    """Add the ``alerts`` command and its subcommands to the top-level parser."""
    alerts = subparsers.add_parser("alerts", help="alert channels and the alert outbox")
    sub = alerts.add_subparsers(dest="alerts_command", metavar="{test,outbox,deliver}")
    sub.required = True

    test = sub.add_parser("test", help="send a test message to every configured channel")
    _add_config_option(test)
    test.set_defaults(func=handle_test)

    outbox = sub.add_parser("outbox", help="list recent alerts and their delivery status")
    _add_config_option(outbox)
    outbox.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    outbox.add_argument(
        "--status",
        choices=["pending", "sent", "failed", "suppressed"],
        help="only rows with this status",
    )
    outbox.set_defaults(func=handle_outbox)

    deliver = sub.add_parser("deliver", help="retry undelivered alerts that are due now")
    _add_config_option(deliver)
    deliver.set_defaults(func=handle_deliver)


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the guide's alerts.yaml (default: the 'alerts' group of the Hydra config)",
    )


def _engine(args: argparse.Namespace) -> tuple[AlertEngine, Database]:
    """The engine of the configured channels and the database (``--db`` wins over config)."""
    from otonom_trader.alerts.engine import AlertEngine
    from otonom_trader.config.compose import load_config

    overrides = list(getattr(args, "overrides", None) or [])
    db_arg = getattr(args, "db", None)
    config_path = getattr(args, "config", None)
    mode: str | None = None
    if config_path:
        alerts_source: Any = config_path
        db_url = db_arg
        busy = 5_000
    else:
        _, app = load_config(overrides)
        alerts_source = app.alerts
        db_url = db_arg or app.db.url
        busy = app.db.busy_timeout_ms
        mode = str(app.mode.name)
    db = Database(db_url, busy_timeout_ms=busy)
    return AlertEngine(alerts_source, db=db, mode=mode), db


def _run(args: argparse.Namespace, body: Any) -> int:
    console = Console(highlight=False)
    try:
        engine, db = _engine(args)
    except (ConfigError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(body(engine, console))
    finally:
        db.dispose()


def handle_test(args: argparse.Namespace) -> int:
    """Send one test message per channel; print which succeeded."""

    def body(engine: AlertEngine, console: Console) -> int:
        if not engine.channels:
            console.print(
                "No alert channel is configured: enable email or telegram, or add Apprise URLs "
                "(alerts=email_telegram, 'alerts.urls=[…]' or --config config/alerts.yaml)."
            )
            return 1
        report = engine.send_test()
        if report.error and not report.outcomes:
            console.print(Text(f"The test could not run: {report.error}", style="red"))
            return 1
        targets = {c.name: c.masked_url for c in engine.channels}
        table = Table(title="Test alert")
        for column in ("channel", "target", "result", "detail"):
            table.add_column(column)
        failed = 0
        for outcome in report.outcomes:
            ok = outcome.sent
            failed += 0 if ok else 1
            table.add_row(
                outcome.channel,
                targets.get(outcome.channel, ""),
                "[green]sent[/green]" if ok else "[red]FAILED[/red]",
                Text(outcome.error or outcome.note or ""),
            )
        console.print(table)
        sent = len(report.outcomes) - failed
        console.print(f"{sent} of {len(report.outcomes)} channel(s) succeeded.")
        return 1 if failed else 0

    return _run(args, body)


def handle_outbox(args: argparse.Namespace) -> int:
    """List the newest outbox rows: the alert history, with each row's event, state, attempts
    and last error (cleared once sent). Titles are printed as they are (no markup)."""

    def body(engine: AlertEngine, console: Console) -> int:
        rows = engine.outbox.recent(limit=max(1, args.limit), status=args.status)
        table = Table(title="Alert outbox (newest first)")
        for column in (
            "id",
            "created (UTC)",
            "event",
            "transition",
            "severity",
            "channel",
            "state",
            "attempts",
            "title",
            "last error / note",
        ):
            table.add_column(column)
        for row in rows:
            table.add_row(
                str(row.id),
                f"{row.created_at:%Y-%m-%d %H:%M:%S}",
                row.event,
                _transition(row),
                row.severity,
                Text(row.channel),
                _state(row),
                f"{row.attempts}/{row.max_attempts}",
                Text(row.title),
                Text(_detail(row)),
            )
        console.print(table)
        counts = engine.outbox.count_by_status()
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "empty")
        return 0

    return _run(args, body)


def _transition(row: OutboxRow) -> str:
    if row.transition_id is None:
        return ""
    return f"#{row.transition_id} {row.book or ''} → {row.state_after or '?'}".strip()


def _state(row: OutboxRow) -> str:
    if row.status == "sent" and row.sent_at is not None:
        return f"sent {row.sent_at:%H:%M:%S}"
    if row.status == "pending" and row.next_attempt_at is not None:
        return f"pending, next try {row.next_attempt_at:%Y-%m-%d %H:%M:%S}"
    return row.status


def _detail(row: OutboxRow) -> str:
    parts = [p for p in (row.last_error, row.note) if p]
    return "; ".join(parts)


def handle_deliver(args: argparse.Namespace) -> int:
    """Retry the due pending rows now, then say what is still pending and when it is tried."""

    def body(engine: AlertEngine, console: Console) -> int:
        now = engine.clock_now()
        report = engine.deliver_pending(now)
        if report.error:
            console.print(Text(f"delivery failed: {report.error}", style="red"))
            return 1
        console.print(
            f"sent {len(report.sent)}, will retry {len(report.retrying)}, "
            f"gave up {len(report.failed)}, waiting {len(report.deferred)}"
        )
        for row_id, error in report.errors.items():
            console.print(Text(f"  row {row_id}: {error}"))
        pending = sorted(engine.outbox.recent(limit=10_000, status="pending"), key=lambda r: r.id)
        heads: dict[str, int] = {}
        for row in pending:
            heads.setdefault(row.channel, row.id)
        if not pending:
            console.print("nothing pending")
        for row in pending:
            console.print(Text(f"  {_pending_line(row, heads[row.channel], now)}"))
        return 1 if report.retrying or report.failed else 0

    return _run(args, body)


def _pending_line(row: OutboxRow, head: int, now: datetime) -> str:
    what = f"row {row.id} ({row.channel}, {row.event}{_transition_suffix(row)}): {row.title}"
    due = row.next_attempt_at
    if row.id != head:
        return f"{what} — pending, waits behind row {head} on {row.channel} (sent in order)"
    if due is None:
        return f"{what} — pending"
    when = "now" if due <= now else f"in {_duration(due - now)}"
    error = f"; last error: {row.last_error}" if row.last_error else ""
    note = f"; {row.note}" if row.note else ""
    return (
        f"{what} — pending, attempt {row.attempts}/{row.max_attempts} done, next try "
        f"{due:%Y-%m-%d %H:%M:%S} UTC ({when}){error}{note}"
    )


def _transition_suffix(row: OutboxRow) -> str:
    return f" #{row.transition_id}" if row.transition_id is not None else ""


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
