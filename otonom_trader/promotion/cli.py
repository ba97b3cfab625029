"""``otonom-trader promote status | check | advance | rollback``: the promotion workflow.

    otonom-trader promote status  [--strategy PATH] [--json]
    otonom-trader promote check   [--strategy PATH] [--evidence DIR/metrics.json] [--json]
    otonom-trader promote advance [--strategy PATH] [--evidence …] [--force --reason TEXT]
    otonom-trader promote rollback --reason TEXT [--strategy PATH]

The strategy defaults to the configured ``strategy.path``; ``--broker-config`` (or
``-o broker=binance``) names the production account whose API key ``check``/``advance`` audit
for the shadow → live gate. Exit status: 0 done (or the gate passes), 1 the gate refuses,
2 a user mistake (one line, nothing written).
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from otonom_trader.config.errors import ConfigError

if TYPE_CHECKING:  # the parser is built on every command: the workflow loads when it runs
    from rich.console import Console

    from otonom_trader.promotion.gates import GateResult
    from otonom_trader.promotion.store import VersionState
    from otonom_trader.promotion.workflow import AdvanceOutcome, PromotionWorkflow

WIDTH = 80


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``promote`` and its actions to the top-level parser's subcommands."""
    promote = subparsers.add_parser(
        "promote",
        help="move a strategy version research → paper → shadow → live through its gates",
        description="Show, check, advance or roll back a strategy version's promotion.",
    )
    actions = promote.add_subparsers(dest="promote_action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="the version's stage and every gate's numbers")
    check = actions.add_parser("check", help="record evidence and judge the next gate")
    advance = actions.add_parser("advance", help="move to the next stage when its gate passes")
    rollback = actions.add_parser("rollback", help="demote live → shadow; trip the kill-switch")
    for parser in (status, check, advance, rollback):
        parser.add_argument("--strategy", default=None, help="strategy YAML (default: conf)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    for parser in (check, advance, rollback):
        parser.add_argument(
            "--broker-config",
            default=None,
            help="broker.yaml of the production account (its key is audited; rollback halts it)",
        )
    for parser in (check, advance):
        parser.add_argument(
            "--evidence",
            default=None,
            metavar="METRICS_JSON",
            help="a backtest's DIR/metrics.json of this strategy file (research → paper)",
        )
    advance.add_argument("--force", action="store_true", help="advance although checks fail")
    for parser in (advance, rollback):
        parser.add_argument(
            "--reason", default=None, required=parser is rollback, help="why (recorded)"
        )
        parser.add_argument("--actor", default=None, help="who (default: the OS user)")
    for parser in (status, check, advance, rollback):
        parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """The registered entry: the system clock and the terminal."""
    from rich.console import Console

    return run_promote(args, now=datetime.now(UTC), console=Console(highlight=False))


def _actor(args: argparse.Namespace) -> str:
    given = " ".join(str(getattr(args, "actor", None) or "").split())
    if given:
        if len(given) > 64:
            raise ConfigError(f"must be at most 64 characters, got {len(given)}", key="--actor")
        return given
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def _reason(args: argparse.Namespace) -> str | None:
    reason = " ".join(str(getattr(args, "reason", None) or "").split())
    if len(reason) > 500:
        raise ConfigError(f"must be at most 500 characters, got {len(reason)}", key="--reason")
    return reason or None


def run_promote(args: argparse.Namespace, *, now: datetime, console: Console) -> int:
    """Run one ``promote`` action at ``now``; returns the exit status."""
    from otonom_trader.broker.factory import load_broker_config
    from otonom_trader.config.compose import load_config
    from otonom_trader.config.validation import resolve_project_path
    from otonom_trader.persistence.database import Database
    from otonom_trader.promotion.stages import StrategyIdentity
    from otonom_trader.promotion.workflow import PromotionWorkflow

    _, app = load_config(list(getattr(args, "overrides", None) or []))
    if getattr(args, "broker_config", None):
        app.broker = load_broker_config(args.broker_config)
    action = args.promote_action
    actor = _actor(args) if action in ("advance", "rollback") else ""
    reason = _reason(args)
    if action == "advance" and args.force and reason is None:
        raise ConfigError("a forced advance needs --reason TEXT (it is recorded)", key="--reason")
    if action == "rollback" and reason is None:
        raise ConfigError("must not be empty", key="--reason")
    identity = StrategyIdentity.of_file(resolve_project_path(args.strategy or app.strategy.path))
    db = Database(getattr(args, "db", None) or app.db.url, busy_timeout_ms=app.db.busy_timeout_ms)
    try:
        workflow = PromotionWorkflow(db, app, app.promotion)
        version = workflow.version(identity, now)
        report: dict[str, Any] = {}
        if action in ("check", "advance"):
            if args.evidence:
                workflow.record_backtest(version, args.evidence, now)
                report["evidence"] = f"backtest metrics recorded from {args.evidence}"
            audit = workflow.record_key_audit(version, now)
            if audit is not None:
                report["key_audit"] = audit
        if action == "status":
            return _show(console, args.json, workflow, version, workflow.judge_all(version, now))
        if action == "check":
            gate = workflow.judge(version, now)
            _show(console, args.json, workflow, version, [gate] if gate else [], report)
            return 0 if gate is None or gate.passed else 1
        if action == "advance":
            outcome = workflow.advance(
                version, now, actor=actor, force=bool(args.force), reason=reason
            )
            report["advance"] = _advance_line(outcome)
            gates = [outcome.gate] if outcome.gate else []
            _show(console, args.json, workflow, outcome.version, gates, report)
            return 0 if outcome.moved else 1
        assert reason is not None
        moved, books = workflow.rollback(version, now, actor=actor, reason=reason)
        report["rollback"] = (
            f"demoted to shadow; kill-switch tripped on {', '.join(books)} (reset it with "
            "`otonom-trader kill-switch reset` once the cause is fixed)"
        )
        return _show(console, args.json, workflow, moved, [], report)
    finally:
        db.dispose()


def _advance_line(outcome: AdvanceOutcome) -> str:
    version = outcome.version
    if not outcome.moved:
        missing = outcome.gate.failures if outcome.gate else []
        return "refused: " + "; ".join(check.line() for check in missing)
    how = "FORCED past failing checks (recorded with the reason)" if outcome.forced else "passed"
    return f"advanced to {version.stage.value} ({how})"


def _show(
    console: Console,
    as_json: bool,
    workflow: PromotionWorkflow,
    version: VersionState,
    gates: list[GateResult],
    report: dict[str, Any] | None = None,
) -> int:
    from otonom_trader.promotion.stages import Stage

    report = dict(report or {})
    if version.stage is Stage.LIVE:
        live = workflow.config.live
        until = version.stage_since + timedelta(days=live.first_period_days)
        report["live_cap"] = (
            f"positions capped at {live.first_period_max_position_quote:g} (quote) on production "
            f"accounts until {until:%Y-%m-%d %H:%M} UTC"
        )
    if as_json:
        text = json.dumps(_as_json(workflow, version, gates, report), indent=2, sort_keys=True)
        print(text, file=console.file)
        return 0
    render(console, workflow, version, gates, report)
    return 0


def _as_json(
    workflow: PromotionWorkflow,
    version: VersionState,
    gates: list[GateResult],
    report: dict[str, Any],
) -> dict[str, Any]:
    identity = version.identity
    return {
        "strategy": {
            "name": identity.name,
            "version": identity.version,
            "sha256": identity.sha256,
            "path": identity.path,
        },
        "stage": version.stage.value,
        "stage_since": version.stage_since.isoformat(),
        "gates": [
            {"gate": gate.name, "passed": gate.passed, "checks": gate.checks_json()}
            for gate in gates
        ],
        "events": [
            {
                "kind": event.kind,
                "from": event.from_stage,
                "to": event.to_stage,
                "reason": event.reason,
                "actor": event.actor,
                "at": event.at.isoformat(),
            }
            for event in workflow.store.events(version.id)
        ],
        **report,
    }


def render(
    console: Console,
    workflow: PromotionWorkflow,
    version: VersionState,
    gates: list[GateResult],
    report: dict[str, Any],
) -> None:
    """The version's stage, each gate as a table of its checks, and what was done."""
    from rich.markup import escape
    from rich.table import Table

    identity = version.identity
    console.print(
        f"[bold]{escape(identity.describe())}[/bold] — stage [bold]{version.stage.value}[/bold] "
        f"since {version.stage_since:%Y-%m-%d %H:%M} UTC"
    )
    if len(workflow.store.other_versions(identity)):
        console.print(
            "another file of this name and version was recorded before: this one (new hash) "
            "starts at research"
        )
    for gate in gates:
        verdict = "[green]passes[/green]" if gate.passed else "[red]refuses[/red]"
        table = Table(title=f"gate {gate.name}: {verdict}", title_justify="left")
        table.add_column("check", max_width=30)
        table.add_column("value", max_width=24)
        table.add_column("required", max_width=18)
        table.add_column("ok", no_wrap=True)
        for check in gate.checks:
            table.add_row(
                escape(check.name),
                escape(check.value),
                escape(check.required),
                "[green]yes[/green]" if check.passed else "[red]NO[/red]",
            )
        console.print(table)
    for key in ("evidence", "key_audit", "advance", "rollback", "live_cap"):
        if key in report:
            console.print(f"{key.replace('_', ' ')}: {escape(str(report[key]))}")
    events = workflow.store.events(version.id)
    if events:
        table = Table(title="moves", title_justify="left")
        for column in ("at (UTC)", "move", "by", "reason"):
            table.add_column(column)
        for event in events[-10:]:
            table.add_row(
                f"{event.at:%Y-%m-%d %H:%M}",
                f"{event.kind}: {event.from_stage} → {event.to_stage}",
                escape(event.actor),
                escape(event.reason or ""),
            )
        console.print(table)
