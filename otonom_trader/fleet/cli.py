"""``otonom-trader fleet deploy | status``: a fleet file's bots as Prefect deployments.

    otonom-trader fleet deploy --fleet example          # conf/fleet/example.yaml
    otonom-trader fleet deploy --fleet ./my_fleet.yaml --pool otonom-fleet --yes
    otonom-trader fleet status --fleet example [--json]

Both need ``PREFECT_API_URL`` (a long-lived Prefect server: a temporary one would forget the
deployments when the command ends). The fleet file is read and every bot's configuration
composed before the server is contacted: a mistake is one line, status 2, nothing created.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from otonom_trader.config.errors import ConfigError

#: The fleet file used when ``--fleet`` is not given.
DEFAULT_FLEET = "example"
#: ``fleet deploy`` exits with this when it kept deployments it was not allowed to remove.
EXIT_REMOVAL_REFUSED = 1


def register(subparsers: Any) -> None:
    """Add ``fleet deploy`` and ``fleet status`` to the top-level parser."""
    fleet = subparsers.add_parser(
        "fleet",
        help="deploy a fleet file's bots to Prefect, show their status",
        description="A fleet: named bots (strategy x account x mode) from conf/fleet/<name>.yaml.",
    )
    actions = fleet.add_subparsers(dest="fleet_action", metavar="ACTION", required=True)
    deploy = actions.add_parser(
        "deploy",
        help="create or update one Prefect deployment per bot; remove bots that left the file",
    )
    _fleet_argument(deploy)
    deploy.add_argument("--pool", default=None, help="work pool (default: the file's pool)")
    deploy.add_argument(
        "--yes", action="store_true", help="remove deployments of bots that left the file"
    )
    deploy.set_defaults(func=handle_deploy)
    status = actions.add_parser("status", help="each bot's deployment, last run, equity, guard")
    _fleet_argument(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=handle_status)


def _fleet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fleet",
        default=DEFAULT_FLEET,
        metavar="NAME|PATH",
        help=f"conf/fleet/NAME.yaml or a path to a fleet file (default: {DEFAULT_FLEET})",
    )


def _require_server() -> None:
    from otonom_trader.serving.environment import apply_prefect_defaults

    apply_prefect_defaults()  # before Prefect's settings are read
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError(
            "not set: fleet commands need a long-lived Prefect server "
            "(export PREFECT_API_URL=http://HOST:4200/api)",
            "PREFECT_API_URL",
        )


def handle_deploy(args: argparse.Namespace) -> int:
    """Validate the fleet file, then deploy it and print what was done."""
    from otonom_trader.fleet.deploy import KEPT, deploy_fleet
    from otonom_trader.fleet.file import check_prefect_name, load_fleet

    fleet = load_fleet(args.fleet)
    if args.pool is not None:
        fleet = replace(fleet, pool=check_prefect_name(args.pool, "--pool"))
    _require_server()

    def confirm(names: list[str]) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            print(
                f"fleet deploy: {len(names)} deployment(s) of bots no longer in {fleet.source} "
                f"kept ({', '.join(names)}): no terminal to ask; rerun with --yes to remove them",
                file=sys.stderr,
            )
            return False
        answer = input(f"remove the deployments of {', '.join(names)}? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    rows = deploy_fleet(fleet, confirm)
    print(f"fleet {fleet.name} ({fleet.source}) → work pool {fleet.pool}")
    _print_table(
        ["bot", "action", "account", "schedule", "work queue"],
        [[r.bot, r.action, r.account, r.schedule, r.work_queue] for r in rows],
    )
    return EXIT_REMOVAL_REFUSED if any(r.action == KEPT for r in rows) else 0


def handle_status(args: argparse.Namespace) -> int:
    """Print each bot's deployment, last flow run, last cycle, equity and guard."""
    from otonom_trader.fleet.file import load_fleet
    from otonom_trader.fleet.status import fleet_status

    fleet = load_fleet(args.fleet)
    _require_server()
    rows = fleet_status(fleet)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2))
        return 0
    _print_table(
        [
            "bot",
            "deployment",
            "schedule",
            "queue",
            "last flow run",
            "account",
            "last cycle",
            "equity",
            "guard",
        ],
        [
            [
                r.bot,
                r.deployment,
                r.schedule,
                r.work_queue,
                f"{r.flow_run_state} {_when(r.flow_run_at)}".strip(),
                r.account,
                f"{r.last_cycle} {_when(r.last_cycle_at)}".strip(),
                "-" if r.equity is None else f"{r.equity:,.2f}",
                r.guard,
            ]
            for r in rows
        ],
    )
    return 0


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}Z"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*header, box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    Console(width=max(140, Console().width)).print(table)
