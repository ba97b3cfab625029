"""``otonom-trader`` (also ``python -m otonom_trader.cli``): the command line of the guide.

    otonom-trader daemon-once --strategy strategies/baseline_v1.0.yaml --mode paper
    otonom-trader daemon-once --strategy … --broker-config config/broker.yaml --mode shadow
    otonom-trader shadow-report --since 7d
    otonom-trader kill-switch status | trip --reason … | reset --reason …
    otonom-trader drill kill-switch
    otonom-trader alerts test
    otonom-trader status | trades | orders | profit | equity --plot equity.png
    otonom-trader serve [KEY=VALUE ...]          # a cycle after every candle close, until SIGTERM
    otonom-trader fleet deploy | status          # a fleet file's bots as Prefect deployments

Every command reads the same Hydra configuration as the flow (``conf/``), adjusted with
``-o KEY=VALUE`` overrides; ``--db`` points at another database (a SQLite path or a URL).
A user mistake prints one line and exits with status 2; nothing is sent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from otonom_trader.broker.errors import BrokerError
from otonom_trader.config.errors import ConfigError
from otonom_trader.persistence.database import DatabaseError


def _daemon_once(args: argparse.Namespace) -> int:
    from otonom_trader.daemon import ExecutionMode, TradingDaemon
    from otonom_trader.daemon.cycle import EXIT_ACCOUNT_BUSY, SKIPPED

    overrides = list(args.overrides)
    if args.guardrails:
        overrides.append(f"guardrails={args.guardrails}")
    # TradingDaemon runs the one validation pass before it builds, opens or sends anything.
    daemon = TradingDaemon(
        db_path=args.db,
        strategy_path=args.strategy,
        broker_config_path=args.broker_config,
        mode=ExecutionMode(args.mode) if args.mode else None,
        overrides=overrides,
    )
    from otonom_trader.home import otonom_home
    from otonom_trader.operator.logfiles import configured_secrets, install_file_logging

    install_file_logging(otonom_home(), configured_secrets(daemon.config))
    try:
        summary = daemon.run_once()
    finally:
        daemon.close()
    if summary.status == SKIPPED:
        print(f"skipped: {summary.notes[-1]}", file=sys.stderr)
        return EXIT_ACCOUNT_BUSY
    summary.render()
    return 0 if summary.status == "succeeded" else 1


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the usage and then the error; a user mistake here is one line (the
    usage is one ``--help`` away). Subcommand parsers inherit this class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with each domain's subcommands registered by its own package."""
    parser = OneLineArgumentParser(
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
    commands: argparse._SubParsersAction[Any] = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )

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
        default=None,
        help="paper: paper book only; shadow: paper + broker side by side; live: broker "
        "(default: the configured mode, paper)",
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
    from otonom_trader.backtest.cli import register as register_backtest
    from otonom_trader.fleet.cli import register as register_fleet
    from otonom_trader.guardrails.cli import register as register_guardrails
    from otonom_trader.market.cli import register as register_data
    from otonom_trader.operator.cli import register as register_operator
    from otonom_trader.promotion.cli import register as register_promotion
    from otonom_trader.serving.cli import register as register_serve
    from otonom_trader.shadow.cli import register as register_shadow

    register_shadow(commands)
    register_guardrails(commands)
    register_alerts(commands)
    register_data(commands)
    register_operator(commands)
    register_promotion(commands)
    register_backtest(commands)
    register_serve(commands)
    register_fleet(commands)
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
    try:
        args = parser.parse_args(_globals_first(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help (0) or a bad flag (2, its one line already printed)
        return int(exc.code or 0)
    try:
        _preflight(args)
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
    except Exception as exc:  # noqa: BLE001 - a bug: the traceback goes to the log file
        import traceback

        from otonom_trader.internal_errors import record_traceback

        where = record_traceback(traceback.format_exc())
        print(
            f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
            f"(traceback in {where})",
            file=sys.stderr,
        )
        return 1


def _preflight(args: argparse.Namespace) -> None:
    """What every command is given is checked before any command opens or sends anything:
    the overrides (secrets refused, every value in range), the ``--db`` database, an alerts
    file given with ``--config``. A cycle's own inputs are checked by ``TradingDaemon``."""
    from otonom_trader.config.validation import check_values, compose_validated

    compose_validated(list(args.overrides))
    alerts_file = getattr(args, "config", None)
    if alerts_file:
        from otonom_trader.alerts.channels import build_channels
        from otonom_trader.alerts.loading import load_alerts_file
        from otonom_trader.config.files import read_yaml_file

        read_yaml_file(alerts_file, "alerts file")  # size and nesting bounds first
        alerts = load_alerts_file(alerts_file)
        check_values(alerts, "alerts.", label=f"{alerts_file}: ")
        build_channels(alerts, source=f"{alerts_file}: ")
    if args.db is not None:
        from otonom_trader.persistence.database import preflight

        preflight(args.db)


if __name__ == "__main__":
    sys.exit(main())
