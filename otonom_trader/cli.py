"""``otonom-trader`` (also ``python -m otonom_trader.cli``): the command line of the guide.

    otonom-trader daemon-once --strategy strategies/baseline_v1.0.yaml --mode paper
    otonom-trader daemon-once --strategy … --broker-config config/broker.yaml --mode shadow
    otonom-trader shadow-report --since 7d
    otonom-trader kill-switch status | trip --reason … | reset --reason …
    otonom-trader drill kill-switch
    otonom-trader alerts test

Every command reads the same Hydra configuration as the flow (``conf/``), adjusted with
``-o KEY=VALUE`` overrides; ``--db`` points at another database (a SQLite path or a URL).
A user mistake prints one line and exits with status 2; nothing is sent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from otonom_trader.broker.errors import BrokerError
from otonom_trader.config.errors import ConfigError
from otonom_trader.persistence.database import DatabaseError


def _daemon_once(args: argparse.Namespace) -> int:
    from otonom_trader.daemon import ExecutionMode, TradingDaemon
    from otonom_trader.daemon.cycle import EXIT_ACCOUNT_BUSY, SKIPPED

    overrides = list(args.overrides)
    if args.guardrails:
        overrides.append(f"guardrails={args.guardrails}")
    daemon = TradingDaemon(
        db_path=args.db,
        strategy_path=args.strategy,
        broker_config_path=args.broker_config,
        mode=ExecutionMode(args.mode),
        overrides=overrides,
    )
    try:
        summary = daemon.run_once()
    finally:
        daemon.close()
    if summary.status == SKIPPED:
        print(f"skipped: {summary.notes[-1]}", file=sys.stderr)
        return EXIT_ACCOUNT_BUSY
    summary.render()
    return 0 if summary.status == "succeeded" else 1


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with each domain's subcommands registered by its own package."""
    parser = argparse.ArgumentParser(
        prog="otonom-trader",
        description="Autonomous crypto trading daemon: cycles, reports, kill-switch, alerts.",
    )
    parser.add_argument(
        "--db",
        default=None,
        help="database: SQLite path or SQLAlchemy URL (default: $OTONOM_HOME/otonom.db)",
    )
    parser.add_argument(
        "-o",
        "--override",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Hydra config override, repeatable (e.g. -o broker=binance_testnet)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    once = commands.add_parser(
        "daemon-once",
        help="run one trading cycle (the library path, without Prefect)",
        description="Run one cycle: fetch-signal, guard-check, execute, snapshot, health-check.",
    )
    once.add_argument(
        "--strategy", default=None, help="strategy YAML (default: conf strategy.path)"
    )
    once.add_argument(
        "--mode",
        choices=["paper", "shadow", "live"],
        default="paper",
        help="paper: paper book only; shadow: paper + broker side by side; live: broker",
    )
    once.add_argument(
        "--broker-config",
        default=None,
        help="broker.yaml (kind, api_key, api_secret, base_url, testnet); "
        "default: the conf broker group (sim)",
    )
    once.add_argument(
        "--guardrails",
        default=None,
        choices=["conservative", "default", "aggressive", "off"],
        help="guardrail profile",
    )
    once.set_defaults(func=_daemon_once)

    from otonom_trader.alerts.cli import register as register_alerts
    from otonom_trader.guardrails.cli import register as register_guardrails
    from otonom_trader.shadow.cli import register as register_shadow

    register_shadow(commands)
    register_guardrails(commands)
    register_alerts(commands)
    return parser


GLOBAL_OPTIONS = ("--db", "-o", "--override")


def _globals_first(argv: Sequence[str]) -> list[str]:
    """Let ``--db`` and ``-o`` stand anywhere (``daemon-once … -o x=y``), as users type them."""
    front: list[str] = []
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        name = item.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and "=" in item and item.startswith("--"):
            front.append(item)
        elif item in GLOBAL_OPTIONS and i + 1 < len(items):
            front += [item, items[i + 1]]
            i += 1
        else:
            rest.append(item)
        i += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(_globals_first(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except DatabaseError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2
    except BrokerError as exc:
        print(f"broker error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
